"""Runs beside the learner's code in the sandbox: hands the learner's norms a non-contiguous ``x``.

Functions here take the learner's module first.
"""


def on_transposed(m, fn, x, swap, *args, **kwargs):
    """The learner's ``fn(x.transpose(*swap), *args, **kwargs)``: ``x`` comes with the dims ``swap``
    exchanged and goes on as a transposed, non-contiguous view of the tensor that arrived."""
    return getattr(m, fn)(x.transpose(*swap), *args, **kwargs)
