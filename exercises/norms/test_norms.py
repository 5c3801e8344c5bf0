"""Public tests: run ``pytest exercises/norms``. The graded suite checks much more."""
import torch
import torch.nn.functional as F

from dlkata.compare import check, unpack
from dlkata.gradcheck import check_backward
from norms import layer_norm, layer_norm_backward, post_norm_block, pre_norm_block, rms_norm, rms_norm_backward


def _data(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def test_layer_norm_matches_torch():
    x, w, b = _data(2, 3, 4), _data(4, seed=1), _data(4, seed=2)
    check("layer_norm(x, (4,), w, b)", layer_norm(x, (4,), w, b), F.layer_norm(x, (4,), w, b))
    check("layer_norm(x, 4, w, b)", layer_norm(x, 4, w, b), F.layer_norm(x, (4,), w, b))
    check("layer_norm(x, (3, 4)) over the last two dims", layer_norm(x, (3, 4)), F.layer_norm(x, (3, 4)))


def test_layer_norm_eps_and_large_offsets():
    x = _data(2, 5) * 1e-4  # eps matters here: inside the square root
    check("layer_norm(x * 1e-4, 5, eps=1e-5)", layer_norm(x, 5, eps=1e-5), F.layer_norm(x, (5,), eps=1e-5))
    shifted = _data(2, 5, seed=4) + 1e4  # mean(x^2) - mean^2 cancels here
    check("layer_norm(x + 1e4, 5)", layer_norm(shifted, 5), F.layer_norm(shifted, (5,)))


def test_rms_norm_matches_torch_with_default_eps():
    x, w = _data(2, 5), _data(5, seed=1)
    check("rms_norm(x, 5, w)", rms_norm(x, 5, w), F.rms_norm(x, (5,), w))
    tiny = x * 1e-4  # eps matters here
    check("rms_norm(tiny, (5,), w, 1e-6)", rms_norm(tiny, (5,), w, 1e-6), F.rms_norm(tiny, (5,), w, 1e-6))
    tinier = x * 1e-9  # eps=None means torch.finfo(x.dtype).eps
    check("rms_norm(x * 1e-9, (5,)) with eps=None", rms_norm(tinier, (5,)), F.rms_norm(tinier, (5,)))
    x3 = _data(2, 3, 4, seed=5)
    check("rms_norm(x, (3, 4)) over the last two dims", rms_norm(x3, (3, 4)), F.rms_norm(x3, (3, 4)))


def _layer_norm_reference(x, normalized_shape, weight, bias, eps):
    return F.layer_norm(x, normalized_shape, weight, bias, eps)


def _rms_norm_reference(x, normalized_shape, weight, eps):
    return F.rms_norm(x, normalized_shape, weight, eps)


def _expected(reference, inputs, names, d_out):
    leaves = {k: (v.clone().requires_grad_(True) if k in names else v) for k, v in inputs.items()}
    return dict(zip(names, torch.autograd.grad(reference(**leaves), [leaves[n] for n in names], d_out)))


def _check_layer_norm_backward(x, shape, w, b, eps, d_out):
    inputs = dict(x=x, normalized_shape=shape, weight=w, bias=b, eps=eps)
    names = [n for n in ("x", "weight", "bias") if inputs[n] is not None]
    grads = unpack(layer_norm_backward(x, shape, w, b, eps, d_out), 3, "layer_norm_backward")
    for name, g in zip(("weight", "bias"), grads[1:]):
        if inputs[name] is None:
            assert g is None, f"layer_norm_backward: d{name} should be None when {name} is None, got {g!r}"
    check_backward("layer_norm_backward", dict(zip(("x", "weight", "bias"), grads)),
                   _expected(_layer_norm_reference, inputs, names, d_out), forward=layer_norm,
                   reference=_layer_norm_reference, inputs=inputs, d_out=d_out, own_forward="your layer_norm")


def test_layer_norm_backward_matches_autograd():
    x, w, b, d_out = _data(3, 4), _data(4, seed=1), _data(4, seed=2), _data(3, 4, seed=3)
    _check_layer_norm_backward(x, (4,), w, b, 1e-5, d_out)


def test_layer_norm_backward_over_two_dims_and_batch_dims_without_parameters():
    x, w, d_out = _data(2, 3, 2, 4), _data(2, 4, seed=1), _data(2, 3, 2, 4, seed=3)
    _check_layer_norm_backward(x, (2, 4), w, None, 1e-5, d_out)
    _check_layer_norm_backward(x, (4,), None, None, 1e-3, d_out)


def _check_rms_norm_backward(x, shape, w, eps, d_out):
    inputs = dict(x=x, normalized_shape=shape, weight=w, eps=eps)
    names = [n for n in ("x", "weight") if inputs[n] is not None]
    grads = unpack(rms_norm_backward(x, shape, w, eps, d_out), 2, "rms_norm_backward")
    if w is None:
        assert grads[1] is None, f"rms_norm_backward: dweight should be None when weight is None, got {grads[1]!r}"
    check_backward("rms_norm_backward", dict(zip(("x", "weight"), grads)),
                   _expected(_rms_norm_reference, inputs, names, d_out), forward=rms_norm,
                   reference=_rms_norm_reference, inputs=inputs, d_out=d_out, own_forward="your rms_norm")


def test_rms_norm_backward_matches_autograd():
    x, w, d_out = _data(3, 4), _data(4, seed=1), _data(3, 4, seed=3)
    _check_rms_norm_backward(x, (4,), w, None, d_out)
    _check_rms_norm_backward(_data(2, 2, 3), (2, 3), None, 1e-6, _data(2, 2, 3, seed=3))


def test_pre_and_post_norm_blocks():
    x, w, b_norm, W, b = _data(2, 3), _data(3, seed=1), _data(3, seed=2), _data(3, 3, seed=3), _data(3, seed=4)
    ln = lambda z: F.layer_norm(z, (3,), w, b_norm)  # noqa: E731
    check("pre_norm_block: x + f(layer_norm(x))", pre_norm_block(x, w, b_norm, W, b),
          x + torch.relu(F.linear(ln(x), W, b)))
    check("post_norm_block: layer_norm(x + f(x))", post_norm_block(x, w, b_norm, W, b),
          ln(x + torch.relu(F.linear(x, W, b))))


def test_blocks_stay_differentiable():
    args = [_data(2, 3), _data(3, seed=1), _data(3, seed=2), _data(3, 3, seed=3), _data(3, seed=4)]
    names = ["x", "norm_weight", "norm_bias", "W", "b"]
    reference = {
        "pre_norm_block": lambda x, nw, nb, W, b: x + torch.relu(F.linear(F.layer_norm(x, (3,), nw, nb), W, b)),
        "post_norm_block": lambda x, nw, nb, W, b: F.layer_norm(x + torch.relu(F.linear(x, W, b)), (3,), nw, nb),
    }
    for block in (pre_norm_block, post_norm_block):
        leaves = [a.clone().requires_grad_(True) for a in args]
        out = block(*leaves)
        assert isinstance(out, torch.Tensor) and out.requires_grad, \
            f"{block.__name__}: the output does not depend on the inputs through autograd (a .detach() or .item()?)"
        got = torch.autograd.grad(out.sum(), leaves, allow_unused=True)
        ref_leaves = [a.clone().requires_grad_(True) for a in args]
        want = torch.autograd.grad(reference[block.__name__](*ref_leaves).sum(), ref_leaves)
        for name, g, e in zip(names, got, want):
            check(f"{block.__name__}: autograd's gradient of {name} through your block", g, e)
