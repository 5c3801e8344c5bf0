"""Driver functions every topic has: they run beside the learner's code in the sandbox (the grading
plugin sends this file ahead of ``tests/<topic>/driver.py``, which adds a topic's own).

Functions here take the learner's module first.
"""
import torch

_grad = torch.autograd.grad  # taken before the forbidden-API guards are installed
DIFFERENTIATE = {'grads_through'}  # drivers that differentiate the learner's forwards: they run
# where autograd is on, in a child of their own (the functions written by hand are not there)


def _leaves(x, leaves: list):
    """``x`` with every tensor replaced by a fresh leaf that requires grad (collected in ``leaves``)."""
    if isinstance(x, torch.Tensor):
        leaf = x.detach().requires_grad_(x.is_floating_point())
        leaves.append(leaf)
        return leaf
    if isinstance(x, (list, tuple)):
        return type(x)(_leaves(v, leaves) for v in x)
    return x


def _flat(x) -> list:
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in _flat(v)]
    return []


def _detached(x):
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, (list, tuple)):
        return type(x)(_detached(v) for v in x)
    return x


def grads_through(m, fn, args, kwargs, d_outs):
    """The learner's ``fn(*args, **kwargs)`` with every tensor argument a leaf that requires grad, and
    the gradients of ``sum(out_k * d_outs[k])`` (``out_k`` the tensors of the result, in order) with
    respect to every argument tensor, in the order of the arguments (positional, then keyword): None
    for an argument the result does not depend on. The gradients are None as a whole when the result
    does not hold tensors shaped like ``d_outs`` or none of them depends on the arguments."""
    leaves: list = []
    args = _leaves(list(args), leaves)
    kwargs = {k: _leaves(v, leaves) for k, v in kwargs.items()}
    result = getattr(m, fn)(*args, **kwargs)
    outs = _flat(result)
    if len(outs) != len(d_outs) or any(o.shape != d.shape for o, d in zip(outs, d_outs)):
        return _detached(result), None
    terms = [(o * d).sum() for o, d in zip(outs, d_outs) if o.requires_grad]
    wanted = [t for t in leaves if t.requires_grad]
    if not terms:
        return _detached(result), None
    try:
        grads = iter(_grad(sum(terms), wanted, allow_unused=True))
    except RuntimeError as e:
        if "modified by an inplace operation" not in str(e):
            raise
        # The forward ran; autograd's own message names none of the learner's lines.
        raise RuntimeError(f"the backward pass through your {fn} failed: a tensor its gradient needs was "
                           "changed in place after it was used (a write into a tensor made in advance, "
                           "`out[t] = h`, then `h = out[t]`; or `+=`, `.add_()`, `[...] =` on a result "
                           "that later steps use): collect the steps in a list and `torch.stack` them, "
                           "and use out-of-place operations") from None
    return _detached(result), [next(grads) if t.requires_grad else None for t in leaves]


def own_finite_differences(m, source, forward, inputs, wrt, d_out):
    """Finite differences of the learner's ``forward``: ``dlkata.gradcheck.finite_differences``, whose
    source the grader sends along (see ``tests/diagnosis.py``)."""
    namespace = {}
    exec(compile(source, "gradcheck.py", "exec"), namespace)
    return namespace["finite_differences"](getattr(m, forward), inputs, wrt, d_out)
