"""Runs beside the learner's code in the sandbox: differentiates the learner's forwards.

Functions here take the learner's module first. They keep their own reference to
``torch.autograd.grad``, taken before the forbidden-API guards are installed.
"""
import torch

_grad = torch.autograd.grad
DIFFERENTIATE = {'output_and_weight_grad'}  # drivers that differentiate the learner's forwards: they run
# where autograd is on, in a child of their own (the functions written by hand are not there)


def output_and_weight_grad(m, fn, ids, weight, d_out, kwargs):
    """``fn(ids, weight, **kwargs)`` and the gradient of ``sum(out * d_out)`` with respect to
    ``weight`` (None when the output carries no gradient)."""
    weight = weight.detach().requires_grad_(True)
    out = getattr(m, fn)(ids, weight, **kwargs)
    if not isinstance(out, torch.Tensor) or not out.requires_grad or out.shape != d_out.shape:
        return out, None
    (g,) = _grad(out, [weight], grad_outputs=d_out, allow_unused=True)
    return out.detach(), g


def backward_of_transposed(m, ids_t, d_out_t, num_embeddings, padding_idx):
    """``embedding_backward`` on views: ``ids_t.T`` and ``d_out_t.transpose(0, 1)``, not contiguous
    (tensors reach the sandbox contiguous; the views are made here)."""
    return m.embedding_backward(ids_t.T, d_out_t.transpose(0, 1), num_embeddings, padding_idx=padding_idx)
