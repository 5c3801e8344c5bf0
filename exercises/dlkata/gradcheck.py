"""Forward or backward? When a gradient written by hand differs from PyTorch's, find out which side
is wrong: the backward, or the forward it is the backward of.

Central finite differences (float64) of the learner's OWN forward tell them apart:

* the backward differs from its forward's finite differences: the backward is wrong
  ("your backward does not match your own forward's finite differences (max error 0.31 in dW_hh)");
* the backward matches them: the backward is right for the forward it was written for, and that
  forward differs from PyTorch's.

``finite_differences`` runs where the learner's forward runs (in the public tests: here; in the
graded suite: beside the learner's code, in the sandbox) and returns plain tensors; ``verdict``
turns its result into a sentence. ``diagnose`` does both, for the public tests.
"""
from __future__ import annotations

import torch

EPS = 1e-6          # step of the central differences (float64)
MAX_ENTRIES = 40    # entries checked per tensor (spread evenly over it): enough to see a wrong formula


def _outputs(out) -> list[torch.Tensor]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _loss(out, d_out) -> float:
    outs = _outputs(out)
    if d_out is None:
        return float(sum(o.sum().item() for o in outs))
    return float(sum((o * d).sum().item() for o, d in zip(outs, _outputs(d_out))))


def entries(t: torch.Tensor, most: int = MAX_ENTRIES) -> torch.Tensor:
    """The flat indices of ``t`` that are checked: all of them, or ``most`` spread evenly."""
    n = t.numel()
    if n <= most:
        return torch.arange(n)
    return torch.linspace(0, n - 1, most).round().long().unique()


def finite_differences(forward, inputs: dict, wrt, d_out=None, eps: float = EPS):
    """Central differences of ``L = sum(forward(**inputs) * d_out)`` (``sum(forward(**inputs))`` when
    ``d_out`` is None) with respect to each input named in ``wrt``, in float64.

    Returns ``(output, {name: (flat_indices, values)})``: the forward's output at ``inputs`` and, for
    each input, the derivative at the checked entries (see ``entries``). Raises whatever the forward
    raises; a forward that does not return float64 for float64 inputs raises a TypeError that says so.
    """
    inputs = {k: (v.detach().to(torch.float64).clone() if isinstance(v, torch.Tensor) and v.is_floating_point()
                  else v) for k, v in inputs.items()}
    d_out = None if d_out is None else [d.detach().to(torch.float64) for d in _outputs(d_out)]
    output = forward(**inputs)
    for o in _outputs(output):
        if not isinstance(o, torch.Tensor) or o.dtype != torch.float64:
            what = o.dtype if isinstance(o, torch.Tensor) else type(o).__name__
            raise TypeError(f"returns {str(what).removeprefix('torch.')} for float64 inputs")
    result = {}
    for name in wrt:
        base = inputs[name]
        idx = entries(base)
        values = torch.empty(len(idx), dtype=torch.float64)
        for j, i in enumerate(idx.tolist()):
            plus, minus = base.clone(), base.clone()
            plus.view(-1)[i] += eps
            minus.view(-1)[i] -= eps
            values[j] = (_loss(forward(**{**inputs, name: plus}), d_out)
                         - _loss(forward(**{**inputs, name: minus}), d_out)) / (2 * eps)
        result[name] = (idx, values)
    return output, result


def backward_error(grads: dict, fd: dict) -> tuple[float, str, float]:
    """``(max error, name of the worst gradient, size of the derivatives)`` between the backward's
    gradients and the finite differences, over the checked entries."""
    worst, where, scale = 0.0, "", 1.0
    for name, (idx, values) in fd.items():
        got = grads.get(name)
        if not isinstance(got, torch.Tensor) or (len(idx) and got.numel() <= int(idx.max())):
            return float("inf"), name, scale
        got = got.detach().to("cpu", torch.float64).reshape(-1)
        err = (got[idx] - values).abs()
        err[torch.isnan(err)] = float("inf")
        scale = max(scale, values.abs().max().item() if len(values) else 0.0)
        if len(err) and err.max().item() > worst:
            worst, where = err.max().item(), name
    return worst, where, scale


