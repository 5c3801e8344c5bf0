"""Cross-entropy loss and its gradient, written by hand.

Reference solution. The stub in ``exercises/cross_entropy/cross_entropy.py`` explains the math.
"""
import torch


def log_softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``x - logsumexp(x)`` along ``dim``, shifted by the max first so that ``exp`` cannot overflow."""
    shifted = x - x.amax(dim=dim, keepdim=True)
    return shifted - shifted.exp().sum(dim=dim, keepdim=True).log()


def _targets(logits, target, ignore_index, label_smoothing):
    """``(q, counted)``: the smoothed target distribution shaped like ``logits`` (classes in dim 1),
    and a bool mask, shaped like the per-sample losses, of the positions that count."""
    n_classes = logits.shape[1]
    if target.is_floating_point():  # probabilities, shaped like the logits
        q = target
        counted = torch.ones_like(target[:, 0], dtype=torch.bool)
    else:  # class indices, shaped like the logits without dim 1
        counted = target != ignore_index
        safe = torch.where(counted, target, torch.zeros_like(target))  # -100 is no valid index
        q = torch.zeros_like(logits).scatter(1, safe.unsqueeze(1), 1.0)
    q = q * (1 - label_smoothing) + label_smoothing / n_classes
    return q, counted


def cross_entropy(logits, target, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    """``F.cross_entropy`` for logits ``(N, C, d1, ...)`` and class-index or probability targets."""
    q, counted = _targets(logits, target, ignore_index, label_smoothing)
    losses = -(q * log_softmax(logits, dim=1)).sum(dim=1)
    if not (target.is_floating_point() or label_smoothing):  # the target's own log-probability, as in torch:
        at = torch.where(counted, target, 0).unsqueeze(1)  # a class masked to -inf elsewhere costs nothing
        losses = -log_softmax(logits, dim=1).gather(1, at).squeeze(1)  # (q * -inf = nan where q is 0)
    losses = torch.where(counted, losses, torch.zeros_like(losses))
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    if reduction == "mean":
        return losses.sum() / counted.sum()  # 0 / 0 = nan when every target is ignored, as in torch
    raise ValueError(f"unknown reduction {reduction!r}")


def cross_entropy_grad(logits, target, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    """d loss / d logits: ``softmax - q`` on the counted positions, 0 on the ignored ones, divided by
    the number of counted positions for ``"mean"`` (``"none"``: the gradient of the sum)."""
    q, counted = _targets(logits, target, ignore_index, label_smoothing)
    grad = log_softmax(logits, dim=1).exp() - q
    grad = torch.where(counted.unsqueeze(1), grad, torch.zeros_like(grad))
    if reduction == "mean":
        grad = grad / counted.sum().clamp(min=1)  # nothing counted: a zero gradient, as in torch
    elif reduction not in ("sum", "none"):
        raise ValueError(f"unknown reduction {reduction!r}")
    return grad
