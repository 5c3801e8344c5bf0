"""Hidden suite for cross_entropy: the learner's log_softmax, cross-entropy loss and its manual
gradient against ``torch.log_softmax``, ``F.cross_entropy`` and ``torch.autograd.grad``."""
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

from tests.compare import check
from tests.strategies import Case, cases, dims, randn, seeded, seeds

# n: batch size; classes: C; extra: the trailing dims d1 of (N, C, d1) logits (none for (N, C));
# scale: spread of the logits (1e4: exp overflows unless the max is subtracted first).
shapes = cases(n=dims(1, 4), classes=dims(2, 5), extra=st.lists(dims(1, 3), max_size=1),
               scale=st.sampled_from([1.0, 3.0, 1e4]), seed=seeds())
reductions = st.sampled_from(["mean", "sum", "none"])
smoothings = st.sampled_from([0.0, 0.1, 0.5])
# How targets are ignored: "no ignore_index" passes none (no target is ignored); otherwise the value
# given as ignore_index, held by some of the targets.
ignores = st.sampled_from(["no ignore_index", -100, 0])

# Explicit cases, run first: (N, C) and (N, C, d1) logits, extreme logits.
PLAIN = Case(n=4, classes=3, extra=[], scale=1.0, seed=1)
SPATIAL = Case(n=2, classes=4, extra=[3], scale=3.0, seed=2)
EXTREME = Case(n=3, classes=5, extra=[], scale=1e4, seed=3)


def _logits(case, dtype, device):
    return randn(case.n, case.classes, *case.extra, seed=case.seed, dtype=dtype, device=device, scale=case.scale)


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


def _reference_grad(logits, target, kw):
    """``torch.autograd.grad`` of ``F.cross_entropy`` (of the sum of the losses for "none")."""
    leaf = logits.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(leaf, target, **kw).sum(), leaf)
    return grad


@given(case=shapes, axis=st.integers(0, 2), negative=st.booleans())
@example(case=EXTREME, axis=1, negative=False)
@example(case=SPATIAL, axis=1, negative=True)
def test_log_softmax(impl, device, dtype, case, axis, negative):
    x = _logits(case, dtype, device)
    dim = axis % x.dim() - (x.dim() if negative else 0)
    check(f"log_softmax(x of shape {tuple(x.shape)}, dim={dim}) with logits of scale {case.scale:g}",
          impl.log_softmax(x, dim=dim), torch.log_softmax(x, dim=dim))


@given(case=shapes, reduction=reductions, ignore=ignores, label_smoothing=smoothings)
@example(case=PLAIN, reduction="mean", ignore=-100, label_smoothing=0.0)
@example(case=SPATIAL, reduction="mean", ignore=-100, label_smoothing=0.1)
@example(case=EXTREME, reduction="none", ignore="no ignore_index", label_smoothing=0.1)
def test_class_index_targets(impl, device, dtype, case, reduction, ignore, label_smoothing):
    logits, target = _logits(case, dtype, device), _class_targets(case, device, ignore)
    kw = _kwargs(reduction, ignore, label_smoothing)
    check(_call("cross_entropy", logits, kw) + " with class-index targets",
          impl.cross_entropy(logits, target, **kw), F.cross_entropy(logits, target, **kw))


@given(case=shapes, reduction=reductions, label_smoothing=smoothings)
@example(case=PLAIN, reduction="mean", label_smoothing=0.0)
@example(case=SPATIAL, reduction="mean", label_smoothing=0.1)
def test_probability_targets(impl, device, dtype, case, reduction, label_smoothing):
    logits, target = _logits(case, dtype, device), _probability_targets(case, dtype, device)
    kw = _kwargs(reduction, "no ignore_index", label_smoothing)
    check(_call("cross_entropy", logits, kw) + " with probability targets",
          impl.cross_entropy(logits, target, **kw), F.cross_entropy(logits, target, **kw))


