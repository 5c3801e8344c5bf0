"""Hidden suite for embedding: the learner's lookup, its manual backward and its bags against
``F.embedding``, ``F.embedding_bag`` and ``torch.autograd.grad``.

Promise (stub docstring)                                    -> test
lookup of any ids shape, (*ids.shape, D)                     -> test_embedding (ids of 1 to 3 dims; SINGLE: 0 dims)
padding row: forward unchanged, no gradient through autograd -> test_embedding_gradient
negative padding_idx counts from the end                     -> every test (-1 and -2 drawn; NEGATIVE, NEGATIVE_TWO)
backward: repeated ids accumulate, unseen rows are zeros     -> test_embedding_backward (REPEATS)
backward: ids of any shape, one id (0 dims, d_out (D,)) too  -> test_embedding_backward (SINGLE)
backward: padding row gets zeros                             -> test_embedding_backward
backward: any d_out of shape (*ids.shape, D), views included -> test_embedding_backward_non_contiguous
lookup of ids that are a view (transposed)                   -> test_embedding_of_non_contiguous_ids
bags of ids that are a view (transposed)                     -> test_embedding_bag_of_non_contiguous_ids
bags: sum and mean; padding left out of sum and count        -> test_embedding_bag
bag of padding only gives zeros (no 0 / 0)                   -> test_embedding_bag (ALL_PADDING)
bags differentiable with respect to weight                   -> test_embedding_bag_gradient
any other mode raises ValueError                             -> test_embedding_bag_refuses_an_unknown_mode
device and dtype of the inputs                               -> every test, over devices and dtypes
the signature's defaults (mode="mean", padding_idx=None)     -> test_defaults_are_the_stubs, test_embedding_gradient
"""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

from tests.compare import Mismatch, check, unpack
from tests.defaults import check_defaults, check_refuses
from tests.strategies import Case, cases, dims, randint, randn, seeds

PADDINGS = ["none", "first", "last", "negative", "negative_two"]
lookups = cases(ids_shape=st.lists(dims(1, 4), min_size=1, max_size=3), vocab=dims(2, 6), dim=dims(1, 4),
                padding=st.sampled_from(PADDINGS), seed=seeds())
bags = cases(batch=dims(1, 3), length=dims(1, 4), vocab=dims(2, 6), dim=dims(1, 4),
             padding=st.sampled_from(PADDINGS), seed=seeds())

# Explicit cases, run first. REPEATS: ids repeat (0 three times, 2 twice) and row 4 never appears;
# ALL_PADDING: one bag holds only the padding id, another mixes it with real ids.
REPEATS = Case(ids=[[0, 2, 0], [2, 0, 1]], vocab=5, dim=3, padding="none", seed=1)
EVERY_END = Case(ids=[[0, 4, 2], [4, 1, 3]], vocab=5, dim=3, padding="none", seed=1)  # the first and last rows
PADDED = Case(ids=[[3, 1, 0], [0, 0, 2]], vocab=4, dim=2, padding="first", seed=2)
NEGATIVE = Case(ids=[[3, 1], [2, 3]], vocab=4, dim=3, padding="negative", seed=3)
# padding_idx=-2 is row 2 (not the last row); ONE_DIM: ids of one dimension, a repeated id.
NEGATIVE_TWO = Case(ids=[[2, 1], [2, 3]], vocab=4, dim=3, padding="negative_two", seed=5)
ONE_DIM = Case(ids=[3, 0, 3], vocab=4, dim=2, padding="none", seed=6)
ALL_PADDING = Case(ids=[[0, 0, 0], [1, 0, 2]], vocab=3, dim=2, padding="first", seed=4)
SINGLE = Case(ids=2, vocab=4, dim=3, padding="none", seed=7)  # one id, 0 dims: d_out is (D,)


def _padding_idx(case):
    """The ``padding_idx`` argument of a case: None, a first or last row, -1 (the last row) or -2."""
    return {"none": None, "first": 0, "last": case.vocab - 1, "negative": -1, "negative_two": -2}[case.padding]


def _ids(case, device):
    if hasattr(case, "ids"):
        return torch.tensor(case.ids, dtype=torch.int64, device=device)
    shape = case.ids_shape if hasattr(case, "ids_shape") else [case.batch, case.length]
    ids = randint(case.vocab, *shape, seed=case.seed, device=device)
    if case.padding != "none":  # make sure the padding id occurs
        ids.view(-1)[0] = _padding_idx(case) % case.vocab
    return ids


def _weight(case, dtype, device):
    return randn(case.vocab, case.dim, seed=case.seed + 1, dtype=dtype, device=device)


