"""Hidden suite for norms: the learner's LayerNorm / RMSNorm (values and gradients through them), their
manual backward and the residual blocks against ``F.layer_norm``, ``F.rms_norm`` and
``torch.autograd.grad``, and devices.

What the stub promises, and where it is tested:

| promise (exercises/norms/norms.py) | test |
|---|---|
| the last ``len(normalized_shape)`` dims, any number of leading dims (none too) | ``lead``, ``ALONE``, ``DEEP`` |
| ``normalized_shape`` an int, a tuple or a list | ``as_int``, test_normalized_shape_as_a_list |
| ``weight`` and ``bias`` each may be None (all four combinations) | ``affine`` |
| defaults: eps 1e-5 (LayerNorm), None = ``finfo(dtype).eps`` (RMSNorm), no weight / bias | ``eps="default"``, ``test_defaults_are_the_stubs`` |
| an explicit ``eps=0.0`` is no eps, not the default | ``TINY`` with ``eps=0.0`` |
| eps inside the square root; biased variance; no cancellation with a common offset | ``TINY``, ``SHIFTED`` |
| a constant vector (variance 0) gives ``bias`` | ``FLAT`` |
| every vector on its own, whatever the scale of the others | ``spread`` (``SPREAD``) |
| RMSNorm does not center | ``test_rms_norm`` |
| any ``x``, non-contiguous views too (``.view`` fails on them) | ``test_non_contiguous_x`` |
| the forwards stay differentiable (gradients of x, weight, bias) | ``test_*_norm_gradients``, blocks |
| backward: ``dweight`` / ``dbias`` summed over ALL batch dims, None without the parameter | ``test_*_backward`` |
| the backward's statistics without cancellation (inputs of spread 1 around 1e5) | ``test_layer_norm_backward_with_a_common_offset`` |
| ``dweight`` from ``d_out`` itself, so a weight entry of 0 is no division by 0 | ``test_backward_with_a_zero_in_the_weight`` |
| pre-norm ``x + f(LN(x))``, post-norm ``LN(x + f(x))`` | ``test_pre_norm_block``, ``test_post_norm_block`` |
| any ``x`` of the shape, views included (``reshape``, not ``view``) | ``test_non_contiguous_x``, ``test_*_of_non_contiguous_inputs`` |
| dtype of ``x`` | every test, float64 and float32; bfloat16 in ``test_device_propagation`` |
| device of ``x`` (no ``.cpu()``, numpy, ``.item()``) | ``test_device_propagation`` (meta device) |
| inputs not changed in place | every call (the sandbox compares inputs) and the gradient tests |
"""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

from tests.compare import Mismatch, check, unpack
from tests.devices import check_devices
from tests.diagnosis import forward_or_backward
from tests.gradients import check_gradients, reference_grads, upstream
from tests.strategies import Case, cases, dims, randn, seeds
from tests.references import reference

# lead: the batch dims (none, 1 or 2 of them); norm: normalized_shape (1 or 2 dims); scale: tiny
# inputs make a misplaced eps show; offset: a large common shift (in units of scale) punishes a
# variance computed as E[x^2] - E[x]^2; spread: every vector at its own scale (1e-3 .. 1e3); flat:
# one vector constant (variance 0); affine: which of weight / bias are given; as_int:
# normalized_shape passed as an int when it has one dim.
shapes = cases(lead=st.lists(dims(1, 3), min_size=0, max_size=2),
               norm=st.lists(dims(2, 4), min_size=1, max_size=2).filter(lambda n: math.prod(n) > 2),
               scale=st.sampled_from([1.0, 1e-4]),
               offset=st.sampled_from([0.0, 1.0]),
               spread=st.booleans(),
               flat=st.booleans(),
               affine=st.sampled_from(["weight and bias", "weight", "bias", "neither"]),
               as_int=st.booleans(),
               seed=seeds())