def verdict(grads: dict, fd: dict, forward_differs: str | None, own_forward: str = "your forward") -> str:
    """One sentence: is the backward or the forward at fault?

    ``grads``: the backward's gradients by input name; ``fd``: ``finite_differences``' second result;
    ``forward_differs``: None when the learner's forward output matches PyTorch's at this input, else
    the comparison's message.
    """
    if not all(torch.isfinite(values).all() for _, values in fd.values()):
        return (f"Forward or backward? Your forward is not finite around this input (an overflow, or a log "
                f"of 0?): fix {own_forward} first.")
    worst, where, scale = backward_error(grads, fd)
    if worst > 1e-5 * scale:
        text = (f"Forward or backward? Your backward does not match your own forward's finite differences "
                f"(max error {worst:.3g} in d{where}): the backward is wrong")
        if forward_differs:
            return f"{text}; and your forward differs from PyTorch's too: fix {own_forward} first ({forward_differs})."
        return text + "."
    if forward_differs:
        return ("Forward or backward? Your backward matches your own forward's finite differences, but your "
                f"forward differs from PyTorch's: fix {own_forward} first ({forward_differs}).")
    return ("Forward or backward? Your backward matches your own forward's finite differences, and your "
            "forward matches PyTorch's here (in float64): look for a loss of precision (float32?), or a "
            "difference the finite differences cannot see (a kink, a detached term).")


def diagnose(forward, reference, inputs: dict, grads: dict, d_out=None, *, own_forward: str = "your forward") -> str:
    """``verdict`` for a learner's ``forward`` (a callable taking ``**inputs``) and its backward's
    ``grads`` (by input name), against PyTorch's ``reference`` forward."""
    from dlkata.compare import Mismatch, check
    try:
        output, fd = finite_differences(forward, inputs, list(grads), d_out)
    except NotImplementedError:
        return (f"Forward or backward? Cannot tell yet: {own_forward} is not implemented. Write it, and this "
                "test will say whether your backward matches it.")
    except Exception as e:  # the learner's forward failed on this input: say so, the test goes on failing
        return f"Forward or backward? Cannot tell: {own_forward} {type(e).__name__}: {e}"
    expected = reference(**inputs)
    differs = None
    try:
        for k, (o, e) in enumerate(zip(_outputs(output), _outputs(expected))):
            check(f"output {k}" if isinstance(expected, (tuple, list)) else "output", o, e)
    except Mismatch as e:
        differs = str(e)
    return verdict(grads, fd, differs, own_forward)


def check_backward(what: str, grads: dict, expected: dict, *, forward=None, reference=None, inputs=None,
                   d_out=None, own_forward: str = "your forward", steps: str | None = None) -> None:
    """``check`` every gradient of ``expected`` (by input name) against the backward's ``grads``; on the
    first that differs, fail with the comparison's message followed by the diagnosis: ``diagnose``
    when the learner wrote the ``forward`` too, else which gradients differ and which match."""
    from dlkata.compare import Mismatch, check
    for name, want in expected.items():
        try:
            check(f"{what}: gradient of {name}", grads.get(name), want)
        except Mismatch as e:
            if not all(isinstance(grads.get(n), torch.Tensor) and grads[n].shape == expected[n].shape
                       for n in expected):
                raise
            if forward is not None:
                hint = diagnose(forward, reference, inputs, {n: grads[n] for n in expected}, d_out,
                                own_forward=own_forward)
            else:
                hint = which_differ(grads, expected, steps)
            raise Mismatch(f"{e}\n{hint}") from None


def which_differ(grads: dict, expected: dict, steps: str | None = None) -> str:
    """"Gradients that differ: W_hh, h0; that match: x, W_ih." (one comparison per gradient); with
    ``steps`` (the name of a time-major gradient), also the time steps at which that one differs."""
    from dlkata.compare import Mismatch, check
    wrong, right = [], []
    for name, want in expected.items():
        try:
            check(name, grads.get(name), want)
            right.append(name)
        except Mismatch:
            wrong.append(name)
    text = f"Gradients that differ: {', '.join(wrong)}; that match: {', '.join(right) or 'none'}."
    got = grads.get(steps)
    if steps in wrong and isinstance(got, torch.Tensor) and got.shape == expected[steps].shape:
        bad = []
        for t in range(expected[steps].shape[0]):
            try:
                check(steps, got[t], expected[steps][t])
            except Mismatch:
                bad.append(t)
        last = len(expected[steps]) - 1
        text += f" The gradient of {steps} differs at time step(s) {', '.join(map(str, bad))} of 0..{last}."
    return text + " The forward is the docstring's, so the backward is at fault."
