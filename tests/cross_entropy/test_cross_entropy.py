"""Hidden suite for cross_entropy: the learner's log_softmax, cross-entropy loss and its manual
gradient against ``torch.log_softmax``, ``F.cross_entropy`` and ``torch.autograd.grad``.

Every promise of the stub, and the test that holds it to it (fixed ``@example``s in brackets):

=============================================================  ====================================
logits ``(N, C)``, ``(N, C, d1)``, ``(N, C, d1, d2)``, 3 dims  every test (PLAIN, SPATIAL, SPATIAL2, SPATIAL3)
classes in dim 1, not the last dim                              test_class_index_targets (SPATIAL*)
class-index targets, ``ignore_index`` -100, -1, a valid class, or beyond the classes (99)   test_class_index_targets, *_gradient_*
probability targets, ``ignore_index`` does not apply to them    test_probability_targets (ignore=0)
``reduction`` mean / sum / none                                 loss and gradient tests (each one)
mean over the counted samples only                              test_class_index_targets (PLAIN)
every target ignored: nan mean, zero gradient                   test_every_target_ignored
``label_smoothing`` over all C classes, probabilities too       loss and gradient tests (0.1, 0.5)
gradient ``softmax - q``, 0 rows for ignored, "none" = of sum   test_gradient_* (ignore -100 and 0)
stable: logits of +-1e4, rows of different scale                EXTREME, ROWS, test_extreme_*
``log_softmax`` over any ``dim``, negative ones too             test_log_softmax
dtype and device of ``logits`` kept                             every test (float64, float32, cuda)
inputs are never changed in place                               the worker's check, every call
the signature's defaults (``dim=-1``, "mean", -100, 0.0)        test_defaults_are_the_stubs
any other ``reduction`` raises ValueError                       test_an_unknown_reduction_is_an_error
an ignored row adds nothing, even of -inf logits (not inf * 0)  test_an_ignored_row_of_masked_logits
a time-major model's logits and targets, views (no ``.view``)   test_non_contiguous_logits_and_target
=============================================================  ====================================
"""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

from tests.compare import check
from tests.diagnosis import forward_or_backward
from tests.strategies import Case, cases, dims, randn, seeded, seeds
from tests.references import reference

# n: batch size; classes: C; extra: the trailing dims (d1, d2) of (N, C, d1, d2) logits (none for
# (N, C)); scale: spread of the logits (1e4: exp overflows unless the max is subtracted first;
# "rows": samples alternate between a spread of 1e4 and of 1, so that only the max of each sample's
# own scores keeps every sample finite).
shapes = cases(n=dims(1, 4), classes=dims(2, 5), extra=st.lists(dims(1, 3), max_size=2),
               scale=st.sampled_from([1.0, 3.0, 1e4, "rows", "offset"]), seed=seeds())
reductions = st.sampled_from(["mean", "sum", "none"])
smoothings = st.sampled_from([0.0, 0.1, 0.5])
# How targets are ignored: "no ignore_index" passes none (no target is ignored); otherwise the value
# given as ignore_index, held by some of the targets.
ignores = st.sampled_from(["no ignore_index", -100, 0, -1, 99])

# Explicit cases, run first: (N, C), (N, C, d1) and (N, C, d1, d2) logits, extreme logits, and
# samples of very different scale.
PLAIN = Case(n=4, classes=3, extra=[], scale=1.0, seed=1)
SPATIAL = Case(n=2, classes=4, extra=[3], scale=3.0, seed=2)
SPATIAL2 = Case(n=2, classes=3, extra=[2, 3], scale=1.0, seed=4)
EXTREME = Case(n=3, classes=5, extra=[], scale=1e4, seed=3)
ROWS = Case(n=4, classes=3, extra=[2], scale="rows", seed=5)
# Every logit near 1e4: log_softmax as x - (m + log(sum exp(x - m))) rounds m + log(...) to float32's
# grid at 1e4 (steps of 1e-3) and loses the digits that (x - m) - log(...) keeps.
OFFSET = Case(n=3, classes=4, extra=[], scale="offset", seed=6)
UNIT = Case(n=3, classes=4, extra=[1], scale=1.0, seed=7)  # a sequence of one step: a squeeze() too many shows
# Three spatial dims: moving the classes last with transpose(1, -1) swaps d1 and d3 (right for one or two)
SPATIAL3 = Case(n=2, classes=4, extra=[2, 3, 2], scale=1.0, seed=8)


