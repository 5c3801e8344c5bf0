"""Public tests: run ``pytest exercises/cross_entropy``. The graded suite checks much more."""
import torch
import torch.nn.functional as F

from cross_entropy import cross_entropy, cross_entropy_grad, log_softmax
from dlkata.compare import check
from dlkata.gradcheck import check_backward

LOGITS = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0]], dtype=torch.float64)


def _reference(logits, target, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    return F.cross_entropy(logits, target, reduction=reduction, ignore_index=ignore_index,
                           label_smoothing=label_smoothing)


def _call(name, options):
    return f"{name}(logits, target{''.join(f', {k}={v!r}' for k, v in options.items())})"


def _check_loss(logits, target, **options):
    check(_call("cross_entropy", options), cross_entropy(logits, target, **options),
          _reference(logits, target, **options))


def test_log_softmax_is_stable():
    x = torch.tensor([[1e4, 0.0, -1e4], [1.0, 2.0, 3.0]], dtype=torch.float64)
    check("log_softmax(x, dim=1)", log_softmax(x, dim=1), torch.log_softmax(x, dim=1))
    check("log_softmax(x, dim=0)", log_softmax(x, dim=0), torch.log_softmax(x, dim=0))
    check("log_softmax(x, dim=-1)", log_softmax(x, dim=-1), torch.log_softmax(x, dim=-1))


def test_class_index_targets():
    target = torch.tensor([0, 1, 2])
    for reduction in ["mean", "sum", "none"]:
        _check_loss(LOGITS, target, reduction=reduction)


def test_huge_logits_give_finite_losses():
    logits = torch.tensor([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0]], dtype=torch.float64)
    _check_loss(logits, torch.tensor([2, 1]), reduction="none")


def test_classes_are_in_dim_1():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 3, generator=g, dtype=torch.float64)  # (N, C, d1): C = 4 classes
    target = torch.tensor([[0, 3, 1], [2, 2, -100]])
    for reduction in ["mean", "none"]:
        _check_loss(logits, target, reduction=reduction)


def test_ignored_targets_are_left_out():
    target = torch.tensor([0, -100, 2])
    for reduction in ["mean", "sum", "none"]:
        _check_loss(LOGITS, target, reduction=reduction)
    _check_loss(LOGITS, torch.tensor([1, 5, 5]), ignore_index=5)
    _check_loss(LOGITS, torch.tensor([-100, -100, -100]))  # every target ignored: nan, as in torch


def test_label_smoothing_and_probability_targets():
    target = torch.tensor([2, 0, 1])
    _check_loss(LOGITS, target, label_smoothing=0.1)
    _check_loss(LOGITS, torch.tensor([2, -100, 1]), label_smoothing=0.3, reduction="none")
    probs = torch.tensor([[0.5, 0.25, 0.25], [0.0, 0.1, 0.9], [1.0, 0.0, 0.0]], dtype=torch.float64)
    _check_loss(LOGITS, probs)
    _check_loss(LOGITS, probs, reduction="none")
    _check_loss(LOGITS, probs, label_smoothing=0.2)  # smoothing applies to probabilities too


def _check_grad(logits, target, **options):
    leaf = logits.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(_reference(leaf, target, **options).sum(), leaf)
    grad = cross_entropy_grad(logits, target, **options)
    inputs = dict(logits=logits, target=target, **options)
    check_backward(_call("cross_entropy_grad", options), {"logits": grad}, {"logits": expected},
                   forward=cross_entropy, reference=_reference, inputs=inputs, own_forward="your cross_entropy")


def test_gradient_matches_autograd():
    for reduction in ["mean", "sum", "none"]:
        _check_grad(LOGITS, torch.tensor([0, 1, 1]), reduction=reduction)


def test_gradient_with_ignored_targets_smoothing_and_probabilities():
    _check_grad(LOGITS, torch.tensor([0, -100, 2]))  # the ignored row's gradient is 0
    _check_grad(LOGITS, torch.tensor([2, 0, 1]), label_smoothing=0.1)
    probs = torch.tensor([[0.5, 0.25, 0.25], [0.0, 0.1, 0.9], [1.0, 0.0, 0.0]], dtype=torch.float64)
    _check_grad(LOGITS, probs, reduction="sum", label_smoothing=0.2)
    _check_grad(torch.tensor([[1e4, 0.0, -1e4]], dtype=torch.float64), torch.tensor([1]))


def test_gradient_when_every_target_is_ignored_is_zero():
    logits = LOGITS.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(F.cross_entropy(logits, torch.tensor([-100, -100, -100])), logits)
    check("cross_entropy_grad with every target ignored",
          cross_entropy_grad(LOGITS, torch.tensor([-100, -100, -100])), expected)
