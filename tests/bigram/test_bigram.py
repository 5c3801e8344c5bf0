"""Hidden suite for bigram: counts, probabilities, NLL and samples against references written here
with torch; the neural bigram's loss, autograd through it, and its hand-written gradient against
``F.cross_entropy`` and autograd.

Every promise of the stub, and the test that holds it to it (fixed ``@example``s run first):

=============================================================  =====================================
vocab: '.' first, then the distinct characters, sorted          test_build_vocab
counts with '.' at both ends, int64 on the CPU                  test_count_matrix
vocab may hold characters the words do not use                  test_count_matrix (extra)
rows normalized, add-k, dtype asked for, device of N            test_probabilities
k = 0 and a row of zeros: 0 / 0 = nan                           test_probabilities (empty_row)
defaults: k = 1, float32; one_hot float32; reg = 0              test_defaults
nll: mean over every bigram, end markers included               test_nll
nll of an unseen bigram without smoothing: inf                  test_nll (unseen)
sample: replays torch.multinomial with the generator, no '.'    test_sample
one_hot by hand, dtype, device of xs                            test_one_hot
loss: mean cross-entropy + reg * mean(W ** 2), stable at 1e4    test_neural_bigram_loss
rows of W of very different scale                               loss and gradient tests (scale rows)
weights near 1e4: the max taken out, not added back             loss and gradient tests (scale offset)
loss differentiable: autograd through it matches torch          test_neural_bigram_loss_gradient
grad by hand; unselected rows get the regularizer's part only   test_neural_bigram_grad
dtype and device of the inputs kept                             every test (float64, float32, cuda)
inputs are never changed in place                               the worker's check, every call
=============================================================  =====================================
"""
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

from grader.wire import Generator
from tests.compare import Mismatch, check
from tests.diagnosis import forward_or_backward
from tests.references import reference
from tests.strategies import Case, cases, dims, randint, randn, seeds

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
@example(words=["mary-jane", "d'arcy", "ann lee"])  # '-', "'" and ' ' sort before '.'; '.' still comes first
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
@example(words=["ab", "ba", "aab"], extra="z")
@example(words=["bc", "cb"], extra="a")  # 'a' sorts before the words' characters: every index of vocab shifts
@example(words=["ab", "", "b"], extra="")  # an empty word is the bigram '..'
def test_count_matrix(impl, words, extra):
    vocab = _vocab(words + [extra])  # the vocabulary may hold characters these words do not use
    check(f"count_matrix({words!r}, vocab={vocab!r})", impl.count_matrix(words, vocab), _counts(words, vocab))


@given(case=cases(vocab=dims(2, 6), seed=seeds()), k=smoothing, empty_row=st.booleans())
@example(case=Case(vocab=4, seed=1), k=0.5, empty_row=False)
@example(case=Case(vocab=3, seed=2), k=0.0, empty_row=True)
@example(case=Case(vocab=5, seed=3), k=1.0, empty_row=True)
@example(case=Case(vocab=3, seed=0), k=0.1, empty_row=False)  # k not a float32 number: convert, then add, in dtype
def test_probabilities(impl, device, dtype, case, k, empty_row):
    """``empty_row``: the last character is never followed by anything (a row of zero counts); with
    k = 0 its row is 0 / 0 = nan, as the stub says."""
    N = randint(6, case.vocab, case.vocab, seed=case.seed, device=device)
    N[:, 0] += 1
    if empty_row:
        N[-1] = 0
    name = str(dtype).removeprefix("torch.")
    expected = _probs(N, k, dtype, device)
    expected[(N.sum(1) + k * case.vocab) == 0] = float("nan")  # F.normalize gives 0 there, not 0 / 0
    what = " with a row of zero counts" + (" (0 / 0: nan)" if k == 0.0 else "") if empty_row else ""
    # float64 to the last few ulps: (N + k).to(dtype), or rows normalized in float32 and converted after,
    # stay within the default rtol 1e-7 but keep only float32's digits
    check(f"probabilities(N, k={k}, dtype={name}){what}", impl.drive("probabilities", N, k, name), expected,
          rtol=1e-12 if dtype == torch.float64 else None)


