"""Cross-entropy: the loss of (almost) every classifier and language model, and its gradient.

A model gives C unnormalized scores (logits) ``z`` per sample; softmax turns them into probabilities
``p_c = exp(z_c) / sum_k exp(z_k)``. Against a target distribution ``q`` over the classes,

    loss = -sum_c q_c * log p_c                 (natural log)
    log p_c = z_c - log(sum_k exp(z_k))        (log_softmax)

With a class-index target ``y``, ``q`` is the one-hot vector of ``y`` and the loss is ``-log p_y``.

Shapes, as in ``F.cross_entropy``: ``logits`` is ``(N, C)`` or ``(N, C, d1, d2, ...)`` -- the classes
are in dim 1, NOT in the last dim (a language model's ``(B, T, C)`` logits go in as
``logits.transpose(1, 2)``: a view, as its targets may be, so flatten with ``reshape``, which
``.view`` cannot always do on a view). Any number of trailing dims ``d1, d2, d3, ...``. ``target`` is either
  * class indices: an integer tensor shaped like ``logits`` without dim 1 (``(N,)`` or
    ``(N, d1, ...)``), values in ``[0, C)`` or ``ignore_index``;
  * class probabilities: a floating tensor shaped exactly like ``logits`` (each distribution, along
    dim 1, sums to 1). ``ignore_index`` does not apply to them: given or not, every sample counts.
The per-sample losses have the shape of ``logits`` without dim 1.

Options (the semantics of ``F.cross_entropy``):
  * ``reduction``: ``"none"`` returns the per-sample losses, ``"sum"`` their sum, ``"mean"`` their
    mean over the samples that COUNT: with class indices, those whose target is not
    ``ignore_index`` (with probabilities, all samples). An ignored sample's loss is 0 and it is left
    out of the divisor: padding must not make the loss look smaller. When every target is ignored,
    the mean is 0 / 0 = nan, as in torch.
  * ``label_smoothing`` ``eps`` in ``[0, 1]``: the target distribution becomes
    ``q = (1 - eps) * q + eps / C`` -- ``eps`` is spread uniformly over ALL C classes, the true class
    included (so the true class gets ``1 - eps + eps / C``). This applies to probability targets too.

The gradient (``cross_entropy_grad``): for one counted sample, ``d loss / d z = softmax(z) - q``
(with the smoothed ``q``; this uses that ``q`` sums to 1). Ignored samples contribute nothing: their
rows of the gradient are 0. ``"sum"`` adds the samples' gradients, ``"mean"`` divides that by the
number of counted samples, ``"none"`` is defined here as the gradient of the SUM of the per-sample
losses (a vector loss has no single gradient; this is what ``losses.sum().backward()`` would give).
When every target is ignored, the gradient of the (nan) mean is all zeros, as in torch.

Pitfalls:
  * stability: ``exp(1000.0)`` is inf even in float64. Subtract the max along the class dim first:
    ``log_softmax(z) = (z - m) - log(sum exp(z - m))`` with ``m = max(z)`` is the same value and
    never overflows; logits of +-1e4 must give finite, correct losses and gradients;
  * normalize over the class dim only (``dim``), with ``keepdim=True`` so that shapes broadcast;
  * class-index targets may hold ``ignore_index`` (often -100, which is no valid index): replace
    them by a valid index before you index with them (in a new tensor, ``torch.where``), then mask
    their losses out;
  * a logit masked to -inf on a class that is not the target (a model's mask) costs nothing with
    class-index targets and no smoothing: take the target's own log-probability, as torch does, for
    ``0 * -inf`` is nan;
  * the max must be each sample's own (``amax(dim, keepdim=True)``): samples of very different scale
    sit in one batch, and the max of the whole tensor sends the smaller ones to ``log 0``;
  * keep the dtype and device of ``logits`` (no ``.item()``, no numpy, no ``.cpu()``).

Inputs are read-only, in every function of this course: never change an argument in place
(``x -= m``, ``target[target == -100] = 0``, ``x.transpose_``); write ``x = x - m`` and work on new
tensors. The graded suite checks every argument after each call.

Not allowed here (write them yourself): ``F.cross_entropy``, ``F.nll_loss``, ``F.log_softmax``,
``F.softmax``, ``torch.log_softmax`` / ``softmax`` / ``logsumexp`` and the tensor methods of those
names, ``nn.CrossEntropyLoss``, and autograd (``torch.autograd``, ``.backward()``) -- the gradient
is computed by the formula above. Class weights (``weight=``) are not part of this exercise.
Guide: GUIDE.md (English), GUIDE.zh.md (中文).
"""
import torch


def log_softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Log of the softmax of ``x`` along ``dim``, computed stably.

    Args:
        x: a floating tensor of any shape.
        dim: the dimension to normalize over (negative values count from the end).

    Returns:
        A tensor shaped like ``x`` (same dtype and device) whose ``exp`` sums to 1 along ``dim``.
        Finite for any finite ``x``, logits of +-1e4 included.

    Pitfall: subtract the max ``m`` first, and keep it subtracted: ``(x - m) - log(sum(exp(x - m)))``.
    Adding it back (``x - (m + log(...))``) rounds ``m + log(...)`` to the precision of numbers as large
    as ``m``: in float32, logits near 1e4 lose three digits.
    """
    raise NotImplementedError


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean",
                  ignore_index: int = -100, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy loss with the semantics of ``F.cross_entropy`` (see the module docstring).

    Args:
        logits: ``(N, C)`` or ``(N, C, d1, ...)`` unnormalized scores, classes in dim 1.
        target: class indices (int64, shaped like ``logits`` without dim 1) or class probabilities
            (floating, shaped like ``logits``).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``; anything else raises ``ValueError``, as in torch.
        ignore_index: class-index targets equal to it are left out (loss 0, not counted in the mean).
        label_smoothing: ``eps``; the target distribution becomes ``(1 - eps) * q + eps / C``.

    Returns:
        A 0-dim tensor (``"mean"``, ``"sum"``) or the per-sample losses (``"none"``), with the dtype
        and device of ``logits``.
    """
    raise NotImplementedError


def cross_entropy_grad(logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean",
                       ignore_index: int = -100, label_smoothing: float = 0.0) -> torch.Tensor:
    """Gradient of ``cross_entropy(logits, target, ...)`` with respect to ``logits``, by hand.

    Same arguments as ``cross_entropy``. Returns a tensor shaped like ``logits``: ``softmax - q``
    (smoothed targets) on the counted samples, zero rows for ignored ones; divided by the number of
    counted samples for ``"mean"``; for ``"none"``, the gradient of the SUM of the per-sample losses.
    No autograd.
    """
    raise NotImplementedError
