"""Runs beside the learner's code in the sandbox: differentiates the learner's forwards.

Functions here take the learner's module first. They keep their own reference to
``torch.autograd.grad``, taken before the forbidden-API guards are installed.
"""
import torch

_grad = torch.autograd.grad


def output_and_weight_grad(m, fn, ids, weight, d_out, kwargs):
    """``fn(ids, weight, **kwargs)`` and the gradient of ``sum(out * d_out)`` with respect to
    ``weight`` (None when the output carries no gradient)."""
    weight = weight.detach().requires_grad_(True)
    out = getattr(m, fn)(ids, weight, **kwargs)
    if not isinstance(out, torch.Tensor) or not out.requires_grad or out.shape != d_out.shape:
        return out, None
    (g,) = _grad(out, [weight], grad_outputs=d_out, allow_unused=True)
    return out.detach(), g