def _d_out(shape, case, dtype, device):
    return randn(*shape, seed=case.seed + 2, dtype=dtype, device=device)


def _grad_of(fn, weight, d_out):
    w = weight.detach().requires_grad_(True)
    out = fn(w)
    (g,) = torch.autograd.grad(out, [w], grad_outputs=d_out)
    return out.detach(), g


def _check_gradient(what, out, grad, expected_out, expected_grad):
    check(what, out, expected_out)
    if grad is None:
        raise Mismatch(f"{what} carries no gradient to weight (a detach, an .item(), or a tensor rebuilt "
                       "from Python numbers?)")
    check(f"gradient of {what} with respect to weight", grad, expected_grad)


@given(case=lookups)
@example(case=REPEATS)
@example(case=NEGATIVE)
@example(case=ONE_DIM)
@example(case=SINGLE)
def test_embedding(impl, device, dtype, case):
    ids, weight = _ids(case, device), _weight(case, dtype, device)
    padding_idx = _padding_idx(case)
    expected = F.embedding(ids, weight, padding_idx=padding_idx)
    check(f"embedding(ids of shape {tuple(ids.shape)}, padding_idx={padding_idx})",
          impl.embedding(ids, weight, padding_idx=padding_idx), expected)


@given(case=lookups)
@example(case=PADDED)
@example(case=NEGATIVE_TWO)
@example(case=REPEATS)  # no padding_idx passed: id 0 must get its gradient under the signature's default
def test_embedding_gradient(impl, device, dtype, case):
    ids, weight = _ids(case, device), _weight(case, dtype, device)
    padding_idx = _padding_idx(case)
    d_out = _d_out((*ids.shape, case.dim), case, dtype, device)
    expected_out, expected_grad = _grad_of(lambda w: F.embedding(ids, w, padding_idx=padding_idx), weight, d_out)
    given = {} if padding_idx is None else {"padding_idx": padding_idx}  # None: the signature's default
    out, grad = unpack(impl.drive("output_and_weight_grad", "embedding", ids, weight, d_out, given), 2, "embedding")
    _check_gradient(f"embedding(padding_idx={padding_idx})", out, grad, expected_out, expected_grad)


@given(case=lookups)
@example(case=REPEATS)
@example(case=PADDED)
@example(case=NEGATIVE)
@example(case=NEGATIVE_TWO)
@example(case=ONE_DIM)
@example(case=SINGLE)
def test_embedding_backward(impl, device, dtype, case):
    ids, weight = _ids(case, device), _weight(case, dtype, device)
    padding_idx = _padding_idx(case)
    d_out = _d_out((*ids.shape, case.dim), case, dtype, device)
    _, expected = _grad_of(lambda w: F.embedding(ids, w, padding_idx=padding_idx), weight, d_out)
    got = impl.embedding_backward(ids, d_out, case.vocab, padding_idx=padding_idx)
    check(f"embedding_backward(padding_idx={padding_idx}) (compared with autograd on F.embedding): d_weight",
          got, expected)


def test_embedding_of_non_contiguous_ids(impl, device, dtype):
    """ids that are a view (transposed), not contiguous: ``.view(-1)`` fails on them."""
    ids = torch.tensor([[0, 2, 0], [3, 0, 1]], device=device).T
    weight = randn(5, 4, seed=9, dtype=dtype, device=device)
    check("embedding(ids transposed, not contiguous)", impl.embedding(ids, weight), F.embedding(ids, weight))


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_embedding_bag_of_non_contiguous_ids(impl, device, dtype, mode):
    """Bags whose ids are a view (transposed), not contiguous: ``ids.view(-1)`` fails on them."""
    weight = randn(5, 3, seed=5, dtype=dtype, device=device)
    ids = torch.tensor([[0, 2, 4], [3, 1, 1]], device=device).T  # 3 bags of 2, not contiguous
    check(f"embedding_bag(ids transposed, not contiguous, mode={mode!r})", impl.embedding_bag(ids, weight, mode=mode),
          F.embedding_bag(ids, weight, mode=mode))


def test_embedding_backward_non_contiguous(impl, device, dtype):
    """ids and d_out that are views (transposed), not contiguous: ``.view(-1, D)`` fails on them."""
    ids = torch.tensor([[0, 2, 0], [3, 0, 1]], device=device).T  # (3, 2), repeats, not contiguous
    d_out = randn(2, 3, 4, seed=7, dtype=dtype, device=device).transpose(0, 1)  # (3, 2, 4), not contiguous
    weight = randn(5, 4, seed=8, dtype=dtype, device=device)
    for padding_idx in (None, 0):
        _, expected = _grad_of(lambda w: F.embedding(ids, w, padding_idx=padding_idx), weight, d_out)
        got = impl.drive("backward_of_transposed", ids.T.contiguous(), d_out.transpose(0, 1).contiguous(), 5,
                         padding_idx)
        check(f"embedding_backward(padding_idx={padding_idx}) with a transposed (non-contiguous) ids and d_out "
              "(use reshape, not view): d_weight", got, expected)


