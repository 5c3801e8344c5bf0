"""Hidden suite for bigram: counts, probabilities, NLL and samples against references written here
with torch; the neural bigram's loss and hand-written gradient against ``F.cross_entropy`` and autograd."""
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

from grader.wire import Generator
from tests.compare import Mismatch, check
from tests.strategies import cases, dims, randint, randn, seeds

# Word lists over a small alphabet: every letter may repeat, words and letters in any order.
words_lists = st.lists(st.text(alphabet="abcde", min_size=1, max_size=6), min_size=1, max_size=8)
smoothing = st.sampled_from([0.0, 0.5, 1.0, 3.0])


def _vocab(words):
    return ["."] + sorted({c for w in words for c in w})


def _pairs(words, vocab):
    """Index tensors of every (current, next) bigram, ``'.'`` opening and closing each word."""
    index = {c: i for i, c in enumerate(vocab)}
    xs, ys = [], []
    for w in words:
        padded = ["."] + list(w) + ["."]
        for a, b in zip(padded[:-1], padded[1:]):
            xs.append(index[a])
            ys.append(index[b])
    return torch.tensor(xs), torch.tensor(ys)


def _counts(words, vocab):
    xs, ys = _pairs(words, vocab)
    V = len(vocab)
    return torch.zeros(V, V, dtype=torch.int64).index_put_((xs, ys), torch.ones_like(xs), accumulate=True)


def _probs(N, k, dtype, device):
    return F.normalize(N.to(device=device, dtype=dtype) + k, p=1.0, dim=1)


def _show(x):
    return repr(x) if not isinstance(x, torch.Tensor) else f"a tensor of shape {tuple(x.shape)}"


@given(words=words_lists)
@example(words=["emma", "olivia", "ava"])
def test_build_vocab(impl, words):
    got = impl.build_vocab(words)
    expected = _vocab(words)
    if not isinstance(got, list) or not all(isinstance(c, str) for c in got):
        raise Mismatch(f"build_vocab should return a list of one-character strings, got {_show(got)}")
    if got != expected:
        raise Mismatch(f"build_vocab({words!r}) returned {got!r}: expected '.' first, then every distinct "
                       "character of the words exactly once, in sorted order")


@given(words=words_lists, extra=st.text(alphabet="abcdefg", max_size=3))
@example(words=["emma"], extra="")
def test_count_matrix(impl, words, extra):
    vocab = _vocab(words + [extra])  # the vocabulary may hold characters these words do not use
    check(f"count_matrix({words!r}, vocab={vocab!r})", impl.count_matrix(words, vocab), _counts(words, vocab))


@given(case=cases(vocab=dims(2, 6), seed=seeds()), k=smoothing)
def test_probabilities(impl, device, dtype, case, k):
    N = randint(6, case.vocab, case.vocab, seed=case.seed, device=device)
    if k == 0.0:
        N[:, 0] += 1  # no row of zeros: without smoothing it would be 0 / 0
    name = str(dtype).removeprefix("torch.")
    check(f"probabilities(N, k={k}, dtype={name})", impl.drive("probabilities", N, k, name),
          _probs(N, k, dtype, device))


@given(words=words_lists, k=smoothing)
def test_nll(impl, device, dtype, words, k):
    vocab = _vocab(words)
    P = _probs(_counts(words, vocab), k, dtype, device)
    xs, ys = _pairs(words, vocab)
    expected = F.nll_loss(P.log()[xs.to(device)], ys.to(device))
    check(f"nll({words!r}, P, vocab) with P smoothed by k={k}", impl.nll(words, P, vocab), expected)


def _reference_sample(P, n, seed, device, vocab):
    g = torch.Generator(device=device).manual_seed(seed)
    names = []
    for _ in range(n):
        name, ix = "", 0
        while True:
            ix = int(torch.multinomial(P[ix], 1, replacement=True, generator=g))
            if ix == 0:
                break
            name += vocab[ix]
        names.append(name)
    return names