# Explicit cases, run first: two normalized dims behind two batch dims; tiny inputs; a common
# offset; no batch dim at all; vectors of very different scales; a constant vector.
_PLAIN = dict(scale=1.0, offset=0.0, spread=False, flat=False, as_int=False)
WIDE = Case(**{**_PLAIN, "lead": [2, 3], "norm": [3, 4], "affine": "weight and bias", "seed": 1})
TINY = Case(**{**_PLAIN, "lead": [2, 2], "norm": [5], "scale": 1e-4, "affine": "weight", "as_int": True, "seed": 2})
SHIFTED = Case(**{**_PLAIN, "lead": [3], "norm": [2, 3], "offset": 1.0, "affine": "neither", "seed": 3})
ALONE = Case(**{**_PLAIN, "lead": [], "norm": [2, 3], "affine": "weight and bias", "seed": 4})
SPREAD = Case(**{**_PLAIN, "lead": [2, 3], "norm": [4], "spread": True, "affine": "bias", "seed": 5})
FLAT = Case(**{**_PLAIN, "lead": [3], "norm": [4], "flat": True, "affine": "weight and bias", "seed": 6})
NONE = Case(**{**_PLAIN, "lead": [2], "norm": [3], "affine": "neither", "as_int": True, "seed": 7})
# Three batch dims and three normalized dims: code written for at most two of either shows.
DEEP = Case(**{**_PLAIN, "lead": [2, 1, 2], "norm": [2, 2, 3], "affine": "weight and bias", "seed": 8})

def _offset(dtype):
    """A shift, in units of the spread, large enough that E[x^2] - E[x]^2 loses the variance."""
    return 1e5 if dtype == torch.float64 else 10.0


def _inputs(case, dtype, device, gradient=False):
    """``x``, ``weight``, ``bias`` (None where the case says so), ``d_out`` and ``normalized_shape``.

    float32 leaves out what its rounding alone cannot pass within the default tolerances: with
    ``gradient=True`` (no offset anyway) tiny inputs, vectors of different scales and a constant
    vector, since the gradient of a norm grows like 1 / sqrt(var + eps) and cancels between its
    terms. No dtype has the digits for a large offset on vectors of different scales (a vector of
    spread 1e-3 at 1e5 keeps half of float64's digits): the offset goes with uniform scales only."""
    wide = dtype == torch.float64
    shape = (*case.lead, *case.norm)
    x = randn(*shape, seed=case.seed, dtype=dtype, device=device)
    spread = case.spread and (wide or not gradient)
    if spread:  # vector k scaled by 10^(-3 .. 3): each is normalized on its own
        rows = math.prod(case.lead)
        factors = torch.logspace(-3, 3, rows, dtype=torch.float64) if rows > 1 else torch.ones(1, dtype=torch.float64)
        x = x * factors.to(device=device, dtype=dtype).reshape(*case.lead, *(1 for _ in case.norm))
    if gradient:
        x = x * (case.scale if wide else 1.0)
    else:
        x = (x + (0.0 if spread else case.offset) * _offset(dtype)) * case.scale
    if case.flat and (wide or not gradient):  # the first vector constant (variance exactly 0): y = bias
        x[(0,) * len(case.lead)] = 0.75 * case.scale
    weight = randn(*case.norm, seed=case.seed + 1, dtype=dtype, device=device) if "weight" in case.affine else None
    bias = randn(*case.norm, seed=case.seed + 2, dtype=dtype, device=device) if "bias" in case.affine else None
    d_out = randn(*shape, seed=case.seed + 3, dtype=dtype, device=device)
    ns = case.norm[0] if case.as_int and len(case.norm) == 1 else tuple(case.norm)
    return x, weight, bias, d_out, ns


def _ns(ns):
    return [ns] if isinstance(ns, int) else list(ns)


