"""Runs beside the learner's code in the sandbox: differentiates the learner's residual blocks.

Functions here take the learner's module first. They keep their own reference to
``torch.autograd.grad``, taken before the forbidden-API guards are installed.
"""
import torch

_grad = torch.autograd.grad


def block_and_grads(m, which, x, norm_weight, norm_bias, W, b, eps, d_out):
    """``which`` block's output, and the gradients of ``sum(out * d_out)`` with respect to
    ``(x, norm_weight, norm_bias, W, b)`` (None when the output is not differentiable)."""
    inputs = [t.detach().requires_grad_(True) for t in (x, norm_weight, norm_bias, W, b)]
    out = getattr(m, which)(*inputs, eps=eps)
    if not isinstance(out, torch.Tensor) or not out.requires_grad or out.shape != d_out.shape:
        return out, None
    grads = _grad(out, inputs, grad_outputs=d_out, allow_unused=True)
    return out.detach(), tuple(grads)


def own_finite_differences(m, source, forward, inputs, wrt, d_out):
    """Finite differences of the learner's ``forward``: ``dlkata.gradcheck.finite_differences``, whose
    source the grader sends along (see ``tests/diagnosis.py``)."""
    namespace = {}
    exec(compile(source, "gradcheck.py", "exec"), namespace)
    return namespace["finite_differences"](getattr(m, forward), inputs, wrt, d_out)
