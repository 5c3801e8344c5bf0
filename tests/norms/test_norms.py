"""Hidden suite for norms: the learner's LayerNorm / RMSNorm, their manual backward and the residual
blocks against ``F.layer_norm``, ``F.rms_norm`` and ``torch.autograd.grad``."""
import math

import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

from tests.compare import Mismatch, check, unpack
from tests.diagnosis import forward_or_backward
from tests.strategies import Case, cases, dims, randn, seeds

# lead: the batch dims (1 or 2 of them); norm: normalized_shape (1 or 2 dims); scale: tiny inputs
# make a misplaced eps show; offset: a large common shift (in units of scale) punishes a variance
# computed as E[x^2] - E[x]^2; affine: which of weight / bias are given; as_int: normalized_shape
# passed as an int when it has one dim.
shapes = cases(lead=st.lists(dims(1, 3), min_size=1, max_size=2),
               norm=st.lists(dims(2, 4), min_size=1, max_size=2).filter(lambda n: math.prod(n) > 2),
               scale=st.sampled_from([1.0, 1e-4]),
               offset=st.sampled_from([0.0, 1.0]),
               affine=st.sampled_from(["weight and bias", "weight", "neither"]),
               as_int=st.booleans(),
               seed=seeds())

# Explicit cases, run first: two normalized dims behind two batch dims; tiny inputs.
WIDE = Case(lead=[2, 3], norm=[3, 4], scale=1.0, offset=0.0, affine="weight and bias", as_int=False, seed=1)
TINY = Case(lead=[2, 2], norm=[5], scale=1e-4, offset=0.0, affine="weight", as_int=True, seed=2)
SHIFTED = Case(lead=[3], norm=[2, 3], scale=1.0, offset=1.0, affine="neither", as_int=False, seed=3)


def _offset(dtype):
    """A shift, in units of the spread, large enough that E[x^2] - E[x]^2 loses the variance."""
    return 1e5 if dtype == torch.float64 else 10.0


def _inputs(case, dtype, device, gradient=False):
    """``x``, ``weight``, ``bias`` (None where the case says so), ``d_out`` and ``normalized_shape``.

    ``gradient=True``: no offset, and no tiny inputs in float32. The gradient of a norm grows like
    1 / sqrt(var + eps) and cancels between its terms, so there float32 rounding alone would exceed
    the default tolerances; float64 keeps the tiny inputs."""
    shape = (*case.lead, *case.norm)
    x = randn(*shape, seed=case.seed, dtype=dtype, device=device)
    if gradient:
        x = x * (case.scale if dtype == torch.float64 else 1.0)
    else:
        x = (x + case.offset * _offset(dtype)) * case.scale
    weight = randn(*case.norm, seed=case.seed + 1, dtype=dtype, device=device) if case.affine != "neither" else None
    bias = randn(*case.norm, seed=case.seed + 2, dtype=dtype, device=device) if case.affine == "weight and bias" else None
    d_out = randn(*shape, seed=case.seed + 3, dtype=dtype, device=device)
    ns = case.norm[0] if case.as_int and len(case.norm) == 1 else tuple(case.norm)
    return x, weight, bias, d_out, ns


def _ns(ns):
    return [ns] if isinstance(ns, int) else list(ns)


def _reference_grads(fn, x, weight, bias, d_out):
    """``torch.autograd.grad`` of ``fn(x, weight, bias)`` against ``d_out``: (dx, dweight, dbias)."""
    leaves = [t.detach().requires_grad_(True) if t is not None else None for t in (x, weight, bias)]
    out = fn(*leaves)
    given_leaves = [t for t in leaves if t is not None]
    grads = iter(torch.autograd.grad(out, given_leaves, grad_outputs=d_out))
    return [next(grads) if t is not None else None for t in leaves]


def _check_optional(name, actual, expected, why):
    if expected is None:
        if actual is not None:
            raise Mismatch(f"{name} should be None when {why} is None, got a {type(actual).__name__}")
        return
    if actual is None:
        raise Mismatch(f"{name} is None, but {why} was given: its gradient is expected")
    check(name, actual, expected)


@given(case=shapes, eps=st.sampled_from([1e-5, 1e-3, 0.1]))
@example(case=WIDE, eps=1e-5)
@example(case=TINY, eps=1e-5)
@example(case=SHIFTED, eps=1e-5)
def test_layer_norm(impl, device, dtype, case, eps):
    x, weight, bias, _, ns = _inputs(case, dtype, device)
    expected = F.layer_norm(x, _ns(ns), weight, bias, eps)
    check(f"layer_norm(normalized_shape={ns!r}, eps={eps:g}, {case.affine})",
          impl.layer_norm(x, ns, weight, bias, eps), expected)


@given(case=shapes, eps=st.sampled_from([None, 1e-6, 1e-3]))
@example(case=WIDE, eps=None)
@example(case=TINY, eps=None)
@example(case=SHIFTED, eps=1e-6)
def test_rms_norm(impl, device, dtype, case, eps):
    x, weight, _, _, ns = _inputs(case, dtype, device)
    expected = F.rms_norm(x, _ns(ns), weight, eps)
    check(f"rms_norm(normalized_shape={ns!r}, eps={eps!r}, {'with' if weight is not None else 'no'} weight)",
          impl.rms_norm(x, ns, weight, eps), expected)