@reference
def _reference_grads(fn, ns, eps, x, weight, bias, d_out):
    """``torch.autograd.grad`` of ``F.layer_norm`` or ``F.rms_norm`` (``fn``) against ``d_out``:
    (dx, dweight, dbias)."""
    leaves = [t.detach().requires_grad_(True) if t is not None else None for t in (x, weight, bias)]
    if fn == "layer_norm":
        out = F.layer_norm(leaves[0], _ns(ns), leaves[1], leaves[2], eps)
    else:
        out = F.rms_norm(leaves[0], _ns(ns), leaves[1], eps)
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


def _eps_kwargs(eps):
    """``eps="default"``: the argument left out, the function's default applies."""
    return {} if eps == "default" else {"eps": eps}


def _affine_kwargs(weight, bias=None):
    """Parameters that are None are left out: the defaults must be None."""
    return {k: v for k, v in (("weight", weight), ("bias", bias)) if v is not None}


@given(case=shapes, eps=st.sampled_from(["default", 1e-5, 1e-3, 0.1]))
@example(case=WIDE, eps=1e-5)
@example(case=TINY, eps="default")
@example(case=SHIFTED, eps=1e-5)
@example(case=ALONE, eps=1e-3)
@example(case=SPREAD, eps=1e-5)
@example(case=FLAT, eps=1e-5)
@example(case=DEEP, eps=1e-5)
@example(case=TINY, eps=0.0)  # no eps at all, not the default: `eps or default` mixes them up
def test_layer_norm(impl, device, dtype, case, eps):
    x, weight, bias, _, ns = _inputs(case, dtype, device)
    expected = F.layer_norm(x, _ns(ns), weight, bias, 1e-5 if eps == "default" else eps)
    check(f"layer_norm(normalized_shape={ns!r}, eps={eps}, {case.affine}) of x {tuple(x.shape)}",
          impl.layer_norm(x, ns, **_affine_kwargs(weight, bias), **_eps_kwargs(eps)), expected)


@given(case=shapes, eps=st.sampled_from(["default", None, 1e-6, 1e-3]))
@example(case=WIDE, eps=None)
@example(case=TINY, eps="default")
@example(case=SHIFTED, eps=1e-6)
@example(case=ALONE, eps=None)
@example(case=SPREAD, eps="default")
@example(case=FLAT, eps=None)
@example(case=TINY, eps=0.0)  # no eps at all, not the default: `eps or default` mixes them up
@example(case=DEEP, eps=None)
def test_rms_norm(impl, device, dtype, case, eps):
    x, weight, _, _, ns = _inputs(case, dtype, device)
    expected = F.rms_norm(x, _ns(ns), weight, None if eps == "default" else eps)
    check(f"rms_norm(normalized_shape={ns!r}, eps={eps}, {'with' if weight is not None else 'no'} weight) of x "
          f"{tuple(x.shape)}", impl.rms_norm(x, ns, **_affine_kwargs(weight), **_eps_kwargs(eps)), expected)


@pytest.mark.parametrize("fn", ["layer_norm", "rms_norm"])
def test_normalized_shape_as_a_list(impl, device, dtype, fn):
    """``normalized_shape`` as a list of two dims (``[3, 4]``), as torch takes it: both dims are
    normalized, not the last alone."""
    x, weight, bias, _, ns = _inputs(WIDE, dtype, device)
    ns = list(ns)
    if fn == "layer_norm":
        expected, got = F.layer_norm(x, ns, weight, bias), impl.layer_norm(x, ns, weight, bias)
    else:
        expected, got = F.rms_norm(x, ns, weight), impl.rms_norm(x, ns, weight)
    check(f"{fn}(normalized_shape={ns!r}) of x {tuple(x.shape)}", got, expected)


