"""makemore's character bigram model: a language model of names, first counted, then learned.

The data: one name per line, e.g. ``names.txt`` of https://github.com/karpathy/makemore (32 033 names)
or any text file of your own. Load it with ``words = open("names.txt").read().splitlines()``.

A bigram model predicts the next character from the current one only. Wrap every word in a special
token ``'.'`` that marks both its start and its end: ``emma`` becomes ``.emma.``, whose bigrams are

    .e  em  mm  ma  a.

(``'.'`` -> ``'e'`` says "names start with e this often"; ``'a'`` -> ``'.'`` says "names end after a".)

1. Vocabulary. ``itos = build_vocab(words)`` lists ``'.'`` at index 0, then the distinct characters in
   sorted order; ``stoi = {ch: i for i, ch in enumerate(itos)}`` maps back. For names.txt: V = 27.
2. Counting. ``N[i, j]`` = number of times character ``j`` follows character ``i`` over all words
   (a ``(V, V)`` int64 tensor; row ``i`` is "what came after ``i``").
3. Probabilities. Row ``i`` of ``P`` is the distribution of the NEXT character given the current one:
   ``P[i, j] = (N[i, j] + k) / sum_j' (N[i, j'] + k)``. Each ROW sums to 1 (``sum(dim=1,
   keepdim=True)``: the ``keepdim`` matters, ``(V,)`` would broadcast against the columns). The
   ``+ k`` (add-k or Laplace smoothing) gives unseen bigrams a small probability instead of 0.
4. Quality. The likelihood of the data is the product of ``P[current, next]`` over every bigram;
   its log is a sum, and the average negative log-likelihood
   ``nll = -(1/n) * sum log P[x, y]`` is the loss (lower is better; uniform guessing gives log V).
   An unseen bigram without smoothing has ``P = 0`` and ``nll = inf`` (no epsilon: that is what
   smoothing is for).
5. Sampling. Start at ``'.'``; draw the next index from row ``P[ix]``; append its character; repeat
   until ``'.'`` is drawn again. makemore's names look like ``"junide"``, ``"janasah"``...

The neural bigram learns the same table by gradient descent. Each input character becomes a one-hot
row ``X = one_hot(xs, V)`` (``(n, V)``); a single linear layer ``W`` (``(V, V)``) gives

    logits = X @ W                         (n, V): row r is simply W[xs[r]]
    probs  = softmax(logits, dim=1)        exp, then divide by the row sum
    loss   = -(1/n) * sum_r log probs[r, ys[r]]  +  reg * mean(W ** 2)

``exp(W)`` plays the role of the counts ``N``; ``reg`` pulls ``W`` toward 0, i.e. all rows toward
uniform, just like smoothing. Trained well (reg=0), ``softmax(W)`` approaches the counted ``P`` with k=0.
By hand (softmax and cross-entropy together), with ``Y = one_hot(ys, V)``:

    dL/dlogits = (probs - Y) / n          dL/dW = X.T @ dL/dlogits  +  2 * reg * W / W.numel()

(``mean`` divides by ``W.numel()`` = V*V, so the regularizer's gradient carries that factor too).

Pitfalls:
  * ``'.'`` at BOTH ends of every word: the ``'.'`` row says how names start, the ``'.'`` column
    how they end; sampling never stops without the end bigrams;
  * normalize rows, not columns: ``P[i]`` must be a distribution over the next character;
  * dtype: ``N.to(dtype) + k`` (convert, then add) keeps full precision in float64;
  * stability: ``exp`` of a logit above ~89 (float32) or ~709 (float64) is inf. Subtract each row's
    OWN max before ``exp`` (softmax does not change; the max of all of ``W`` sends rows of a smaller
    scale to ``log 0``), and compute ``log probs`` as
    ``shifted - log(sum(exp(shifted)))`` rather than ``log`` of a probability that may underflow to 0;
  * devices and dtypes: build every new tensor (index tensors, zeros, ``arange``) on the device of
    the inputs (``device=P.device``), in the dtype asked for; no ``.cpu()``, no numpy;
  * the counts: a Python loop over the words is fine (names.txt takes a second or two);
  * inputs are read-only, in every function of this course: never change an argument in place
    (``W -= m``, ``words[i] = "." + w + "."``, ``P[ix] /= s``); build new tensors and lists. The
    graded suite checks every argument after each call.

Not allowed here (the grader refuses them): ``torch.autograd`` and ``.backward()`` in this file
(``neural_bigram_grad`` is the backward pass, by hand), ``torch.func``, ``F.one_hot``, and the
softmax family: ``F.softmax``/``log_softmax``/``cross_entropy``/``nll_loss``, ``torch.softmax``,
``torch.log_softmax``, ``torch.logsumexp`` and the tensor methods of the same names (helpers of
your own with those names are fine). ``torch.multinomial`` is
allowed, and required in ``sample``. In a training script of your own, ``loss.backward()`` on
``neural_bigram_loss`` is the way to check your gradient.
Guide: GUIDE.md (English), GUIDE.zh.md (中文).
"""
import torch


def build_vocab(words: list[str]) -> list[str]:
    """The model's characters, index to string (itos).

    Args:
        words: the training words, e.g. ``["emma", "olivia", "ava"]``.

    Returns:
        A list of one-character strings: ``'.'`` first, then every distinct character of the words
        once, in sorted order (``['.', 'a', 'e', 'i', 'l', 'm', 'o', 'v']`` for the example).
    """
    raise NotImplementedError


