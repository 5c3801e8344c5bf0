"""Hypothesis strategies shared by the hidden suites.

Shapes and seeds are drawn by hypothesis; tensors are made from the seed with a ``torch.Generator``,
so that a failing case prints small (``Case(batch=1, seq_len=2, seed=0)``) and shrinks well.
"""
from __future__ import annotations

import functools
import types

import torch
from hypothesis import strategies as st


class Case(types.SimpleNamespace):
    """The drawn sizes and seed of one example; prints as ``Case(batch=1, seq_len=2, seed=0)``."""

    def __repr__(self):
        return "Case(" + ", ".join(f"{k}={v!r}" for k, v in vars(self).items()) + ")"


def cases(**fields) -> st.SearchStrategy[Case]:
    """``cases(batch=dims(1, 3), seed=seeds())`` draws a ``Case``."""
    return st.fixed_dictionaries(fields).map(lambda d: Case(**d))


def dims(lo: int = 1, hi: int = 4) -> st.SearchStrategy[int]:
    return st.integers(lo, hi)


def seeds() -> st.SearchStrategy[int]:
    return st.integers(0, 2**16)


def randn(*shape, seed: int, dtype=torch.float64, device="cpu", scale: float = 1.0) -> torch.Tensor:
    """Standard normal values (times ``scale``) made from ``seed``: the same on every machine. A fresh
    tensor each time, copied from the one made for these arguments (a grading process makes the same
    inputs for every submission: a copy costs a fifth of making them)."""
    return _made(torch.randn, shape, seed, dtype, str(device), scale).clone()


def randint(high: int, *shape, seed: int, device="cpu") -> torch.Tensor:
    return _made(torch.randint, (high, shape), seed, torch.int64, str(device), None).clone()


@functools.lru_cache(maxsize=8192)
def _made(make, args: tuple, seed: int, dtype: torch.dtype, device: str, scale: float | None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if scale is None:  # randint
        return make(*args, generator=g).to(device)
    return (make(*args, generator=g, dtype=torch.float64) * scale).to(device=device, dtype=dtype)


def seeded(seed: int) -> torch.Generator:
    """A CPU generator for helpers that draw several tensors in a row."""
    return torch.Generator().manual_seed(seed)