@given(case=bags, mode=st.sampled_from(["sum", "mean"]))
@example(case=ALL_PADDING, mode="mean")
@example(case=ALL_PADDING, mode="sum")
@example(case=REPEATS, mode="mean")
@example(case=NEGATIVE, mode="sum")
@example(case=NEGATIVE_TWO, mode="mean")
def test_embedding_bag(impl, device, dtype, case, mode):
    ids, weight = _ids(case, device), _weight(case, dtype, device)
    padding_idx = _padding_idx(case)
    expected = F.embedding_bag(ids, weight, mode=mode, padding_idx=padding_idx)
    check(f"embedding_bag(mode={mode!r}, padding_idx={padding_idx}) (compared with F.embedding_bag)",
          impl.embedding_bag(ids, weight, mode=mode, padding_idx=padding_idx), expected)


@given(case=bags, mode=st.sampled_from(["sum", "mean"]))
@example(case=ALL_PADDING, mode="mean")
@example(case=PADDED, mode="sum")
@example(case=NEGATIVE, mode="mean")
def test_embedding_bag_gradient(impl, device, dtype, case, mode):
    ids, weight = _ids(case, device), _weight(case, dtype, device)
    padding_idx = _padding_idx(case)
    d_out = _d_out((ids.shape[0], case.dim), case, dtype, device)
    expected_out, expected_grad = _grad_of(
        lambda w: F.embedding_bag(ids, w, mode=mode, padding_idx=padding_idx), weight, d_out)
    out, grad = unpack(impl.drive("output_and_weight_grad", "embedding_bag", ids, weight, d_out,
                                  {"mode": mode, "padding_idx": padding_idx}), 2, "embedding_bag")
    _check_gradient(f"embedding_bag(mode={mode!r}, padding_idx={padding_idx})", out, grad,
                    expected_out, expected_grad)


@pytest.mark.gated  # a check of how the functions are called, not of what they compute
@pytest.mark.parametrize("mode", ["max", "Sum"])
def test_embedding_bag_refuses_an_unknown_mode(impl, device, mode):
    check_refuses(impl, "embedding_bag", f"embedding_bag(mode={mode!r})", "a mode other than 'sum' and 'mean'",
                  _ids(REPEATS, device), _weight(REPEATS, torch.float64, device), mode=mode)


# The device pass (tests/devices.py): every tensor input on the meta device.

from tests.devices import check_devices, meta  # noqa: E402

DEVICE_CASES = {
    "embedding(padding_idx)": lambda: ((meta(2, 3, dtype=torch.int64), meta(5, 4)), {"padding_idx": 0}),
    "embedding_backward(padding_idx)": lambda: ((meta(2, 3, dtype=torch.int64), meta(2, 3, 4), 5), {"padding_idx": 0}),
    "embedding_bag(mean, padding_idx)": lambda: ((meta(2, 3, dtype=torch.int64), meta(5, 4)), {"padding_idx": 0}),
    "embedding_bag(sum)": lambda: ((meta(2, 3, dtype=torch.int64), meta(5, 4)), {"mode": "sum"}),
    "embedding_bag(mean)": lambda: ((meta(2, 3, dtype=torch.int64), meta(5, 4)), {"mode": "mean"}),
}


@pytest.mark.gated  # device handling counts as far as the topic's values are right
@pytest.mark.parametrize("case", DEVICE_CASES)
def test_device_propagation(impl, case):
    args, kwargs = DEVICE_CASES[case]()
    check_devices(impl, case.split("(")[0], *args, **kwargs)


@pytest.mark.gated  # a check of how the functions are called, not of what they compute
@pytest.mark.parametrize("fn", ["embedding_bag", "embedding_backward"])
def test_defaults_are_the_stubs(impl, fn):
    """Called without ``mode`` and ``padding_idx``, on bags of three ids that hold id 0 and the last
    id (a default of -1 for "no padding" would still take the last row for padding)."""
    ids = _ids(EVERY_END, "cpu")
    if fn == "embedding_bag":
        check_defaults(impl, "embedding", fn, ids, _weight(EVERY_END, torch.float64, "cpu"))
    else:
        check_defaults(impl, "embedding", fn, ids,
                       _d_out((*ids.shape, EVERY_END.dim), EVERY_END, torch.float64, "cpu"), EVERY_END.vocab)

