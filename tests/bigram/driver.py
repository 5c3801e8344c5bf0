"""Runs beside the learner's code in the sandbox: passes a ``torch.dtype`` that cannot travel as data,
and differentiates the learner's neural bigram loss.

Functions here take the learner's module first; the hidden suite names the dtype as a string. They
keep their own reference to ``torch.autograd.grad``, taken before the forbidden-API guards are
installed.
"""
import torch

_DTYPES = {"float64": torch.float64, "float32": torch.float32}
_grad = torch.autograd.grad
DIFFERENTIATE = {'loss_and_grad'}  # drivers that differentiate the learner's forwards: they run
# where autograd is on, in a child of their own (the functions written by hand are not there)


def probabilities(m, N, k, dtype):
    return m.probabilities(N, k, dtype=_DTYPES[dtype])


def one_hot(m, xs, V, dtype):
    return m.one_hot(xs, V, dtype=_DTYPES[dtype])


def defaults(m, N, xs, W, ys):
    """Each function called with its optional arguments left out."""
    return {"probabilities": m.probabilities(N), "one_hot": m.one_hot(xs, W.shape[0]),
            "neural_bigram_loss": m.neural_bigram_loss(W, xs, ys), "neural_bigram_grad": m.neural_bigram_grad(W, xs, ys)}


def loss_and_grad(m, W, xs, ys, reg):
    """The learner's loss and autograd's gradient of it with respect to ``W`` (None when the loss
    is not differentiable)."""
    W = W.detach().requires_grad_(True)
    loss = m.neural_bigram_loss(W, xs, ys, reg)
    if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
        return loss, None
    (g,) = _grad(loss, W)
    return loss.detach(), g
