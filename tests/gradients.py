"""Gradients through a learner's forward: autograd runs in the sandbox, next to the learner's code
(``grads_through`` in ``tests/driver.py``), and its gradients are compared here with autograd
on the PyTorch reference.

A forward that returns the right values can still train wrongly: a hidden state detached between
steps, statistics computed under ``torch.no_grad()``, a result rebuilt from Python numbers. The loss
differentiated on both sides is ``sum_k sum(out_k * d_out_k)`` over the tensors of the result.
"""
from __future__ import annotations

import torch

from tests.compare import Mismatch, check
from tests.strategies import randn


def upstream(outputs, seed: int) -> list[torch.Tensor]:
    """One random upstream gradient per reference output, shaped, typed and placed like it."""
    return [randn(*o.shape, seed=seed + k, dtype=o.dtype, device=o.device) for k, o in enumerate(outputs)]


def reference_grads(outputs, inputs, d_outs) -> list[torch.Tensor]:
    """``torch.autograd.grad`` of ``sum_k sum(outputs[k] * d_outs[k])`` with respect to ``inputs``."""
    loss = sum((o * d).sum() for o, d in zip(outputs, d_outs))
    return list(torch.autograd.grad(loss, inputs))


def _flat(x) -> list:
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in _flat(v)]
    return []


def check_gradients(impl, fn: str, args, kwargs, d_outs, expected, expected_grads, *, outputs, inputs,
                    what: str, rtol: float | None = None, atol: float | None = None) -> None:
    """Run the learner's ``fn(*args, **kwargs)`` under autograd in the sandbox; compare the tensors of
    its result with ``expected`` (named ``outputs``) and the gradients with respect to every tensor
    argument (positional, then keyword, in order; named ``inputs``) with ``expected_grads``."""
    result, grads = impl.drive("grads_through", fn, args, kwargs, d_outs)
    got = _flat(result)
    if len(got) != len(expected):
        raise Mismatch(f"{what} should return {len(expected)} tensors ({', '.join(outputs)}), got {len(got)}")
    for name, g, e in zip(outputs, got, expected):
        check(f"{what}: {name}", g, e, rtol=rtol, atol=atol)
    if grads is None:
        raise Mismatch(f"{what} is not differentiable: autograd through it reaches none of its inputs (a "
                       "`.detach()`, `torch.no_grad()`, `.item()`, or a tensor rebuilt from Python numbers?)")
    for name, g, e in zip(inputs, grads, expected_grads):
        if g is None:
            raise Mismatch(f"{what}: autograd through it does not reach {name} (the result should depend on "
                           "it: a `.detach()` or `torch.no_grad()` on the way?)")
        check(f"{what}: gradient with respect to {name} (autograd through your forward)", g, e, rtol=rtol, atol=atol)