@pytest.mark.parametrize("fn", ["layer_norm", "rms_norm"])
@pytest.mark.parametrize("swap", [(0, 1), (-2, -1)], ids=["batch_dims", "normalized_dims"])
def test_non_contiguous_x(impl, device, dtype, fn, swap):
    """``x`` a transposed view (an attention layer's output often is one): ``x.view(...)`` refuses it,
    ``reshape`` and the reductions over ``dims`` do not. Batch dims swapped, then normalized dims."""
    x, weight, bias, _, ns = _inputs(WIDE, dtype, device)
    if fn == "layer_norm":
        kwargs, expected = _affine_kwargs(weight, bias), F.layer_norm(x, _ns(ns), weight, bias)
    else:
        kwargs, expected = _affine_kwargs(weight), F.rms_norm(x, _ns(ns), weight)
    sent = x.transpose(*swap).contiguous()  # transposed back beside the learner's code: a view shaped like x
    check(f"{fn}(normalized_shape={ns!r}) of x {tuple(x.shape)} given as a transposed, non-contiguous view "
          f"(dims {swap} swapped)", impl.drive("on_transposed", fn, sent, swap, ns, **kwargs), expected)


def _a_view(t):
    """``t``'s values as a non-contiguous view whose first two dims ``.view`` cannot merge (as a
    transposed attention output is)."""
    return t.transpose(0, 1).contiguous().transpose(0, 1)


@pytest.mark.parametrize("fn", ["layer_norm_backward", "rms_norm_backward"])
def test_backward_of_non_contiguous_inputs(impl, device, dtype, fn):
    """``x`` and ``d_out`` given as non-contiguous views: rows flattened with ``.view(-1, N)`` refuse
    them, ``reshape`` and the reductions over the normalized dims do not."""
    x, weight, bias, d_out, ns = _inputs(WIDE, dtype, device, gradient=True)
    where = f" of x and d_out {tuple(x.shape)} given as non-contiguous views"
    if fn == "layer_norm_backward":
        dx, dw, db = _reference_grads("layer_norm", ns, 1e-5, x, weight, bias, d_out)
        got = unpack(impl.layer_norm_backward(_a_view(x), ns, weight, bias, 1e-5, _a_view(d_out)), 3, fn)
        check(f"dbias of layer_norm{where}", got[2], db)
    else:
        dx, dw, _ = _reference_grads("rms_norm", ns, 1e-5, x, weight, None, d_out)
        got = unpack(impl.rms_norm_backward(_a_view(x), ns, weight, 1e-5, _a_view(d_out)), 2, fn)
    check(f"dx of {fn.removesuffix('_backward')}{where}", got[0], dx)
    check(f"dweight of {fn.removesuffix('_backward')}{where}", got[1], dw)


@given(case=shapes, eps=st.sampled_from([1e-5, 1e-3, 0.1]))
@example(case=WIDE, eps=1e-5)
@example(case=TINY, eps=1e-5)
@example(case=ALONE, eps=1e-3)
@example(case=NONE, eps=1e-5)
@example(case=FLAT, eps=1e-5)
@example(case=SPREAD, eps=1e-5)  # a bias without a weight: dbias is expected, dweight None
@example(case=DEEP, eps=1e-5)
def test_layer_norm_backward(impl, device, dtype, case, eps):
    x, weight, bias, d_out, ns = _inputs(case, dtype, device, gradient=True)
    dx, dw, db = _reference_grads("layer_norm", ns, eps, x, weight, bias, d_out)
    got = unpack(impl.layer_norm_backward(x, ns, weight, bias, eps, d_out), 3, "layer_norm_backward")
    where = f" (normalized_shape={ns!r}, eps={eps:g}, {case.affine}, x {tuple(x.shape)})"
    inputs = dict(x=x, normalized_shape=ns, weight=weight, bias=bias, eps=eps)
    grads = {n: g for n, g in zip(("x", "weight", "bias"), got) if inputs[n] is not None}
    with forward_or_backward(impl, "layer_norm", _layer_norm_reference, inputs, grads, d_out):
        check("dx of layer_norm" + where, got[0], dx)
        _check_optional("dweight of layer_norm" + where, got[1], dw, "weight")
        _check_optional("dbias of layer_norm" + where, got[2], db, "bias")


