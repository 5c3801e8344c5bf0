"""Runs beside the learner's code in the sandbox: passes a ``torch.dtype`` that cannot travel as data.

Functions here take the learner's module first; the hidden suite names the dtype as a string.
"""
import torch

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def probabilities(m, N, k, dtype):
    return m.probabilities(N, k, dtype=_DTYPES[dtype])


def one_hot(m, xs, V, dtype):
    return m.one_hot(xs, V, dtype=_DTYPES[dtype])