@given(case=cases(n=dims(1, 8), vocab=dims(2, 6), seed=seeds()))
@example(case=Case(n=5, vocab=4, seed=1))
def test_defaults(impl, device, case):
    """``probabilities(N)``: k = 1 and float32; ``one_hot(xs, V)``: float32; the neural bigram's reg = 0."""
    N = randint(6, case.vocab, case.vocab, seed=case.seed, device=device)
    W, xs, ys = _neural_inputs(case, torch.float64, device, 1.0)
    got = impl.drive("defaults", N, xs, W, ys)
    if not isinstance(got, dict):
        raise Mismatch(f"calling the functions with their defaults returned {_show(got)}")
    check("probabilities(N) (defaults: k=1, dtype=float32)", got["probabilities"], _probs(N, 1.0, torch.float32, device))
    check(f"one_hot(xs, {case.vocab}) (default dtype: float32)", got["one_hot"], F.one_hot(xs, case.vocab).float())
    check("neural_bigram_loss(W, xs, ys) (default reg: 0)", got["neural_bigram_loss"], _reference_loss(W, xs, ys, 0.0))
    check("neural_bigram_grad(W, xs, ys) (default reg: 0)", got["neural_bigram_grad"], _loss_and_grad(W, xs, ys, 0.0)[1])


@given(words=words_lists, k=smoothing, unseen=st.sampled_from(["", "ba", "eeee"]),
       extra=st.text(alphabet="abcdefg", max_size=3))
@example(words=["emma", "ava"], k=1.0, unseen="", extra="")
@example(words=["ab", "abb"], k=0.0, unseen="ba", extra="")
@example(words=["bc", "cb"], k=1.0, unseen="", extra="a")  # 'a' in the vocabulary, in none of the words
@example(words=["ab", "", "ba"], k=1.0, unseen="", extra="")  # an empty word: one bigram, ('.', '.')
# About 2,000 bigrams: the product of their probabilities is 0 even in float64, and a mean taken in
# float32 keeps float32's digits only
@example(words=["emma", "olivia", "ava", "isabella", "sophia"] * 60, k=1.0, unseen="", extra="")
def test_nll(impl, device, dtype, words, k, unseen, extra):
    """``unseen``: a word scored under a table counted without it (an unseen bigram with k = 0: inf).
    ``extra``: characters of the vocabulary that the words do not use (P follows ``vocab``, not the words)."""
    scored = words + [unseen] if unseen else words
    vocab = _vocab(scored + [extra])
    P = _probs(_counts(words, vocab), k, dtype, device)
    xs, ys = _pairs(scored, vocab)
    expected = F.nll_loss(P.log()[xs.to(device)], ys.to(device))
    what = f" (the table counted without {unseen!r})" if unseen else ""
    tight = {"rtol": 1e-12, "atol": 0.0} if dtype == torch.float64 else {}  # a mean taken in float32 shows
    check(f"nll({scored!r}, P, vocab) with P smoothed by k={k}{what}", impl.nll(scored, P, vocab), expected, **tight)


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
@example(words=["emma", "olivia", "ava"], k=1.0, n=5, seed=2147483647)
@example(words=["ab", "b"], k=0.0, n=4, seed=3)
def test_sample(impl, device, dtype, words, k, n, seed):
    vocab = _vocab(words)
    P = _probs(_counts(words, vocab), k, dtype, device)
    got = impl.sample(P, n, Generator(seed, device), vocab)
    expected = _reference_sample(P, n, seed, device, vocab)
    if not isinstance(got, list) or not all(isinstance(s, str) for s in got):
        raise Mismatch(f"sample should return a list of {n} strings, got {_show(got)}")
    if got != expected:
        raise Mismatch(f"sample(P, n={n}, generator seeded with {seed}, vocab) returned {got!r}, but the same "
                       f"generator gives {expected!r}: start each name at '.', draw every next index with one "
                       "call of torch.multinomial(P[ix], 1, replacement=True, generator=generator) on the row as "
                       "it is, nothing else from the generator, stop when '.' is drawn, and leave the '.' out of "
                       "the name")


@given(case=cases(n=dims(1, 8), vocab=dims(2, 6), seed=seeds()))
@example(case=Case(n=5, vocab=4, seed=1))
def test_one_hot(impl, device, dtype, case):
    xs = randint(case.vocab, case.n, seed=case.seed, device=device)
    name = str(dtype).removeprefix("torch.")
    check(f"one_hot(xs, {case.vocab}, dtype={name})", impl.drive("one_hot", xs, case.vocab, name),
          F.one_hot(xs, case.vocab).to(dtype))


neural = cases(n=dims(1, 8), vocab=dims(2, 6), seed=seeds())
regs = st.sampled_from([0.0, 0.01, 0.5])
# "rows": the rows of W alternate between a spread of 1e4 and of 1; "offset": every weight near 1e4
# (spread 1): a log-sum-exp written as m + log(sum exp(x - m)) rounds to float32's grid at 1e4 (steps
# of 1e-3) and loses the digits that (x - m) - log(sum exp(x - m)) keeps
scales = st.sampled_from([1.0, 1e4, "rows", "offset"])
# Fixed cases: more rows than bigrams (some rows of W selected by no xs), and the reverse.
FEW = Case(n=3, vocab=5, seed=1)
MANY = Case(n=8, vocab=3, seed=2)


