"""Forward or backward, in the graded suite: when a gradient the learner wrote by hand differs, say
whether the backward or the forward is wrong (the diagnosis of ``dlkata.gradcheck``, which the
public tests show too).

The finite differences of the learner's forward run beside the learner's code, in the sandbox: the
driver (``tests/driver.py``) has ``own_finite_differences``, which runs ``dlkata.gradcheck``'s source (sent
with the call) on the learner's module. Only the example that hypothesis reports pays for it (its
final run, or an explicit example), not every failing example of the search.

    got = impl.lstm_cell_backward(...)
    with forward_or_backward(impl, "lstm_cell", reference, inputs, {"x": got[0], ...}, d_out):
        check(...)
"""
from __future__ import annotations

import contextlib
import inspect

import torch

import dlkata.gradcheck as gradcheck
from tests.compare import Mismatch, check

SOURCE = inspect.getsource(gradcheck)


def _reported() -> bool:
    """Whether this run of the test is the one hypothesis reports (or not a hypothesis test at all)."""
    try:
        from hypothesis.control import current_build_context
        return current_build_context().is_final
    except Exception:  # noqa: BLE001 -- outside a hypothesis test
        return True


def _float64(x):
    if isinstance(x, torch.Tensor) and x.is_floating_point():
        return x.detach().to(torch.float64)
    if isinstance(x, (tuple, list)):
        return type(x)(_float64(v) for v in x)
    return x


def diagnose(impl, forward: str, reference, inputs: dict, grads: dict, d_out=None) -> str:
    """``dlkata.gradcheck.verdict`` for the learner's ``forward`` (a function name) and its backward's
    ``grads`` (by input name), against ``reference(**inputs)``."""
    inputs, d_out = _float64(inputs), _float64(d_out)
    try:
        output, fd = impl.drive("own_finite_differences", SOURCE, forward, inputs, list(grads), d_out)
    except Exception as e:  # noqa: BLE001 -- the learner's forward raised
        return f"Forward or backward? Cannot tell: {e}"
    except BaseException as e:  # a submission-level stop (not implemented, timeout, forbidden API)
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        return f"Forward or backward? Cannot tell: {e}"
    if not isinstance(fd, dict) or not all(isinstance(v, (tuple, list)) and len(v) == 2 for v in fd.values()):
        return ""
    fd = {k: (idx.cpu(), values.cpu()) for k, (idx, values) in fd.items()}
    expected = reference(**inputs)
    differs = None
    try:
        outs, refs = gradcheck._outputs(output), gradcheck._outputs(expected)
        for k, (o, e) in enumerate(zip(outs, refs)):
            check(f"output {k}" if len(refs) > 1 else "output", o, e)
    except Mismatch as e:
        differs = str(e)
    return gradcheck.verdict(grads, fd, differs, f"your {forward}")


@contextlib.contextmanager
def forward_or_backward(impl, forward: str, reference, inputs: dict, grads: dict, d_out=None):
    """Checks inside the block that fail with a ``Mismatch`` get the diagnosis appended (see above)."""
    try:
        yield
    except Mismatch as e:
        if not _reported() or not all(isinstance(g, torch.Tensor) and isinstance(inputs.get(n), torch.Tensor)
                                      and g.shape == inputs[n].shape for n, g in grads.items()):
            raise  # a wrong shape or type: the message says it all
        hint = diagnose(impl, forward, reference, inputs, grads, d_out)
        if not hint:
            raise
        raise Mismatch(f"{e}\n{hint}") from None