@given(words=words_lists, k=smoothing, n=dims(1, 5), seed=seeds())
def test_sample(impl, device, dtype, words, k, n, seed):
    vocab = _vocab(words)
    P = _probs(_counts(words, vocab), k, dtype, device)
    got = impl.sample(P, n, Generator(seed, device), vocab)
    expected = _reference_sample(P, n, seed, device, vocab)
    if not isinstance(got, list) or not all(isinstance(s, str) for s in got):
        raise Mismatch(f"sample should return a list of {n} strings, got {_show(got)}")
    if got != expected:
        raise Mismatch(f"sample(P, n={n}, generator seeded with {seed}, vocab) returned {got!r}, but the same "
                       f"generator gives {expected!r}: start each name at '.', draw every next index with "
                       "torch.multinomial(P[ix], 1, replacement=True, generator=generator) and nothing else "
                       "from the generator, stop when '.' is drawn, and leave the '.' out of the name")


@given(case=cases(n=dims(1, 8), vocab=dims(2, 6), seed=seeds()))
def test_one_hot(impl, device, dtype, case):
    xs = randint(case.vocab, case.n, seed=case.seed, device=device)
    name = str(dtype).removeprefix("torch.")
    check(f"one_hot(xs, {case.vocab}, dtype={name})", impl.drive("one_hot", xs, case.vocab, name),
          F.one_hot(xs, case.vocab).to(dtype))


neural = cases(n=dims(1, 8), vocab=dims(2, 6), seed=seeds())
regs = st.sampled_from([0.0, 0.01, 0.5])
scales = st.sampled_from([1.0, 1e4])


def _neural_inputs(case, dtype, device, scale):
    W = randn(case.vocab, case.vocab, seed=case.seed, dtype=dtype, device=device, scale=scale)
    xs = randint(case.vocab, case.n, seed=case.seed + 1, device=device)
    ys = randint(case.vocab, case.n, seed=case.seed + 2, device=device)
    return W, xs, ys


def _reference_loss(W, xs, ys, reg):
    logits = F.one_hot(xs, W.shape[0]).to(W.dtype) @ W
    return F.cross_entropy(logits, ys) + reg * (W ** 2).mean()


@given(case=neural, reg=regs, scale=scales)
def test_neural_bigram_loss(impl, device, dtype, case, reg, scale):
    W, xs, ys = _neural_inputs(case, dtype, device, scale)
    check(f"neural_bigram_loss(W, xs, ys, reg={reg}) with W of scale {scale:g}",
          impl.neural_bigram_loss(W, xs, ys, reg), _reference_loss(W, xs, ys, reg))


@given(case=neural, reg=regs, scale=scales)
def test_neural_bigram_grad(impl, device, dtype, case, reg, scale):
    W, xs, ys = _neural_inputs(case, dtype, device, scale)
    ref_W = W.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(_reference_loss(ref_W, xs, ys, reg), ref_W)
    check(f"neural_bigram_grad(W, xs, ys, reg={reg}) with W of scale {scale:g}",
          impl.neural_bigram_grad(W, xs, ys, reg), expected)


# The device pass (tests/devices.py): every tensor input on the meta device. count_matrix (built from
# words) and sample (its control flow needs values) do not take part.
import pytest  # noqa: E402  (kept with the test it serves, at the end of the module)

from tests.devices import check_devices, meta  # noqa: E402

DEVICE_CASES = {
    "probabilities": lambda: ((meta(3, 3, dtype=torch.int64), 1.0), {}),
    "nll": lambda: ((["ab", "ba"], meta(3, 3), [".", "a", "b"]), {}),
    "one_hot": lambda: ((meta(4, dtype=torch.int64), 5), {}),
    "neural_bigram_loss": lambda: ((meta(5, 5), meta(4, dtype=torch.int64), meta(4, dtype=torch.int64), 0.1), {}),
    "neural_bigram_grad": lambda: ((meta(5, 5), meta(4, dtype=torch.int64), meta(4, dtype=torch.int64), 0.1), {}),
}


@pytest.mark.parametrize("fn", DEVICE_CASES)
def test_device_propagation(impl, fn):
    args, kwargs = DEVICE_CASES[fn]()
    check_devices(impl, fn, *args, **kwargs)