def _logits(case, dtype, device):
    if case.scale == "offset":
        return (randn(case.n, case.classes, *case.extra, seed=case.seed) + 1e4).to(dtype=dtype, device=device)
    if case.scale != "rows":
        return randn(case.n, case.classes, *case.extra, seed=case.seed, dtype=dtype, device=device, scale=case.scale)
    z = randn(case.n, case.classes, *case.extra, seed=case.seed)
    spread = torch.tensor([1e4 if r % 2 == 0 else 1.0 for r in range(case.n)], dtype=torch.float64)
    return (z * spread.reshape(-1, *[1] * (z.dim() - 1))).to(dtype=dtype, device=device)


def _scale(case):
    if case.scale == "offset":
        return "logits of spread 1 around 1e4"
    return "samples of spread 1e4 and 1 in turn" if case.scale == "rows" else f"logits of scale {case.scale:g}"


def _class_targets(case, device, ignore):
    """Class indices shaped ``(n, *extra)``; with an ``ignore_index``, about a third of them hold it
    (the last one always when there are several, the first one never)."""
    g = seeded(case.seed + 1)
    shape = (case.n, *case.extra)
    target = torch.randint(case.classes, shape, generator=g)
    if ignore != "no ignore_index":
        flat = target.view(-1)
        flat[torch.rand(flat.shape, generator=g) < 0.35] = ignore
        if flat.numel() > 1:
            flat[-1] = ignore
        if flat[0] == ignore:
            flat[0] = 1
    return target.to(device)


def _probability_targets(case, dtype, device):
    """Distributions over the classes (dim 1), shaped like the logits, some of them peaked."""
    z = randn(case.n, case.classes, *case.extra, seed=case.seed + 2, scale=3.0)
    return torch.softmax(z, dim=1).to(dtype=dtype, device=device)


def _kwargs(reduction, ignore, label_smoothing):
    kw = {"reduction": reduction, "label_smoothing": label_smoothing}
    if ignore != "no ignore_index":
        kw["ignore_index"] = ignore
    return kw


def _call(name, logits, kw):
    args = ", ".join(f"{k}={v!r}" for k, v in kw.items())
    return f"{name}(logits of shape {tuple(logits.shape)}, {args})"


def _reference(logits, target, kw):
    """``F.cross_entropy``; it refuses an ``ignore_index`` with probability targets, to which the
    stub says it does not apply: they are scored without it."""
    if target.is_floating_point():
        kw = {k: v for k, v in kw.items() if k != "ignore_index"}
    return F.cross_entropy(logits, target, **kw)


@reference
def _reference_grad(logits, target, kw):
    """``torch.autograd.grad`` of ``F.cross_entropy`` (of the sum of the losses for "none")."""
    leaf = logits.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(_reference(leaf, target, kw).sum(), leaf)
    return grad


def _check_grad(impl, name, logits, target, kw):
    """``check`` of the learner's ``cross_entropy_grad``, with the forward-or-backward diagnosis."""
    got = impl.cross_entropy_grad(logits, target, **kw)
    with forward_or_backward(impl, "cross_entropy", _reference_loss, dict(logits=logits, target=target, **kw),
                             {"logits": got}):
        check(name, got, _reference_grad(logits, target, kw))


def _reference_loss(logits, target, **kw):
    return _reference(logits, target, kw)


@given(case=shapes, axis=st.integers(0, 2), negative=st.booleans())
@example(case=EXTREME, axis=1, negative=False)
@example(case=SPATIAL, axis=1, negative=True)
@example(case=SPATIAL, axis=2, negative=False)
@example(case=ROWS, axis=1, negative=False)
@example(case=OFFSET, axis=1, negative=False)
def test_log_softmax(impl, device, dtype, case, axis, negative):
    x = _logits(case, dtype, device)
    dim = axis % x.dim() - (x.dim() if negative else 0)
    check(f"log_softmax(x of shape {tuple(x.shape)}, dim={dim}) with {_scale(case)}",
          impl.log_softmax(x, dim=dim), torch.log_softmax(x, dim=dim))


