"""Runs beside the learner's code in the sandbox: differentiates the learner's ``gru_forward``.

Functions here take the learner's module first. They keep their own reference to
``torch.autograd.grad``, taken before the forbidden-API guards are installed.
"""
import torch

_grad = torch.autograd.grad
DIFFERENTIATE = {'forward_and_grads'}  # drivers that differentiate the learner's forwards: they run
# where autograd is on, in a child of their own (the functions written by hand are not there)


def forward_and_grads(m, x, weights, h0, batch_first, d_output, d_h_n):
    """``gru_forward``'s ``(output, h_n)`` and the gradients of ``sum(output * d_output) +
    sum(h_n * d_h_n)`` with respect to ``x``, ``h0`` (when given) and every weight, in that order
    (None when the result carries no gradient)."""
    x = x.detach().requires_grad_(True)
    h0 = None if h0 is None else h0.detach().requires_grad_(True)
    weights = [tuple(w.detach().requires_grad_(True) for w in layer) for layer in weights]
    result = m.gru_forward(x, weights, h0=h0, batch_first=batch_first)
    if not (isinstance(result, (tuple, list)) and len(result) == 2
            and all(isinstance(t, torch.Tensor) for t in result)):
        return result, None
    output, h_n = result
    if not (output.requires_grad and h_n.requires_grad) or output.shape != d_output.shape \
            or h_n.shape != d_h_n.shape:
        return (output.detach(), h_n.detach()), None
    leaves = [x, *([h0] if h0 is not None else []), *[w for layer in weights for w in layer]]
    loss = (output * d_output).sum() + (h_n * d_h_n).sum()
    grads = _grad(loss, leaves, allow_unused=True)
    return (output.detach(), h_n.detach()), list(grads)
