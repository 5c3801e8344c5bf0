"""The device pass: a learner function called with every tensor input on PyTorch's ``meta`` device.

Device bugs show on a GPU only (``torch.zeros(B, H)`` without ``device=``, a ``.cpu()`` round trip, a
tensor built from a Python list), and the machines that grade rarely have one. PyTorch refuses to mix
a ``meta`` tensor with a CPU tensor just as it refuses to mix a CUDA tensor with a CPU tensor, so a
function whose inputs are on ``meta`` shows, on any machine, whether its own tensors follow the device
of its inputs. A plain meta tensor has no values, though, and code that reads one (``.item()``,
``if t > 0:``) could not be followed past that line. So the sandbox gives the inputs values
(``worker.Elsewhere``: the same values every time; floats in [0, 1), integers 0, booleans True): to the
learner's code they are on ``meta`` in every way, every operation is checked by PyTorch's meta kernels
for the device rules, and the values ride along.

* a device-mismatch error, data moved to the CPU (``.cpu()``, ``.numpy()``, a result written into a
  tensor made on the CPU), a returned tensor that is not on ``meta``, or no tensor returned at all
  (``return None`` does no work): a failure, with what to do;
* what the pass cannot follow (a tensor made on ``meta`` in another thread, which it could not give
  values; a generator on ``meta``): inconclusive, the case is skipped and counts neither for nor
  against (like a CUDA case without a GPU);
* any other error: the same call is made again with the same values on the CPU. If it raises there
  too, the case is inconclusive and skipped (the value tests report that error; this test judges
  devices); if it runs there, the function behaves differently off the CPU: a failure.

The same call is then made with the floating inputs in bfloat16 (values on the CPU): every floating
tensor returned must be in a dtype the function was given. A buffer made without ``dtype=`` is float32,
which the float32 tests take for right and float64 absorbs; here it turns the result into float32.

A test module declares which functions take part, with small fixed inputs (their values do not
matter), in one test ``test_device_propagation`` parametrized over them.
"""
from __future__ import annotations

import pytest
import torch

from tests.compare import Mismatch
from grader.plugin import LearnerFunctionError
from grader.worker import DATA_MOVED, DEVICES_MIXED

# What the pass cannot follow (a meta tensor it could not give values, made in another thread; a
# generator asked for on the meta device: a GPU has generators, meta has none) the worker says in
# the reply (``LearnerFunctionError.unfollowed``), never in a message a learner's raise could copy.

_FIX = ("create new tensors on the device of the inputs: `torch.zeros(..., dtype=x.dtype, device=x.device)`, "
        "`x.new_zeros(...)` or `torch.zeros_like(x)`, and no tensors built from Python lists")
_HOW = ("(checked with every input on PyTorch's `meta` device, which refuses to meet CPU tensors the way "
        "a GPU does, so a submission that works on the CPU only would fail on a GPU)")


def meta(*shape, dtype=torch.float32) -> torch.Tensor:
    """A tensor of ``shape`` on the meta device: shape and dtype, no values."""
    return torch.empty(shape, dtype=dtype, device="meta")


def _each_tensor(x, f):
    """``x`` with ``f`` applied to every tensor (in lists, tuples and dicts too)."""
    if isinstance(x, torch.Tensor):
        return f(x)
    if isinstance(x, (list, tuple)):
        return type(x)(_each_tensor(v, f) for v in x)
    if isinstance(x, dict):
        return {k: _each_tensor(v, f) for k, v in x.items()}
    return x


def to_meta(x):
    """``x`` with every tensor (in lists, tuples and dicts too) moved to the meta device."""
    return _each_tensor(x, lambda t: t.detach().to("meta"))


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