@given(case=shapes, reduction=reductions, ignore=ignores, label_smoothing=smoothings)
@example(case=PLAIN, reduction="mean", ignore=-100, label_smoothing=0.0)
@example(case=SPATIAL, reduction="mean", ignore=-100, label_smoothing=0.1)
@example(case=EXTREME, reduction="none", ignore="no ignore_index", label_smoothing=0.1)
@example(case=SPATIAL2, reduction="none", ignore=-100, label_smoothing=0.5)
@example(case=ROWS, reduction="sum", ignore=0, label_smoothing=0.0)
@example(case=PLAIN, reduction="mean", ignore=99, label_smoothing=0.0)
@example(case=SPATIAL, reduction="sum", ignore=-1, label_smoothing=0.1)
@example(case=OFFSET, reduction="none", ignore="no ignore_index", label_smoothing=0.0)
@example(case=UNIT, reduction="sum", ignore=-100, label_smoothing=0.0)
@example(case=SPATIAL3, reduction="none", ignore=-100, label_smoothing=0.0)
def test_class_index_targets(impl, device, dtype, case, reduction, ignore, label_smoothing):
    logits, target = _logits(case, dtype, device), _class_targets(case, device, ignore)
    kw = _kwargs(reduction, ignore, label_smoothing)
    check(_call("cross_entropy", logits, kw) + f" with class-index targets, {_scale(case)}",
          impl.cross_entropy(logits, target, **kw), _reference(logits, target, kw), **_tight(dtype))


def _tight(dtype) -> dict:
    """float64 losses checked to 1e-12: a loss carried through float32 keeps 7 digits, inside 1e-7."""
    return {"rtol": 1e-12} if dtype == torch.float64 else {}


@given(case=shapes, reduction=reductions, ignore=ignores, label_smoothing=smoothings)
@example(case=PLAIN, reduction="mean", ignore="no ignore_index", label_smoothing=0.0)
@example(case=SPATIAL, reduction="mean", ignore="no ignore_index", label_smoothing=0.1)
@example(case=SPATIAL2, reduction="none", ignore=0, label_smoothing=0.5)
@example(case=PLAIN, reduction="sum", ignore=0, label_smoothing=0.0)
@example(case=EXTREME, reduction="none", ignore="no ignore_index", label_smoothing=0.0)
@example(case=SPATIAL3, reduction="none", ignore="no ignore_index", label_smoothing=0.1)
def test_probability_targets(impl, device, dtype, case, reduction, ignore, label_smoothing):
    """``ignore_index`` (when given) does not apply to probability targets: every sample counts."""
    logits, target = _logits(case, dtype, device), _probability_targets(case, dtype, device)
    kw = _kwargs(reduction, ignore, label_smoothing)
    check(_call("cross_entropy", logits, kw) + " with probability targets",
          impl.cross_entropy(logits, target, **kw), _reference(logits, target, kw), **_tight(dtype))


@given(case=shapes, reduction=reductions, ignore=ignores, label_smoothing=smoothings)
@example(case=PLAIN, reduction="mean", ignore=-100, label_smoothing=0.0)
@example(case=SPATIAL, reduction="mean", ignore=0, label_smoothing=0.1)
@example(case=SPATIAL2, reduction="sum", ignore=-100, label_smoothing=0.5)
@example(case=ROWS, reduction="none", ignore="no ignore_index", label_smoothing=0.0)
@example(case=EXTREME, reduction="mean", ignore="no ignore_index", label_smoothing=0.1)
@example(case=PLAIN, reduction="mean", ignore=99, label_smoothing=0.1)
@example(case=SPATIAL3, reduction="none", ignore=0, label_smoothing=0.1)
def test_gradient_class_index_targets(impl, device, dtype, case, reduction, ignore, label_smoothing):
    logits, target = _logits(case, dtype, device), _class_targets(case, device, ignore)
    kw = _kwargs(reduction, ignore, label_smoothing)
    _check_grad(impl, _call("cross_entropy_grad", logits, kw) + " with class-index targets", logits, target, kw)


