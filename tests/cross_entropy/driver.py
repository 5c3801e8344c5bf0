"""Runs beside the learner's code in the sandbox: the finite differences of the learner's forward,
for the forward-or-backward diagnosis of cross-entropy's gradient.

Functions here take the learner's module first.
"""


def own_finite_differences(m, source, forward, inputs, wrt, d_out):
    """Finite differences of the learner's ``forward``: ``dlkata.gradcheck.finite_differences``, whose
    source the grader sends along (see ``tests/diagnosis.py``)."""
    namespace = {}
    exec(compile(source, "gradcheck.py", "exec"), namespace)
    return namespace["finite_differences"](getattr(m, forward), inputs, wrt, d_out)
