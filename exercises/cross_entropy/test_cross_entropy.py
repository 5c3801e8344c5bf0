"""Public tests: run ``pytest exercises/cross_entropy``. The graded suite checks much more."""
import torch
import torch.nn.functional as F

from cross_entropy import cross_entropy, cross_entropy_grad, log_softmax


def test_log_softmax_is_stable():
    x = torch.tensor([[1e4, 0.0, -1e4], [1.0, 2.0, 3.0]], dtype=torch.float64)
    torch.testing.assert_close(log_softmax(x, dim=1), torch.log_softmax(x, dim=1))
    torch.testing.assert_close(log_softmax(x, dim=0), torch.log_softmax(x, dim=0))


def test_class_index_targets():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]], dtype=torch.float64)
    target = torch.tensor([0, 1])
    for reduction in ["mean", "sum", "none"]:
        torch.testing.assert_close(cross_entropy(logits, target, reduction=reduction),
                                   F.cross_entropy(logits, target, reduction=reduction))


def test_ignored_targets_are_left_out_of_the_mean():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    target = torch.tensor([0, -100, 2])
    torch.testing.assert_close(cross_entropy(logits, target), F.cross_entropy(logits, target))


def test_label_smoothing_and_probability_targets():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]], dtype=torch.float64)
    target = torch.tensor([2, 0])
    torch.testing.assert_close(cross_entropy(logits, target, label_smoothing=0.1),
                               F.cross_entropy(logits, target, label_smoothing=0.1))
    probs = torch.tensor([[0.5, 0.25, 0.25], [0.0, 0.1, 0.9]], dtype=torch.float64)
    torch.testing.assert_close(cross_entropy(logits, probs), F.cross_entropy(logits, probs))


def test_gradient_matches_autograd():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]], dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 1])
    (expected,) = torch.autograd.grad(F.cross_entropy(logits, target), logits)
    torch.testing.assert_close(cross_entropy_grad(logits.detach(), target), expected)