@given(case=shapes, eps=st.sampled_from([None, 1e-6, 1e-3]))
@example(case=WIDE, eps=None)
@example(case=TINY, eps=1e-6)
@example(case=ALONE, eps=None)
@example(case=NONE, eps=None)
@example(case=SPREAD, eps=1e-6)
@example(case=TINY, eps=0.0)
@example(case=DEEP, eps=None)
def test_rms_norm_backward(impl, device, dtype, case, eps):
    x, weight, _, d_out, ns = _inputs(case, dtype, device, gradient=True)
    dx, dw, _ = _reference_grads("rms_norm", ns, eps, x, weight, None, d_out)
    got = unpack(impl.rms_norm_backward(x, ns, weight, eps, d_out), 2, "rms_norm_backward")
    where = (f" (normalized_shape={ns!r}, eps={eps!r}, {'with' if weight is not None else 'no'} weight, "
             f"x {tuple(x.shape)})")
    inputs = dict(x=x, normalized_shape=ns, weight=weight, eps=eps)
    grads = {n: g for n, g in zip(("x", "weight"), got) if inputs[n] is not None}
    with forward_or_backward(impl, "rms_norm", _rms_norm_reference, inputs, grads, d_out):
        check("dx of rms_norm" + where, got[0], dx)
        _check_optional("dweight of rms_norm" + where, got[1], dw, "weight")


@pytest.mark.parametrize("case", [SHIFTED, WIDE])
def test_layer_norm_backward_with_a_common_offset(impl, device, case):
    """float64 inputs of spread 1 around 1e5: a backward that recomputes the variance as
    E[x^2] - E[x]^2 loses it to cancellation (the forward is held to this by SHIFTED)."""
    x, weight, bias, d_out, ns = _inputs(case, torch.float64, device, gradient=True)
    x = x + _offset(torch.float64)
    eps = 1e-5
    dx, dw, db = _reference_grads("layer_norm", ns, eps, x, weight, bias, d_out)
    got = unpack(impl.layer_norm_backward(x, ns, weight, bias, eps, d_out), 3, "layer_norm_backward")
    where = f" (normalized_shape={ns!r}, eps={eps:g}, {case.affine}, x {tuple(x.shape)} of spread 1 around 1e5)"
    check("dx of layer_norm" + where, got[0], dx)
    _check_optional("dweight of layer_norm" + where, got[1], dw, "weight")
    _check_optional("dbias of layer_norm" + where, got[2], db, "bias")


@pytest.mark.parametrize("fn", ["layer_norm_backward", "rms_norm_backward"])
def test_backward_with_a_zero_in_the_weight(impl, device, dtype, fn):
    """A weight with an entry 0 (a feature switched off): ``dweight`` is ``sum(d_out * x_hat)`` there
    too; recovering ``d_out`` as ``(d_out * weight) / weight`` gives nan."""
    x, weight, bias, d_out, ns = _inputs(WIDE, dtype, device, gradient=True)
    weight = weight.clone()
    weight[1, 2] = 0.0
    if fn == "layer_norm_backward":
        dx, dw, db = _reference_grads("layer_norm", ns, 1e-5, x, weight, bias, d_out)
        got = unpack(impl.layer_norm_backward(x, ns, weight, bias, 1e-5, d_out), 3, fn)
    else:
        dx, dw, db = _reference_grads("rms_norm", ns, 1e-5, x, weight, None, d_out)
        got = unpack(impl.rms_norm_backward(x, ns, weight, 1e-5, d_out), 2, fn)
    where = f" ({fn}, weight[1, 2] = 0, x {tuple(x.shape)})"
    check("dx" + where, got[0], dx)
    check("dweight" + where, got[1], dw)


def _layer_norm_reference(x, normalized_shape, weight, bias, eps):
    return F.layer_norm(x, _ns(normalized_shape), weight, bias, eps)


def _rms_norm_reference(x, normalized_shape, weight, eps):
    return F.rms_norm(x, _ns(normalized_shape), weight, eps)


