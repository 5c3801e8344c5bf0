"""The stubs' options: a function called without its optional arguments must do exactly what it
does with the stub's defaults written out, and a value no option has must raise ValueError.

The value tests pass every argument, so a default changed in the learner's signature
(``batch_first=True``, ``reduction="sum"``, ``ignore_index=None``) would go unseen there, while a
student's own code, and PyTorch's conventions they learn, call these functions with the defaults. The
stub's defaults are read from ``exercises/<topic>/<topic>.py`` (the literal ones: numbers, strings,
``None``); the learner's function is called twice, on the same inputs, without and with them, and the
two results must be identical. The inputs are chosen so that each default matters (batch and time of
different lengths, a target equal to ``-100``, bags of more than one id ...).
"""
from __future__ import annotations

import ast
import functools
import os

import torch

from tests.compare import Mismatch

EXERCISES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "exercises")


@functools.lru_cache(maxsize=None)
def stub_defaults(topic: str, fn: str) -> dict:
    """The literal defaults of ``fn`` in the stub of ``topic``, by parameter name."""
    with open(os.path.join(EXERCISES, topic, f"{topic}.py")) as f:
        tree = ast.parse(f.read())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == fn)
    a = node.args
    pairs = list(zip(a.args[len(a.args) - len(a.defaults):], a.defaults))
    pairs += [(p, d) for p, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
    found = {}
    for param, default in pairs:
        try:
            found[param.arg] = ast.literal_eval(default)
        except ValueError:  # torch.float32 and the like: not sent over the wire, not checked here
            pass
    return found


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and bool(((a == b) | (a.isnan() & b.isnan())).all())
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and (a == b or a != a and b != b)


def check_defaults(impl, topic: str, fn: str, *args, **kwargs) -> None:
    """``fn(*args, **kwargs)`` must give what ``fn(*args, **kwargs, **the stub's other defaults)`` gives."""
    defaults = {k: v for k, v in stub_defaults(topic, fn).items() if k not in kwargs}
    implicit = getattr(impl, fn)(*args, **kwargs)
    explicit = getattr(impl, fn)(*args, **kwargs, **defaults)
    if not _same(implicit, explicit):
        written = ", ".join(f"{k}={v!r}" for k, v in defaults.items())
        raise Mismatch(f"`{fn}` called without its optional arguments does not give what it gives with the stub's "
                       f"defaults written out ({written}): keep the defaults of the stub's signature")


def check_refuses(impl, fn: str, what: str, other: str, *args, **kwargs) -> None:
    """``fn(*args, **kwargs)`` must raise ValueError, as PyTorch does for an option it has not got
    (``what``: the call as the message shows it; ``other``: what should be refused, in words)."""
    from grader.plugin import LearnerFunctionError
    from tests.devices import last_line
    try:
        result = getattr(impl, fn)(*args, **kwargs)
    except LearnerFunctionError as e:
        if "ValueError" in str(e):
            return
        raise Mismatch(f"{what} should raise ValueError; it raised {last_line(str(e))}") from None
    raise Mismatch(f"{what} returned {type(result).__name__}: {other} should raise ValueError")