@given(case=shapes, eps=st.sampled_from([1e-5, 1e-3, 0.1]))
@example(case=WIDE, eps=1e-5)
@example(case=TINY, eps=1e-5)
def test_layer_norm_backward(impl, device, dtype, case, eps):
    x, weight, bias, d_out, ns = _inputs(case, dtype, device, gradient=True)
    dx, dw, db = _reference_grads(lambda a, w, b: F.layer_norm(a, _ns(ns), w, b, eps), x, weight, bias, d_out)
    got = unpack(impl.layer_norm_backward(x, ns, weight, bias, eps, d_out), 3, "layer_norm_backward")
    where = f" (normalized_shape={ns!r}, eps={eps:g}, {case.affine})"
    inputs = dict(x=x, normalized_shape=ns, weight=weight, bias=bias, eps=eps)
    grads = {n: g for n, g in zip(("x", "weight", "bias"), got) if inputs[n] is not None}
    with forward_or_backward(impl, "layer_norm", _layer_norm_reference, inputs, grads, d_out):
        check("dx of layer_norm" + where, got[0], dx)
        _check_optional("dweight of layer_norm" + where, got[1], dw, "weight")
        _check_optional("dbias of layer_norm" + where, got[2], db, "bias")


@given(case=shapes, eps=st.sampled_from([None, 1e-6, 1e-3]))
@example(case=WIDE, eps=None)
@example(case=TINY, eps=1e-6)
def test_rms_norm_backward(impl, device, dtype, case, eps):
    x, weight, _, d_out, ns = _inputs(case, dtype, device, gradient=True)
    dx, dw, _ = _reference_grads(lambda a, w, b: F.rms_norm(a, _ns(ns), w, eps), x, weight, None, d_out)
    got = unpack(impl.rms_norm_backward(x, ns, weight, eps, d_out), 2, "rms_norm_backward")
    where = f" (normalized_shape={ns!r}, eps={eps!r}, {'with' if weight is not None else 'no'} weight)"
    inputs = dict(x=x, normalized_shape=ns, weight=weight, eps=eps)
    grads = {n: g for n, g in zip(("x", "weight"), got) if inputs[n] is not None}
    with forward_or_backward(impl, "rms_norm", _rms_norm_reference, inputs, grads, d_out):
        check("dx of rms_norm" + where, got[0], dx)
        _check_optional("dweight of rms_norm" + where, got[1], dw, "weight")


def _layer_norm_reference(x, normalized_shape, weight, bias, eps):
    return F.layer_norm(x, _ns(normalized_shape), weight, bias, eps)


def _rms_norm_reference(x, normalized_shape, weight, eps):
    return F.rms_norm(x, _ns(normalized_shape), weight, eps)


blocks = cases(lead=st.lists(dims(1, 3), min_size=1, max_size=2), d_model=dims(3, 5), seed=seeds())


def _pre_norm(x, w, b_norm, W, b, eps):
    return x + torch.relu(F.linear(F.layer_norm(x, x.shape[-1:], w, b_norm, eps), W, b))


def _post_norm(x, w, b_norm, W, b, eps):
    return F.layer_norm(x + torch.relu(F.linear(x, W, b)), x.shape[-1:], w, b_norm, eps)


def _check_block(impl, which, reference, case, dtype, device, eps):
    d = case.d_model
    x = randn(*case.lead, d, seed=case.seed, dtype=dtype, device=device, scale=2.0)
    params = [randn(d, seed=case.seed + 1, dtype=dtype, device=device),
              randn(d, seed=case.seed + 2, dtype=dtype, device=device),
              randn(d, d, seed=case.seed + 3, dtype=dtype, device=device, scale=d ** -0.5),
              randn(d, seed=case.seed + 4, dtype=dtype, device=device, scale=0.5)]
    d_out = randn(*case.lead, d, seed=case.seed + 5, dtype=dtype, device=device)
    leaves = [t.detach().requires_grad_(True) for t in (x, *params)]
    expected = reference(*leaves, eps)
    expected_grads = torch.autograd.grad(expected, leaves, grad_outputs=d_out)

    out, grads = unpack(impl.drive("block_and_grads", which, x, *params, eps, d_out), 2, which)
    check(which, out, expected.detach())
    if grads is None:
        raise Mismatch(f"{which} is not differentiable with respect to its inputs "
                       "(a detach, an .item(), or a tensor rebuilt from Python numbers?)")
    for name, g, e in zip(["x", "norm_weight", "norm_bias", "W", "b"], grads, expected_grads):
        if g is None:
            raise Mismatch(f"{which}: the output does not depend on {name}, but it should")
        check(f"gradient of {which} with respect to {name}", g, e)


@given(case=blocks, eps=st.sampled_from([1e-5, 0.1]))
def test_pre_norm_block(impl, device, dtype, case, eps):
    _check_block(impl, "pre_norm_block", _pre_norm, case, dtype, device, eps)


@given(case=blocks, eps=st.sampled_from([1e-5, 0.1]))
def test_post_norm_block(impl, device, dtype, case, eps):
    _check_block(impl, "post_norm_block", _post_norm, case, dtype, device, eps)