def count_matrix(words: list[str], vocab: list[str]) -> torch.Tensor:
    """Bigram counts.

    Args:
        words: the words to count (each one wrapped in ``'.'`` at both ends).
        vocab: the vocabulary (itos), from ``build_vocab``; it may hold characters the words do not use.

    Returns:
        ``(V, V)`` int64 tensor (on the CPU) with ``N[i, j]`` = number of times ``vocab[j]`` directly
        follows ``vocab[i]``. ``count_matrix(["emma"], ...)`` counts ``.e em mm ma a.`` once each.
    """
    raise NotImplementedError


def probabilities(N: torch.Tensor, k: float = 1.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Next-character distributions with add-``k`` smoothing.

    Args:
        N: ``(V, V)`` integer counts.
        k: pseudo-count added to every entry (0: no smoothing; a row of zeros then gives 0/0).
        dtype: the floating dtype of the result (makemore's ``.float()`` is float32).

    Returns:
        ``(V, V)`` tensor of ``dtype`` on ``N``'s device: ``(N + k)`` with each ROW divided by its sum,
        so that ``P[i].sum() == 1``. Convert ``N`` to ``dtype`` before adding ``k``.
    """
    raise NotImplementedError


def nll(words: list[str], P: torch.Tensor, vocab: list[str]) -> torch.Tensor:
    """Average negative log-likelihood of ``words`` under the bigram table ``P``.

    Args:
        words: the words to score; every bigram counts, the ``'.'`` ones at both ends included
            (``"emma"`` contributes 5 bigrams).
        P: ``(V, V)`` probabilities, rows summing to 1.
        vocab: the vocabulary (itos) that ``P``'s rows and columns follow.

    Returns:
        0-dim tensor, dtype and device of ``P``: ``-(1/n) * sum log P[x, y]`` over the ``n`` bigrams.
        Gather all the ``P[x, y]`` at once with two index tensors: ``P[xs, ys]``.
    """
    raise NotImplementedError


def sample(P: torch.Tensor, n: int, generator: torch.Generator, vocab: list[str]) -> list[str]:
    """Draw ``n`` names from the bigram model.

    For each name: start with ``ix = 0`` (``'.'``), then repeat

        ix = torch.multinomial(P[ix], 1, replacement=True, generator=generator).item()

    and append ``vocab[ix]``, until ``ix == 0`` comes back. That exact call, in that order, and no
    other draw from ``generator``: the graded suite replays your draws with a generator seeded like
    yours (``replacement=True`` as in makemore; for a single draw it makes no difference). Pass the
    row ``P[ix]`` as it is; ``multinomial`` needs no normalization.

    Args:
        P: ``(V, V)`` probabilities, rows summing to 1 (any device, float dtype).
        n: how many names.
        generator: a seeded ``torch.Generator`` on ``P``'s device (``torch.Generator(device=...)
            .manual_seed(2147483647)`` in makemore): the same seed gives the same names.
        vocab: itos, to turn indices into characters.

    Returns:
        A list of ``n`` strings, each WITHOUT the ``'.'`` markers (a name may be empty when ``'.'``
        follows ``'.'`` at once).
    """
    raise NotImplementedError


def one_hot(xs: torch.Tensor, V: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """One-hot encoding, by hand.

    Args:
        xs: ``(n,)`` int64 indices in ``[0, V)``.
        V: the number of classes (columns).
        dtype: the dtype of the result (``F.one_hot`` would give int64, which cannot be multiplied
            with a float ``W``).

    Returns:
        ``(n, V)`` tensor of ``dtype`` on ``xs``'s device: row ``r`` is all 0 except a 1 at ``xs[r]``.
    """
    raise NotImplementedError


def neural_bigram_loss(W: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, reg: float = 0.0) -> torch.Tensor:
    """Loss of the neural bigram model.

    Args:
        W: ``(V, V)`` weights (float, any device).
        xs: ``(n,)`` int64 indices of the current characters.
        ys: ``(n,)`` int64 indices of the characters that follow them.
        reg: weight of the regularizer ``mean(W ** 2)``.

    Returns:
        0-dim tensor, dtype and device of ``W``: the mean over ``r`` of ``-log softmax(one_hot(xs) @ W)[r,
        ys[r]]``, plus ``reg * (W ** 2).mean()``. Stable for logits of 1e4 (see the module's pitfalls).
        Differentiable with respect to ``W`` (you train with ``loss.backward()``): the graded suite
        compares autograd's gradient through your loss with torch's.
    """
    raise NotImplementedError


def neural_bigram_grad(W: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, reg: float = 0.0) -> torch.Tensor:
    """``dL/dW`` of ``neural_bigram_loss(W, xs, ys, reg)``, by hand (no autograd).

    Returns:
        ``(V, V)`` tensor, dtype and device of ``W``: ``one_hot(xs).T @ (probs - one_hot(ys)) / n
        + 2 * reg * W / W.numel()``, with ``probs`` the row softmax of ``one_hot(xs) @ W`` (stable: max
        subtracted). A row of ``W`` that no ``xs`` selects gets only the regularizer's gradient.
    """
    raise NotImplementedError
