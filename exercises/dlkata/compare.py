"""Comparing a learner's result with the PyTorch reference, with messages that help a student.

``check(name, actual, expected)`` fails with e.g.::

    gradient of W_hh differs: max abs error 0.31 at [2, 5] (got 0.43, expected 0.12), max rel error 2.6

The public tests and the graded suite share this module: a student reads the same messages in both.

Tolerances: float64 tight (rtol 1e-7, atol 1e-9), float32 and lower the defaults of
``torch.testing.assert_close``; integer and bool tensors must match exactly. In the graded suite the
learner's values arrive as plain tensors, so nothing here can be fooled by a tensor subclass.
"""
from __future__ import annotations

import math

import torch

TIGHT = {torch.float64: (1e-7, 1e-9)}


class Mismatch(AssertionError):
    """The learner's value differs from the reference; the message says where and by how much."""


def _fmt_index(flat: int, shape) -> str:
    idx = []
    for s in reversed(shape):
        idx.append(flat % s)
        flat //= s
    return "[" + ", ".join(map(str, reversed(idx))) + "]"


def _shape(t) -> str:
    return "(" + ", ".join(map(str, t.shape)) + ")"


def _pair(got: float, expected: float) -> tuple[str, str]:
    """``got`` and ``expected`` printed with 6 significant digits, or with every digit (17) when
    those print alike: a value just outside the tolerance must not read as equal to the reference."""
    a, e = f"{got:.6g}", f"{expected:.6g}"
    return (a, e) if a != e else (f"{got:.17g}", f"{expected:.17g}")


def tolerances(dtype: torch.dtype) -> tuple[float, float]:
    """(rtol, atol) used for ``dtype``: tight for float64, ``assert_close``'s defaults otherwise."""
    if dtype in TIGHT:
        return TIGHT[dtype]
    from torch.testing._comparison import default_tolerances
    return default_tolerances(dtype)


def check(name: str, actual, expected, *, rtol: float | None = None, atol: float | None = None,
          dtype: bool = True, device: bool = True) -> None:
    """Fail with a helpful message unless ``actual`` matches the reference ``expected``."""
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        if isinstance(actual, torch.Tensor) and actual.numel() == 1 and actual.dtype.is_floating_point:
            actual = actual.item()
        if not isinstance(actual, (int, float)) or isinstance(actual, bool):
            raise Mismatch(f"{name}: expected a number, got {_what(actual)}")
        r, a = (rtol, atol) if rtol is not None else TIGHT[torch.float64]
        if not (math.isclose(actual, expected, rel_tol=r, abs_tol=a)
                or (math.isnan(actual) and math.isnan(expected))):
            got, want = _pair(float(actual), float(expected))
            raise Mismatch(f"{name} differs: got {got}, expected {want} (rel_tol={r:g}, abs_tol={a:g})")
        return
    if not isinstance(actual, torch.Tensor):
        raise Mismatch(f"{name}: expected a tensor of shape {_shape(expected)}, got {_what(actual)}")
    if device and actual.device.type != expected.device.type:
        raise Mismatch(f"{name} is on {actual.device.type}, expected {expected.device.type} "
                       "(keep results on the device of the inputs)")
    if dtype and actual.dtype != expected.dtype:
        raise Mismatch(f"{name} has dtype {str(actual.dtype).removeprefix('torch.')}, expected "
                       f"{str(expected.dtype).removeprefix('torch.')} (keep the dtype of the inputs)")
    if actual.shape != expected.shape:
        raise Mismatch(f"{name} has shape {_shape(actual)}, expected {_shape(expected)}")
    a, e = actual.detach().cpu(), expected.detach().cpu()
    if not e.dtype.is_floating_point:
        bad = (a != e).reshape(-1)
        if bad.any():
            i = int(bad.nonzero()[0])
            raise Mismatch(f"{name} differs at {bad.sum().item()} of {bad.numel()} places, first at "
                           f"{_fmt_index(i, e.shape)} (got {a.reshape(-1)[i].item()}, expected {e.reshape(-1)[i].item()})")
        return
    if rtol is None or atol is None:
        r0, a0 = tolerances(expected.dtype)
        rtol, atol = (r0 if rtol is None else rtol), (a0 if atol is None else atol)
    a, e = a.to(torch.float64), e.to(torch.float64)
    ok = torch.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
    if ok.all():
        return
    af, ef = a.reshape(-1), e.reshape(-1)
    nonfinite = (~torch.isfinite(af)) & torch.isfinite(ef)
    if nonfinite.any():
        i = int(nonfinite.nonzero()[0])
        raise Mismatch(f"{name} has {af[i].item()} at {_fmt_index(i, e.shape)} where the reference is "
                       f"{ef[i].item():.6g} (an overflow, a log of 0, or a division by 0?)")
    err = (af - ef).abs()
    err[torch.isnan(err)] = math.inf
    err[ok.reshape(-1)] = -1.0  # the worst element among those that fail (nan where nan is expected passes)
    i = int(err.argmax())
    nonzero = (ef != 0) & ~ok.reshape(-1)
    rel = (err[nonzero] / ef[nonzero].abs()).max().item() if nonzero.any() else None
    rel_text = f", max rel error {rel:.3g}" if rel is not None else ""
    where = f" at {_fmt_index(i, e.shape)}" if e.dim() else ""
    got, want = _pair(af[i].item(), ef[i].item())
    raise Mismatch(f"{name} differs: max abs error {err[i].item():.3g}{where} "
                   f"(got {got}, expected {want}){rel_text}; "
                   f"{int((~ok).sum())} of {ok.numel()} elements outside rtol={rtol:g}, atol={atol:g}")


def _what(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {_shape(x)}"
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of {len(x)} items"
    return type(x).__name__ if x is not None else "None"


def unpack(result, n: int, what: str):
    """``result`` as a tuple of ``n`` items, or a clear failure (e.g. a function that forgot to
    return the final hidden state)."""
    if not isinstance(result, (tuple, list)) or len(result) != n:
        raise Mismatch(f"{what} should return {n} values, got {_what(result)}")
    return tuple(result)