@given(case=shapes, reduction=reductions, ignore=ignores, label_smoothing=smoothings)
@example(case=PLAIN, reduction="mean", ignore="no ignore_index", label_smoothing=0.0)
@example(case=SPATIAL, reduction="mean", ignore="no ignore_index", label_smoothing=0.1)
@example(case=SPATIAL2, reduction="sum", ignore=0, label_smoothing=0.5)
@example(case=ROWS, reduction="none", ignore="no ignore_index", label_smoothing=0.0)
@example(case=SPATIAL3, reduction="none", ignore=0, label_smoothing=0.0)
def test_gradient_probability_targets(impl, device, dtype, case, reduction, ignore, label_smoothing):
    logits, target = _logits(case, dtype, device), _probability_targets(case, dtype, device)
    kw = _kwargs(reduction, ignore, label_smoothing)
    _check_grad(impl, _call("cross_entropy_grad", logits, kw) + " with probability targets", logits, target, kw)


@given(case=shapes, reduction=reductions, ignore=st.sampled_from([-100, 0]), label_smoothing=smoothings)
@example(case=PLAIN, reduction="mean", ignore=-100, label_smoothing=0.0)
@example(case=SPATIAL, reduction="sum", ignore=0, label_smoothing=0.1)
def test_every_target_ignored(impl, device, dtype, case, reduction, ignore, label_smoothing):
    logits = _logits(case, dtype, device)
    target = torch.full((case.n, *case.extra), ignore, device=device)
    kw = _kwargs(reduction, ignore, label_smoothing)
    what = " when every target is ignored"
    check(_call("cross_entropy", logits, kw) + what + (" (0 / 0: nan, as in torch)" if reduction == "mean" else ""),
          impl.cross_entropy(logits, target, **kw), _reference(logits, target, kw))
    _check_grad(impl, _call("cross_entropy_grad", logits, kw) + what + " (nothing counts: all zeros)",
                logits, target, kw)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_an_ignored_row_of_masked_logits(impl, device, dtype, reduction):
    """An ignored position whose logits are masked to -inf (padding, as a model's mask leaves it):
    it adds nothing to the loss, not ``inf * 0 = nan``, and gets a zero gradient."""
    inf = float("inf")
    logits = torch.tensor([[0.0, 1.0, 2.0, 0.5], [-inf, 0.0, -inf, -inf], [1.5, -1.0, 3.0, 1.0]],
                          dtype=dtype, device=device)
    target = torch.tensor([2, -100, 3], device=device)
    kw = _kwargs(reduction, -100, 0.0)
    what = " with the second row ignored and its logits masked to -inf"
    check(_call("cross_entropy", logits, kw) + what, impl.cross_entropy(logits, target, **kw),
          _reference(logits, target, kw))
    _check_grad(impl, _call("cross_entropy_grad", logits, kw) + what, logits, target, kw)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_non_contiguous_logits_and_target(impl, device, dtype, reduction):
    """A time-major language model's scores: logits ``(T, B, C)`` go in as ``permute(1, 2, 0)`` and
    targets ``(T, B)`` as ``.T``, both views whose dims ``.view`` cannot merge (``reshape`` can)."""
    T, B, C = 3, 2, 4
    logits = randn(T, B, C, seed=11, dtype=dtype, device=device, scale=2.0).permute(1, 2, 0)
    target = torch.tensor([[0, 3], [2, -100], [1, 1]], device=device).T
    kw = _kwargs(reduction, -100, 0.0)
    what = " of logits (B, C, T) and targets (B, T) given as views of time-major tensors"
    check(_call("cross_entropy", logits, kw) + what, impl.cross_entropy(logits, target, **kw),
          _reference(logits, target, kw))
    _check_grad(impl, _call("cross_entropy_grad", logits, kw) + what, logits, target, kw)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_a_class_masked_to_minus_inf(impl, device, dtype, reduction):
    """A class that is not the target masked to -inf (a model's mask): with class-index targets it
    costs nothing, as in torch (the target's own log-probability, not ``0 * -inf = nan``)."""
    inf = float("inf")
    logits = torch.tensor([[0.0, -inf, 1.0], [2.0, 0.5, -inf]], dtype=dtype, device=device)
    target = torch.tensor([0, 1], device=device)
    kw = _kwargs(reduction, "no ignore_index", 0.0)
    what = " with a class masked to -inf in each row"
    check(_call("cross_entropy", logits, kw) + what, impl.cross_entropy(logits, target, **kw),
          _reference(logits, target, kw))
    _check_grad(impl, _call("cross_entropy_grad", logits, kw) + what, logits, target, kw)


@given(case=cases(n=dims(1, 4), classes=dims(2, 5), seed=seeds()), right=st.booleans(),
       label_smoothing=smoothings)