def _neural_inputs(case, dtype, device, scale):
    if scale == "offset":
        W = (randn(case.vocab, case.vocab, seed=case.seed) + 1e4).to(dtype=dtype, device=device)
    elif scale == "rows":
        W = randn(case.vocab, case.vocab, seed=case.seed)
        W = (W * torch.tensor([1e4 if r % 2 == 0 else 1.0 for r in range(case.vocab)])[:, None])
        W = W.to(dtype=dtype, device=device)
    else:
        W = randn(case.vocab, case.vocab, seed=case.seed, dtype=dtype, device=device, scale=scale)
    xs = randint(case.vocab, case.n, seed=case.seed + 1, device=device)
    ys = randint(case.vocab, case.n, seed=case.seed + 2, device=device)
    return W, xs, ys


def _scale(scale):
    if scale == "offset":
        return "weights of spread 1 around 1e4"
    return "rows of spread 1e4 and 1 in turn" if scale == "rows" else f"scale {scale:g}"


def _reference_loss(W, xs, ys, reg):
    logits = F.one_hot(xs, W.shape[0]).to(W.dtype) @ W
    return F.cross_entropy(logits, ys) + reg * (W ** 2).mean()


@reference
def _loss_and_grad(W, xs, ys, reg):
    """The reference loss and its gradient with respect to ``W`` (``torch.autograd.grad``)."""
    ref_W = W.clone().requires_grad_(True)
    loss = _reference_loss(ref_W, xs, ys, reg)
    (grad,) = torch.autograd.grad(loss, ref_W)
    return loss.detach(), grad


@given(case=neural, reg=regs, scale=scales)
@example(case=FEW, reg=0.5, scale=1.0)
@example(case=MANY, reg=0.0, scale=1e4)
@example(case=MANY, reg=0.01, scale="rows")
@example(case=FEW, reg=0.0, scale="offset")
def test_neural_bigram_loss(impl, device, dtype, case, reg, scale):
    W, xs, ys = _neural_inputs(case, dtype, device, scale)
    check(f"neural_bigram_loss(W, xs, ys, reg={reg}) with W of {_scale(scale)}",
          impl.neural_bigram_loss(W, xs, ys, reg), _reference_loss(W, xs, ys, reg))


@given(case=neural, reg=regs, scale=scales)
@example(case=FEW, reg=0.5, scale=1.0)
@example(case=MANY, reg=0.01, scale="rows")
@example(case=FEW, reg=0.0, scale="offset")
def test_neural_bigram_loss_gradient(impl, device, dtype, case, reg, scale):
    """``loss.backward()`` through the learner's loss, as a training loop does, against torch."""
    W, xs, ys = _neural_inputs(case, dtype, device, scale)
    loss, grad = impl.drive("loss_and_grad", W, xs, ys, reg)
    expected, expected_grad = _loss_and_grad(W, xs, ys, reg)
    what = f"neural_bigram_loss(W, xs, ys, reg={reg}) with W of {_scale(scale)}"
    check(what, loss, expected)
    if grad is None:
        raise Mismatch(f"{what} is not differentiable with respect to W (a .item(), a detach, or a new "
                       "tensor built from Python numbers?): loss.backward() could not train W")
    check(f"autograd's gradient of {what} with respect to W", grad, expected_grad)


@given(case=neural, reg=regs, scale=scales)
@example(case=FEW, reg=0.5, scale=1.0)
@example(case=MANY, reg=0.0, scale=1e4)
@example(case=MANY, reg=0.01, scale="rows")
@example(case=FEW, reg=0.0, scale="offset")
def test_neural_bigram_grad(impl, device, dtype, case, reg, scale):
    W, xs, ys = _neural_inputs(case, dtype, device, scale)
    expected = _loss_and_grad(W, xs, ys, reg)[1]
    got = impl.neural_bigram_grad(W, xs, ys, reg)
    inputs = dict(W=W, xs=xs, ys=ys, reg=reg)
    with forward_or_backward(impl, "neural_bigram_loss", _reference_loss, inputs, {"W": got}):
        check(f"neural_bigram_grad(W, xs, ys, reg={reg}) with W of {_scale(scale)}", got, expected)


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


@pytest.mark.gated  # device handling counts as far as the topic's values are right
@pytest.mark.parametrize("fn", DEVICE_CASES)
def test_device_propagation(impl, fn):
    args, kwargs = DEVICE_CASES[fn]()
    check_devices(impl, fn, *args, **kwargs)
