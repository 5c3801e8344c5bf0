"""makemore's character bigram model: counted, then learned by a one-layer neural network.

Reference solution. The stub in ``exercises/bigram/bigram.py`` explains the math.
"""
import torch


def build_vocab(words: list[str]) -> list[str]:
    """``'.'`` then the sorted distinct characters of ``words`` (index to character: itos)."""
    return ["."] + sorted(set("".join(words)))


def count_matrix(words: list[str], vocab: list[str]) -> torch.Tensor:
    """``N[i, j]``: how often character ``vocab[j]`` follows ``vocab[i]``, with ``'.'`` around each word."""
    stoi = {ch: i for i, ch in enumerate(vocab)}
    N = torch.zeros((len(vocab), len(vocab)), dtype=torch.int64)
    for w in words:
        chs = ["."] + list(w) + ["."]
        for ch1, ch2 in zip(chs, chs[1:]):
            N[stoi[ch1], stoi[ch2]] += 1
    return N


def probabilities(N: torch.Tensor, k: float = 1.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Add-``k`` smoothed counts, each row divided by its sum: ``P[i, j] = p(next = j | current = i)``."""
    P = N.to(dtype) + k
    return P / P.sum(dim=1, keepdim=True)


def nll(words: list[str], P: torch.Tensor, vocab: list[str]) -> torch.Tensor:
    """Mean of ``-log P[current, next]`` over every bigram of every word (end markers included)."""
    stoi = {ch: i for i, ch in enumerate(vocab)}
    xs, ys = [], []
    for w in words:
        seq = "." + w + "."
        xs += [stoi[c] for c in seq[:-1]]
        ys += [stoi[c] for c in seq[1:]]
    xs = torch.tensor(xs, dtype=torch.int64, device=P.device)
    ys = torch.tensor(ys, dtype=torch.int64, device=P.device)
    return -P[xs, ys].log().mean()


def sample(P: torch.Tensor, n: int, generator: torch.Generator, vocab: list[str]) -> list[str]:
    """``n`` names, each drawn one character at a time from ``'.'`` until ``'.'`` comes back."""
    names = []
    for _ in range(n):
        out, ix = [], 0
        while True:
            ix = torch.multinomial(P[ix], 1, replacement=True, generator=generator).item()
            if ix == 0:
                break
            out.append(vocab[ix])
        names.append("".join(out))
    return names


def one_hot(xs: torch.Tensor, V: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(n, V)`` rows of zeros with a single 1 at column ``xs[r]``; ``dtype``, on the device of ``xs``."""
    out = torch.zeros((xs.shape[0], V), dtype=dtype, device=xs.device)
    out[torch.arange(xs.shape[0], device=xs.device), xs] = 1
    return out


def _log_probs(logits: torch.Tensor) -> torch.Tensor:
    """Row-wise ``log softmax``, shifted by the row max so that ``exp`` cannot overflow."""
    shifted = logits - logits.amax(dim=1, keepdim=True)
    return shifted - shifted.exp().sum(dim=1, keepdim=True).log()


def neural_bigram_loss(W: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, reg: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of ``softmax(one_hot(xs) @ W)`` against ``ys``, plus ``reg * mean(W ** 2)``."""
    logits = one_hot(xs, W.shape[0], W.dtype) @ W
    logp = _log_probs(logits)
    n = xs.shape[0]
    data_loss = -logp[torch.arange(n, device=xs.device), ys].mean()
    return data_loss + reg * (W ** 2).mean()


def neural_bigram_grad(W: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, reg: float = 0.0) -> torch.Tensor:
    """``dL/dW`` of ``neural_bigram_loss`` by hand: data term ``X.T @ (softmax - Y) / n``, plus the regularizer's."""
    V, n = W.shape[0], xs.shape[0]
    X = one_hot(xs, V, W.dtype)
    probs = _log_probs(X @ W).exp()
    dlogits = (probs - one_hot(ys, V, W.dtype)) / n
    return X.T @ dlogits + 2 * reg * W / W.numel()