@given(case=shapes, reduction=reductions, ignore=ignores, label_smoothing=smoothings)
@example(case=PLAIN, reduction="mean", ignore=-100, label_smoothing=0.0)
@example(case=SPATIAL, reduction="mean", ignore=0, label_smoothing=0.1)
def test_gradient_class_index_targets(impl, device, dtype, case, reduction, ignore, label_smoothing):
    logits, target = _logits(case, dtype, device), _class_targets(case, device, ignore)
    kw = _kwargs(reduction, ignore, label_smoothing)
    check(_call("cross_entropy_grad", logits, kw) + " with class-index targets",
          impl.cross_entropy_grad(logits, target, **kw), _reference_grad(logits, target, kw))


@given(case=shapes, reduction=reductions, label_smoothing=smoothings)
@example(case=PLAIN, reduction="mean", label_smoothing=0.0)
@example(case=SPATIAL, reduction="mean", label_smoothing=0.1)
def test_gradient_probability_targets(impl, device, dtype, case, reduction, label_smoothing):
    logits, target = _logits(case, dtype, device), _probability_targets(case, dtype, device)
    kw = _kwargs(reduction, "no ignore_index", label_smoothing)
    check(_call("cross_entropy_grad", logits, kw) + " with probability targets",
          impl.cross_entropy_grad(logits, target, **kw), _reference_grad(logits, target, kw))


@given(case=shapes, reduction=reductions, ignore=st.sampled_from([-100, 0]), label_smoothing=smoothings)
@example(case=PLAIN, reduction="mean", ignore=-100, label_smoothing=0.0)
def test_every_target_ignored(impl, device, dtype, case, reduction, ignore, label_smoothing):
    logits = _logits(case, dtype, device)
    target = torch.full((case.n, *case.extra), ignore, device=device)
    kw = _kwargs(reduction, ignore, label_smoothing)
    what = " when every target is ignored"
    check(_call("cross_entropy", logits, kw) + what + (" (0 / 0: nan, as in torch)" if reduction == "mean" else ""),
          impl.cross_entropy(logits, target, **kw), F.cross_entropy(logits, target, **kw))
    check(_call("cross_entropy_grad", logits, kw) + what + " (nothing counts: all zeros)",
          impl.cross_entropy_grad(logits, target, **kw), _reference_grad(logits, target, kw))


@given(case=cases(n=dims(1, 4), classes=dims(2, 5), seed=seeds()), right=st.booleans(),
       label_smoothing=smoothings)
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
          impl.cross_entropy(logits, target, **kw), F.cross_entropy(logits, target, **kw))
    check(_call("cross_entropy_grad", logits, kw) + where,
          impl.cross_entropy_grad(logits, target, **kw), _reference_grad(logits, target, kw))


# The device pass (tests/devices.py): every tensor input on the meta device.
import pytest  # noqa: E402  (kept with the test it serves, at the end of the module)

from tests.devices import check_devices, meta  # noqa: E402

DEVICE_CASES = {
    "log_softmax": lambda: ((meta(3, 5),), {"dim": 0}),
    "cross_entropy(class indices, ignore_index, label_smoothing)": lambda: (
        (meta(3, 5), meta(3, dtype=torch.int64)), {"ignore_index": 1, "label_smoothing": 0.1}),
    "cross_entropy(probabilities, reduction='none')": lambda: ((meta(3, 5, 2), meta(3, 5, 2)), {"reduction": "none"}),
    "cross_entropy_grad(class indices)": lambda: ((meta(3, 5), meta(3, dtype=torch.int64)), {"ignore_index": 1}),
    "cross_entropy_grad(probabilities, reduction='sum')": lambda: ((meta(3, 5), meta(3, 5)), {"reduction": "sum"}),
}


@pytest.mark.parametrize("case", DEVICE_CASES)
def test_device_propagation(impl, case):
    args, kwargs = DEVICE_CASES[case]()
    check_devices(impl, case.split("(")[0], *args, **kwargs)