def last_line(message: str) -> str:
    """The last line of a learner's error (``ValueError: ...``), for a message of our own."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "(no message)"


def check_devices(impl, fn: str, *args, **kwargs) -> None:
    """Call ``impl.<fn>`` with every tensor argument on ``meta``; fail on a device bug (see above)."""
    args, kwargs = to_meta(args), to_meta(kwargs)
    try:
        result = impl.device_pass("elsewhere", fn, *args, **kwargs)
    except LearnerFunctionError as e:
        message, where = str(e), _where(str(e))
        at = f" At {where}." if where else ""
        if any(s in message for s in DEVICES_MIXED):
            raise Mismatch(f"`{fn}` created a tensor on the CPU while its inputs were elsewhere: {_FIX} {_HOW}.{at}") \
                from None
        if any(s in message for s in DATA_MOVED):
            raise Mismatch(f"`{fn}` moved data to the CPU while its inputs were elsewhere (`.cpu()`, `.numpy()`, "
                           f"`.to('cpu')`, or results written into a tensor made on the CPU): keep every tensor on "
                           f"the device of the inputs {_HOW}.{at}") from None
        if e.unfollowed:
            pytest.skip(f"`{fn}` could not be followed on the meta device: inconclusive here, not counted")
        try:  # another error: does it depend on the device?
            impl.device_pass("cpu", fn, *args, **kwargs)
        except LearnerFunctionError:
            # It raises on the CPU too, with the same values: the value tests report it; this case
            # counts neither for nor against (like a CUDA case without a GPU).
            pytest.skip(f"`{fn}` raised on these inputs on the CPU too: inconclusive here, not counted")
        raise Mismatch(f"`{fn}` raised off the CPU, and not on the CPU with the same values: {last_line(message)} "
                       f"{_HOW}.{at}") from None
    tensors = list(_tensors(result))
    if not tensors:  # nothing to judge: a function of a tensor topic that returns no tensor has not done its work
        raise Mismatch(f"`{fn}` returned {type(result).__name__} for tensor inputs, not a tensor")
    for path, t in tensors:
        if t.device.type != "meta":
            where = "the CPU" if t.device.type == "cpu" else t.device.type
            raise Mismatch(f"`{fn}` returned a tensor on {where} ({path}) while its inputs were on another device: "
                           f"{_FIX} {_HOW}.")
    _check_dtype(impl, fn, args, kwargs)


def _floating(x) -> set:
    """The floating dtypes among ``x``'s tensors and ``torch.dtype`` values."""
    if isinstance(x, torch.dtype):
        return {x} if x.is_floating_point else set()
    return {t.dtype for _, t in _tensors(x) if t.is_floating_point()}


def _in_bfloat16(x):
    return _each_tensor(x, lambda t: t.to(torch.bfloat16) if t.is_floating_point() else t)


def _check_dtype(impl, fn: str, args, kwargs) -> None:
    """The dtype half of the pass: the same call with the floating inputs in bfloat16 (values on the
    CPU). Every floating tensor returned must have a dtype it was given: a buffer made without
    ``dtype=`` (float32) turns a bfloat16 result into float32, and the float32 and float64 tests cannot
    see it (float32 is their default; float64 absorbs it)."""
    half, half_kwargs = _in_bfloat16(args), _in_bfloat16(kwargs)
    given = _floating(list(half) + list(half_kwargs.values())) | {v for v in (*half, *half_kwargs.values())
                                                                   if isinstance(v, torch.dtype)}
    if torch.bfloat16 not in given:
        return  # no floating input: no dtype to follow
    try:
        result = impl.device_pass("cpu", fn, *half, **half_kwargs)
    except LearnerFunctionError as e:
        if "BFloat16" in str(e) and "not implemented" in str(e):
            pytest.skip(f"`{fn}` uses an operator PyTorch has no bfloat16 version of: the dtype pass is inconclusive")
        try:
            impl.device_pass("cpu", fn, *args, **kwargs)
        except LearnerFunctionError:
            return  # it raises in float32 too: the value tests report it
        raise Mismatch(f"`{fn}` raised on bfloat16 inputs only: {last_line(str(e))}. {_DTYPE_FIX}") from None
    for path, t in _tensors(result):
        if t.is_floating_point() and t.dtype not in given:
            raise Mismatch(f"`{fn}` returned {path} in {str(t.dtype).removeprefix('torch.')} for bfloat16 inputs: "
                           f"{_DTYPE_FIX}")


_DTYPE_FIX = ("create new tensors in the dtype of the inputs (`x.new_zeros(...)`, `torch.zeros_like(x)`, "
              "`torch.ones(..., dtype=x.dtype, device=x.device)`), so that a function works in any dtype it is "
              "given (checked with bfloat16 inputs)")
