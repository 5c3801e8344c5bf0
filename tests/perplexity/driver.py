"""Runs beside the learner's code in the sandbox: differentiates the learner's ``perplexity``.

Functions here take the learner's module first. They keep their own reference to
``torch.autograd.grad``, taken before the forbidden-API guards are installed.
"""
import torch

_grad = torch.autograd.grad
DIFFERENTIATE = {'perplexity_and_grad', 'perplexity_and_grad_transposed'}  # drivers that differentiate the
# learner's forwards (where a topic's gradients are written by hand, they run in a child of their own)


def perplexity_and_grad(m, logits, targets, ignore_index=None, mask=None):
    logits = logits.detach().requires_grad_(True)
    ppl = m.perplexity(logits, targets, ignore_index=ignore_index, mask=mask)
    if not isinstance(ppl, torch.Tensor) or not ppl.requires_grad:
        return ppl, None
    (g,) = _grad(ppl, logits)
    return ppl.detach(), g


def perplexity_and_grad_transposed(m, logits, targets, ignore_index=None, mask=None):
    """``perplexity_and_grad`` on non-contiguous inputs: ``logits``, ``targets`` and ``mask`` come as
    ``(T, B, ...)`` and are transposed here to ``(B, T, ...)`` views, as a time-major model's outputs
    are. The gradient goes back in ``(B, T, V)``."""
    leaf = logits.detach().requires_grad_(True)
    ppl = m.perplexity(leaf.transpose(0, 1), targets.transpose(0, 1), ignore_index=ignore_index,
                       mask=None if mask is None else mask.transpose(0, 1))
    if not isinstance(ppl, torch.Tensor) or not ppl.requires_grad:
        return ppl, None
    (g,) = _grad(ppl, leaf)
    return ppl.detach(), g.transpose(0, 1)