def _forward_gradients(impl, fn, reference, case, dtype, device, eps):
    """Autograd through the learner's ``fn`` against autograd through ``reference``."""
    x, weight, bias, _, ns = _inputs(case, dtype, device, gradient=True)
    if fn == "rms_norm":
        bias = None
    given_ = [t for t in (x, weight, bias) if t is not None]
    leaves = [t.detach().requires_grad_(True) for t in given_]
    it = iter(leaves)
    out = reference(next(it), *[next(it) if t is not None else None for t in (weight, bias)])
    d_outs = upstream([out], case.seed + 20)
    kwargs = {**_affine_kwargs(weight, bias), **_eps_kwargs(eps)}
    names = ["x", *(n for n, t in (("weight", weight), ("bias", bias)) if t is not None)]
    # float32: a near-constant vector of a few features makes 1/std large, and with it the rounding
    # of a right answer (4.6e-5 seen against a gradient of 23); float64 checks the algorithm tightly
    loose = {"rtol": 2e-5, "atol": 1e-4} if dtype == torch.float32 else {}
    check_gradients(impl, fn, (x, ns), kwargs, d_outs, [out.detach()], reference_grads([out], leaves, d_outs),
                    outputs=["y"], inputs=names, **loose,
                    what=f"{fn}(normalized_shape={ns!r}, eps={eps}, {', '.join(names[1:]) or 'no weight or bias'})")


@given(case=shapes, eps=st.sampled_from([1e-5, 0.1]))
@example(case=WIDE, eps=1e-5)
@example(case=ALONE, eps=0.1)
def test_layer_norm_gradients(impl, device, dtype, case, eps):
    _forward_gradients(impl, "layer_norm", lambda a, w, b: F.layer_norm(a, list(case.norm), w, b, eps),
                       case, dtype, device, eps)


@given(case=shapes, eps=st.sampled_from([None, 1e-3]))
@example(case=WIDE, eps=None)
@example(case=TINY, eps=1e-3)
def test_rms_norm_gradients(impl, device, dtype, case, eps):
    _forward_gradients(impl, "rms_norm", lambda a, w, b: F.rms_norm(a, list(case.norm), w, eps),
                       case, dtype, device, eps)


blocks = cases(lead=st.lists(dims(1, 3), min_size=1, max_size=2), d_model=dims(3, 5), seed=seeds())


def _pre_norm(x, w, b_norm, W, b, eps):
    return x + torch.relu(F.linear(F.layer_norm(x, x.shape[-1:], w, b_norm, eps), W, b))


def _post_norm(x, w, b_norm, W, b, eps):
    return F.layer_norm(x + torch.relu(F.linear(x, W, b)), x.shape[-1:], w, b_norm, eps)


def _block_inputs(case, dtype, device):
    d = case.d_model
    x = randn(*case.lead, d, seed=case.seed, dtype=dtype, device=device, scale=2.0)
    params = [randn(d, seed=case.seed + 1, dtype=dtype, device=device),
              randn(d, seed=case.seed + 2, dtype=dtype, device=device),
              randn(d, d, seed=case.seed + 3, dtype=dtype, device=device, scale=d ** -0.5),
              randn(d, seed=case.seed + 4, dtype=dtype, device=device, scale=0.5)]
    return x, params


def _check_block(impl, which, reference, case, dtype, device, eps):
    x, params = _block_inputs(case, dtype, device)
    leaves = [t.detach().requires_grad_(True) for t in (x, *params)]
    expected = reference(*leaves, eps)
    d_outs = upstream([expected], case.seed + 5)
    # float32: three operations chained, and layer norm's 1/std scales the rounding of the others (a
    # right answer was seen 5e-6 relative away from PyTorch's); float64 checks the algorithm tightly
    loose = {"rtol": 2e-5, "atol": 1e-4} if dtype == torch.float32 else {}
    check_gradients(impl, which, (x, *params), {"eps": eps}, d_outs, [expected.detach()],
                    reference_grads([expected], leaves, d_outs), outputs=["the output"],
                    inputs=["x", "norm_weight", "norm_bias", "W", "b"], what=f"{which}(eps={eps:g})", **loose)


