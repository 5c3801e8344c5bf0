"""Runs beside the learner's code in the sandbox: passes a ``torch.dtype`` that cannot travel as data.

Functions here take the learner's module first; the hidden suite names the dtype as a string.
"""
import torch

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def probabilities(m, N, k, dtype):
    return m.probabilities(N, k, dtype=_DTYPES[dtype])


def one_hot(m, xs, V, dtype):
    return m.one_hot(xs, V, dtype=_DTYPES[dtype])


def own_finite_differences(m, source, forward, inputs, wrt, d_out):
    """Finite differences of the learner's ``forward``: ``dlkata.gradcheck.finite_differences``, whose
    source the grader sends along (see ``tests/diagnosis.py``)."""
    namespace = {}
    exec(compile(source, "gradcheck.py", "exec"), namespace)
    return namespace["finite_differences"](getattr(m, forward), inputs, wrt, d_out)