@example(case=Case(n=3, classes=4, seed=0), right=True, label_smoothing=0.0)
@example(case=Case(n=3, classes=4, seed=0), right=False, label_smoothing=0.1)
def test_extreme_confident_logits(impl, device, dtype, case, right, label_smoothing):
    """Logits of +1e4 on one class, -1e4 elsewhere; the target is that class (``right``) or another."""
    g = seeded(case.seed)
    guess = torch.randint(case.classes, (case.n,), generator=g)
    target = (guess if right else (guess + 1 + torch.randint(case.classes - 1, (case.n,), generator=g)) % case.classes)
    logits = (F.one_hot(guess, case.classes) * 2e4 - 1e4).to(dtype=dtype, device=device)
    target = target.to(device)
    kw = _kwargs("none", "no ignore_index", label_smoothing)
    where = f" for {'right' if right else 'wrong'} predictions made with logits of +-1e4"
    check(_call("cross_entropy", logits, kw) + where,
          impl.cross_entropy(logits, target, **kw), _reference(logits, target, kw))
    _check_grad(impl, _call("cross_entropy_grad", logits, kw) + where, logits, target, kw)


# The device pass (tests/devices.py): every tensor input on the meta device.

from tests.devices import check_devices, meta  # noqa: E402

DEVICE_CASES = {
    "log_softmax": lambda: ((meta(3, 5),), {"dim": 0}),
    "cross_entropy(class indices, ignore_index, label_smoothing)": lambda: (
        (meta(3, 5), meta(3, dtype=torch.int64)), {"ignore_index": 1, "label_smoothing": 0.1}),
    "cross_entropy(probabilities, reduction='none')": lambda: ((meta(3, 5, 2), meta(3, 5, 2)), {"reduction": "none"}),
    "cross_entropy_grad(class indices)": lambda: ((meta(3, 5), meta(3, dtype=torch.int64)), {"ignore_index": 1}),
    "cross_entropy_grad(class indices, label_smoothing)": lambda: (
        (meta(3, 5, 2), meta(3, 2, dtype=torch.int64)), {"label_smoothing": 0.1}),
    "cross_entropy_grad(probabilities, reduction='sum')": lambda: ((meta(3, 5), meta(3, 5)), {"reduction": "sum"}),
    # the device pass's integers are 0: every target ignored, where code may take a branch of its own
    "cross_entropy(every target ignored)": lambda: ((meta(3, 5), meta(3, dtype=torch.int64)), {"ignore_index": 0}),
    "cross_entropy_grad(every target ignored)": lambda: (
        (meta(3, 5), meta(3, dtype=torch.int64)), {"ignore_index": 0}),
}


@pytest.mark.gated  # device handling counts as far as the topic's values are right
@pytest.mark.parametrize("case", DEVICE_CASES)
def test_device_propagation(impl, case):
    args, kwargs = DEVICE_CASES[case]()
    check_devices(impl, case.split("(")[0], *args, **kwargs)


from tests.defaults import check_defaults, check_refuses  # noqa: E402


@pytest.mark.gated  # a check of how the functions are called, not of what they compute
@pytest.mark.parametrize("fn", ["cross_entropy", "cross_entropy_grad"])
@pytest.mark.parametrize("reduction", ["Mean", "average"])
def test_an_unknown_reduction_is_an_error(impl, device, fn, reduction):
    """As in F.cross_entropy: a misspelt reduction raises ValueError instead of quietly giving another."""
    check_refuses(impl, fn, f"{fn}(reduction={reduction!r})", "a reduction other than 'mean', 'sum' and 'none'",
                  _logits(PLAIN, torch.float64, device), _class_targets(PLAIN, device, -100), reduction=reduction)


@pytest.mark.gated  # a check of how the functions are called, not of what they compute
@pytest.mark.parametrize("fn", ["log_softmax", "cross_entropy", "cross_entropy_grad"])
def test_defaults_are_the_stubs(impl, fn):
    """Called without ``dim``, ``reduction``, ``ignore_index`` and ``label_smoothing``: on (N, C, d1)
    logits, with targets that hold -100."""
    logits = _logits(SPATIAL, torch.float64, "cpu")
    targets = () if fn == "log_softmax" else (_class_targets(SPATIAL, "cpu", -100),)
    check_defaults(impl, "cross_entropy", fn, logits, *targets)