BLOCK = Case(lead=[2, 3], d_model=4, seed=1)
ROW = Case(lead=[1], d_model=3, seed=2)


@given(case=blocks, eps=st.sampled_from([1e-5, 0.1]))
@example(case=BLOCK, eps=1e-5)
@example(case=ROW, eps=0.1)
def test_pre_norm_block(impl, device, dtype, case, eps):
    _check_block(impl, "pre_norm_block", _pre_norm, case, dtype, device, eps)


@given(case=blocks, eps=st.sampled_from([1e-5, 0.1]))
@example(case=BLOCK, eps=1e-5)
@example(case=ROW, eps=0.1)
def test_post_norm_block(impl, device, dtype, case, eps):
    _check_block(impl, "post_norm_block", _post_norm, case, dtype, device, eps)


@pytest.mark.parametrize("which", ["pre_norm_block", "post_norm_block"])
def test_blocks_of_non_contiguous_inputs(impl, device, dtype, which):
    """``x`` ``(T, B, D)`` given as a view of a batch-first tensor: the sublayer's tokens flattened
    with ``.view(-1, D)`` refuse it, ``@`` over the last dim and ``reshape`` do not."""
    x, params = _block_inputs(BLOCK, dtype, device)
    expected = (_pre_norm if which == "pre_norm_block" else _post_norm)(x, *params, 1e-5)
    loose = {"rtol": 2e-5, "atol": 1e-4} if dtype == torch.float32 else {}
    check(f"{which}(eps=1e-5) of x {tuple(x.shape)} given as a non-contiguous view",
          getattr(impl, which)(_a_view(x), *params, eps=1e-5), expected, **loose)


def _device_case(fn):
    x, weight, bias, d_out, ns = _inputs(WIDE, torch.float32, "cpu")
    if fn == "layer_norm":
        return (x, ns), {}
    if fn == "rms_norm":
        return (x, ns), {}
    if fn == "layer_norm_backward":
        return (x, ns, weight, bias, 1e-5, d_out), {}
    if fn == "layer_norm_backward(weight=None)":
        return (x, ns, None, bias, 1e-5, d_out), {}
    if fn == "rms_norm_backward":
        return (x, ns, weight, None, d_out), {}
    if fn == "rms_norm_backward(weight=None)":
        return (x, ns, None, None, d_out), {}
    x, params = _block_inputs(BLOCK, torch.float32, "cpu")
    return (x, *params), {}


# The device pass (tests/devices.py): every input on the meta device; weight and bias left out in
# the forwards, where a stand-in made with torch.ones(...) would hide.
DEVICE_CASES = ["layer_norm", "rms_norm", "layer_norm_backward", "layer_norm_backward(weight=None)", "rms_norm_backward",
                "rms_norm_backward(weight=None)", "pre_norm_block", "post_norm_block"]


@pytest.mark.gated  # device handling counts as far as the topic's values are right
@pytest.mark.parametrize("fn", DEVICE_CASES)
def test_device_propagation(impl, fn):
    args, kwargs = _device_case(fn)
    check_devices(impl, fn.split("(")[0], *args, **kwargs)


from tests.defaults import check_defaults  # noqa: E402


@pytest.mark.gated  # a check of how the functions are called, not of what they compute
@pytest.mark.parametrize("fn", ["layer_norm", "rms_norm", "pre_norm_block", "post_norm_block"])
def test_defaults_are_the_stubs(impl, fn):
    """Called without ``eps`` (and the norms without weight and bias), on rows whose variance is of the
    order of eps, where another default shows."""
    x, params = _block_inputs(BLOCK, torch.float64, "cpu")
    x = x * 1e-3
    if fn in ("layer_norm", "rms_norm"):
        check_defaults(impl, "norms", fn, x, [x.shape[-1]])
    else:
        params[2] = params[2] * 1e-3  # W: the pre-activations small as well, for the post-norm block
        check_defaults(impl, "norms", fn, x, *params)
