"""The device pass: a learner function called with every tensor input on PyTorch's ``meta`` device.

Device bugs show on a GPU only (``torch.zeros(B, H)`` without ``device=``, a ``.cpu()`` round trip, a
tensor built from a Python list), and the machines that grade rarely have one. A ``meta`` tensor has a
shape, a dtype and a device but no values, and PyTorch refuses to mix it with a CPU tensor just as it
refuses to mix a CUDA tensor with a CPU tensor. So calling a function with its inputs on ``meta`` shows,
on any machine, whether its own tensors follow the device of its inputs:

* a device-mismatch error, data moved to the CPU (``.cpu()``, ``.numpy()``, a result written into a
  tensor made on the CPU), a returned tensor that is not on ``meta``, or no tensor returned at all
  (``return None`` does no work): a failure, with what to do;
* an error that only says a value is needed (``.item()``, ``if t > 0:``, an operation without a
  ``meta`` implementation), or any other error: inconclusive, the case is skipped and counts neither
  for nor against (like a CUDA case without a GPU). The values are the other tests' business; a
  correct solution never fails here, and code that does not run earns nothing here either.

A test module declares which functions take part, with small fixed inputs (their values do not
matter), in one test ``test_device_propagation`` parametrized over them.
"""
from __future__ import annotations

import pytest
import torch

from tests.compare import Mismatch
from grader.plugin import LearnerFunctionError

# What PyTorch says when tensors of two devices meet (the same words for cuda and meta).
_MIXED = ("is not on the expected device", "same device", "found at least two devices")
# Data leaving the inputs' device: ``.cpu()``, ``.to("cpu")``, ``.numpy()``, ``cpu_tensor[i] = t``.
_MOVED = ("Cannot copy out of meta tensor", "can't convert meta device type tensor to numpy")
# ... except ``.tolist()``, which only reads values (and works on a GPU).
_READS_VALUES = (".tolist(",)

_FIX = ("create new tensors on the device of the inputs: `torch.zeros(..., dtype=x.dtype, device=x.device)`, "
        "`x.new_zeros(...)` or `torch.zeros_like(x)`, and no tensors built from Python lists")
_HOW = ("(checked with every input on PyTorch's `meta` device, which refuses to meet CPU tensors the way "
        "a GPU does, so a submission that works on the CPU only would fail on a GPU)")


def meta(*shape, dtype=torch.float32) -> torch.Tensor:
    """A tensor of ``shape`` on the meta device: shape and dtype, no values."""
    return torch.empty(shape, dtype=dtype, device="meta")


def to_meta(x):
    """``x`` with every tensor (in lists, tuples and dicts too) moved to the meta device."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("meta")
    if isinstance(x, (list, tuple)):
        return type(x)(to_meta(v) for v in x)
    if isinstance(x, dict):
        return {k: to_meta(v) for k, v in x.items()}
    return x


def _tensors(x, path="result"):
    if isinstance(x, torch.Tensor):
        yield path, x
    elif isinstance(x, (list, tuple)):
        for i, v in enumerate(x):
            yield from _tensors(v, f"{path}[{i}]")
    elif isinstance(x, dict):
        for k, v in x.items():
            yield from _tensors(v, f"{path}[{k!r}]")


def _where(message: str) -> str:
    """The learner's source line that raised, from the sandbox's report (``rnn.py, line 20, in ...``)."""
    lines = [ln.strip() for ln in message.splitlines() if ", line " in ln and ", in " in ln]
    return lines[-1] if lines else ""


def check_devices(impl, fn: str, *args, **kwargs) -> None:
    """Call ``impl.<fn>`` with every tensor argument on ``meta``; fail on a device bug (see above)."""
    try:
        result = getattr(impl, fn)(*to_meta(args), **to_meta(kwargs))
    except LearnerFunctionError as e:
        message, where = str(e), _where(str(e))
        at = f" At {where}." if where else ""
        if any(s in message for s in _MIXED):
            raise Mismatch(f"`{fn}` created a tensor on the CPU while its inputs were elsewhere: {_FIX} {_HOW}.{at}") \
                from None
        if any(s in message for s in _MOVED) and not any(s in where for s in _READS_VALUES):
            raise Mismatch(f"`{fn}` moved data to the CPU while its inputs were elsewhere (`.cpu()`, `.numpy()`, "
                           f"`.to('cpu')`, or results written into a tensor made on the CPU): keep every tensor on "
                           f"the device of the inputs {_HOW}.{at}") from None
        # A value was needed, or another error that the value tests report: inconclusive, a case that
        # counts neither for nor against (like a CUDA case without a GPU), so that neither correct
        # code that reads values nor code that does not run at all is graded here.
        pytest.skip(f"`{fn}` could not be followed on the meta device (it needs values): inconclusive, not counted")
    tensors = list(_tensors(result))
    if not tensors:  # nothing to judge: a function of a tensor topic that returns no tensor has not done its work
        raise Mismatch(f"`{fn}` returned {type(result).__name__} for tensor inputs, not a tensor")
    for path, t in tensors:
        if t.device.type != "meta":
            where = "the CPU" if t.device.type == "cpu" else t.device.type
            raise Mismatch(f"`{fn}` returned a tensor on {where} ({path}) while its inputs were on another device: "
                           f"{_FIX} {_HOW}.")
