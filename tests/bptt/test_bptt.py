"""Hidden suite for bptt: the learner's manual backward through time, truncated BPTT and clipping
against ``torch.autograd.grad`` through ``torch.nn.RNN`` and ``torch.nn.utils.clip_grad_norm_``, and
devices.

What the stub promises, and where it is tested:

| promise (exercises/bptt/bptt.py) | test |
|---|---|
| the gradients of x, h0, W_ih, W_hh, b_ih, b_hh, shaped like their inputs, in a dict | ``test_rnn_backward`` |
| ``d_output`` at every step and ``d_h_n`` at the end both count | ``test_rnn_backward*`` |
| edges: T = 1, B = 1, H = 1, I = 1 | ``EDGE``, ``THIN`` examples; strategies reach them |
| the gradient through time shrinks with small recurrent weights | ``test_gradient_vanishes_*`` |
| truncated: windows ``[0, k), [k, 2k), ...``, the last shorter; state carried, gradient cut | ``test_truncated_bptt`` |
| truncated: ``k = 1``; ``k >= T`` is full BPTT | ``test_truncated_bptt`` examples |
| clipping: one global factor ``min(1, max_norm / (norm + eps))``, never above 1, below 1 from ``max_norm - eps`` on | ``test_clip_grad_norm`` (``BELOW``) |
| clipping: any shapes (a 0-dim tensor too), tensors of very different scales, zeros | ``test_clip_grad_norm`` examples |
| clipping: ``eps`` given or left at its default 1e-6 | ``test_clip_grad_norm`` (``eps``) |
| ``total_norm`` a 0-dim tensor of the gradients' dtype, before clipping | ``test_clip_grad_norm`` |
| clipping returns new tensors, even when nothing is clipped | ``test_clip_grad_norm_returns_new_tensors`` |
| dtype of the inputs | every test, float64 and float32 |
| device of the inputs | ``test_device_propagation`` (meta device) |
| inputs not changed in place, new tensors returned | every call (the sandbox compares inputs) |
| ``x`` and the gradients to clip may be views: no ``.view(...)`` of them | ``test_rnn_backward_of_a_non_contiguous_x``, ``test_truncated_bptt_of_a_non_contiguous_x``, ``test_clip_grad_norm_of_non_contiguous_grads`` |
| clipped tensors in the gradients' dtype throughout (float64: to 1e-12) | ``test_clip_grad_norm`` |
| an explicit ``eps=0`` in ``clip_grad_norm`` is no eps (not the default) | ``test_clip_grad_norm`` (``eps=0.0``) |
"""
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from dlkata.gradcheck import which_differ
from tests.compare import Mismatch, check, unpack
from tests.references import reference
from tests.devices import check_devices
from tests.strategies import Case, cases, dims, randn, seeds

NAMES = ("x", "h0", "W_ih", "W_hh", "b_ih", "b_hh")

# input != hidden, so that a transposed dW_ih cannot go unnoticed.
shapes = cases(batch=dims(1, 3), seq_len=dims(1, 5), input=dims(1, 4), hidden=dims(1, 4), seed=seeds()) \
    .filter(lambda c: c.input != c.hidden)
windows = cases(batch=dims(1, 2), seq_len=dims(1, 6), input=dims(1, 4), hidden=dims(1, 4), k=dims(1, 7),
                seed=seeds()).filter(lambda c: c.input != c.hidden)

ONE = Case(batch=2, seq_len=4, input=3, hidden=4, seed=1)
EDGE = Case(batch=1, seq_len=1, input=2, hidden=3, seed=8)  # one sequence of one step
THIN = Case(batch=3, seq_len=3, input=2, hidden=1, seed=9)  # a hidden state of size 1
CUT = Case(batch=2, seq_len=5, input=2, hidden=3, k=2, seed=2)  # the last window shorter
STEPS = Case(batch=2, seq_len=3, input=3, hidden=2, k=1, seed=10)  # windows of one step
WHOLE = Case(batch=1, seq_len=3, input=2, hidden=3, k=3, seed=11)  # k = T: one window
LONG = Case(batch=2, seq_len=2, input=1, hidden=2, k=5, seed=12)  # k > T: one window


def _problem(case, dtype, device, scale=0.6):
    """``x (T, B, I)``, ``h0 (B, H)``, the weights, ``d_output (T, B, H)`` and ``d_h_n (B, H)``."""
    T, B, I, H, s = case.seq_len, case.batch, case.input, case.hidden, case.seed
    x = randn(T, B, I, seed=s, dtype=dtype, device=device)
    h0 = randn(B, H, seed=s + 1, dtype=dtype, device=device)
    weights = [randn(*shape, seed=s + 2 + i, dtype=dtype, device=device, scale=scale)
               for i, shape in enumerate([(H, I), (H, H), (H,), (H,)])]
    d_output = randn(T, B, H, seed=s + 6, dtype=dtype, device=device)
    d_h_n = randn(B, H, seed=s + 7, dtype=dtype, device=device)
    return x, h0, weights, d_output, d_h_n


def _torch_rnn(weights):
    """``torch.nn.RNN`` (tanh, one layer, time-major) holding ``weights``, and its parameters in the
    order ``W_ih, W_hh, b_ih, b_hh``."""
    W_ih = weights[0]
    module = torch.nn.RNN(W_ih.shape[1], W_ih.shape[0]).to(device=W_ih.device, dtype=W_ih.dtype)
    params = [module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0]
    with torch.no_grad():
        for p, w in zip(params, weights):
            p.copy_(w)
    return module, params


@reference
def _reference(x, h0, weights, d_output, d_h_n=None, k=None):
    """``torch.autograd.grad`` of ``sum(output * d_output) + sum(h_n * d_h_n)``, the forward run by
    ``torch.nn.RNN`` in windows of ``k`` steps with the state detached between windows (``k=None``:
    one window)."""
    module, params = _torch_rnn(weights)
    x, h0 = x.detach().requires_grad_(True), h0.detach().requires_grad_(True)
    k = k or x.shape[0]
    h, loss = h0.unsqueeze(0), 0
    for start in range(0, x.shape[0], k):
        if start:
            h = h.detach()  # the window edge: the state goes on, the gradient stops
        out, h = module(x[start:start + k], h)
        loss = loss + (out * d_output[start:start + k]).sum()
    if d_h_n is not None:
        loss = loss + (h[0] * d_h_n).sum()
    return dict(zip(NAMES, torch.autograd.grad(loss, [x, h0, *params])))


def _check_grads(result, expected, what):
    if not isinstance(result, dict):
        raise Mismatch(f"{what} should return a dict with the keys {', '.join(NAMES)}, got "
                       f"{type(result).__name__}")
    missing = [n for n in NAMES if n not in result]
    if missing:
        raise Mismatch(f"{what}: the returned dict has no key {', '.join(missing)}")
    try:
        for name in NAMES:
            check(f"{what}: gradient of {name}", result[name], expected[name])
    except Mismatch as e:  # which gradients differ, and at which time steps the input's does
        raise Mismatch(f"{e}\n{which_differ(result, expected, steps='x')}") from None


def test_rnn_backward_of_a_non_contiguous_x(impl, device, dtype):
    """``x`` a time-major view of a batch-first tensor, as a model that transposes its input passes it: ``x.view(T * B, I)`` refuses it, ``reshape`` and indexing by step do not."""
    x, h0, weights, d_output, d_h_n = _problem(ONE, dtype, device)
    x = x.transpose(0, 1).contiguous().transpose(0, 1)  # the same values, a view of a (B, T, I) tensor
    expected = _reference(x, h0, weights, d_output, d_h_n)
    result = impl.rnn_backward(x, h0, *weights, d_output, d_h_n)
    _check_grads(result, expected, "rnn_backward of x given as a non-contiguous view (T, B, I)")


@given(case=shapes)
@example(case=ONE)
@example(case=EDGE)
@example(case=THIN)
def test_rnn_backward(impl, device, dtype, case):
    x, h0, weights, d_output, d_h_n = _problem(case, dtype, device)
    expected = _reference(x, h0, weights, d_output, d_h_n)
    result = impl.rnn_backward(x, h0, *weights, d_output, d_h_n)
    _check_grads(result, expected, "rnn_backward (upstream gradients at every step and at h_n)")


@given(case=shapes)
@example(case=ONE)
def test_rnn_backward_from_the_final_state_only(impl, device, dtype, case):
    x, h0, weights, d_output, d_h_n = _problem(case, dtype, device)
    d_output = torch.zeros_like(d_output)
    expected = _reference(x, h0, weights, d_output, d_h_n)
    result = impl.rnn_backward(x, h0, *weights, d_output, d_h_n)
    _check_grads(result, expected, "rnn_backward (d_output all zeros, only d_h_n given)")


@given(case=windows)
@example(case=CUT)
@example(case=STEPS)
@example(case=WHOLE)
@example(case=LONG)
def test_truncated_bptt(impl, device, dtype, case):
    x, h0, weights, d_output, _ = _problem(case, dtype, device)
    expected = _reference(x, h0, weights, d_output, k=case.k)
    result = impl.truncated_bptt(x, h0, *weights, d_output, case.k)
    _check_grads(result, expected, f"truncated_bptt(k={case.k}) over {case.seq_len} steps")


def test_truncated_bptt_of_a_non_contiguous_x(impl, device, dtype):
    """``x`` a time-major view of a batch-first tensor in the truncated backward too: every step's
    input projected at once with ``x.view(T * B, I)`` refuses it."""
    x, h0, weights, d_output, _ = _problem(CUT, dtype, device)
    x = x.transpose(0, 1).contiguous().transpose(0, 1)  # the same values, a view of a (B, T, I) tensor
    expected = _reference(x, h0, weights, d_output, k=CUT.k)
    result = impl.truncated_bptt(x, h0, *weights, d_output, CUT.k)
    _check_grads(result, expected, f"truncated_bptt(k={CUT.k}) of x given as a non-contiguous view (T, B, I)")


@given(seed=seeds(), batch=dims(1, 2), input=dims(1, 3), hidden=dims(2, 4))
@example(seed=3, batch=2, input=3, hidden=4)
def test_gradient_vanishes_with_small_recurrent_weights(impl, device, dtype, seed, batch, input, hidden):
    """``W_hh = 0.1 * Q``, ``Q`` orthogonal (a reflection), and small pre-activations: every step back
    multiplies the gradient by ``W_hh^T`` (norm 0.1) and by ``tanh' <= 1``, so the gradient that
    reaches ``h0`` from the last output shrinks as the sequence grows."""
    steps = 6
    v = randn(hidden, 1, seed=seed, dtype=dtype, device=device)
    W_hh = 0.1 * (torch.eye(hidden, dtype=dtype, device=device) - 2 * (v @ v.T) / (v * v).sum())
    x = randn(steps, batch, input, seed=seed + 1, dtype=dtype, device=device, scale=0.2)
    h0 = randn(batch, hidden, seed=seed + 2, dtype=dtype, device=device, scale=0.3)
    W_ih = randn(hidden, input, seed=seed + 3, dtype=dtype, device=device, scale=0.2)
    b_ih = randn(hidden, seed=seed + 4, dtype=dtype, device=device, scale=0.05)
    b_hh = randn(hidden, seed=seed + 5, dtype=dtype, device=device, scale=0.05)
    d_last = randn(batch, hidden, seed=seed + 6, dtype=dtype, device=device)
    weights = [W_ih, W_hh, b_ih, b_hh]

    expected = []
    for T in range(1, steps + 1):
        d_output = torch.zeros(T, batch, hidden, dtype=dtype, device=device)
        d_output[-1] = d_last
        expected.append(_reference(x[:T], h0, weights, d_output)["h0"])
    ref_norms = [float(e.norm()) for e in expected]
    if not all(a > b for a, b in zip(ref_norms, ref_norms[1:])):
        raise AssertionError(f"test setup: the reference norms do not shrink: {ref_norms}")

    result = impl.drive("dh0_over_lengths", x, h0, *weights, d_last)
    if not isinstance(result, list) or len(result) != steps:
        raise Mismatch("rnn_backward should return a dict with a key h0 (the gradient of h0), got "
                       f"{type(result).__name__}")
    if not all(isinstance(r, torch.Tensor) and r.shape == expected[0].shape for r in result):
        raise Mismatch(f"rnn_backward: the gradient of h0 should be a tensor of shape {tuple(h0.shape)}")
    norms = [float(r.norm()) for r in result]
    if not all(a > b for a, b in zip(norms, norms[1:])):
        fmt = lambda ns: "[" + ", ".join(f"{n:.3g}" for n in ns) + "]"  # noqa: E731
        raise Mismatch("with small recurrent weights the gradient reaching h0 from the last output should "
                       f"shrink at every extra step: its norm for T = 1..{steps} is {fmt(norms)}, autograd "
                       f"gives {fmt(ref_norms)}")
    for T, (r, e) in enumerate(zip(result, expected), start=1):
        check(f"rnn_backward over T={T} steps, only the last output with a gradient: gradient of h0", r, e)


clip_cases = cases(shapes=st.lists(st.lists(dims(1, 3), min_size=0, max_size=2), min_size=1, max_size=4),
                   scales=st.lists(st.sampled_from([1e-3, 0.5, 3.0, 30.0]), min_size=4, max_size=4), seed=seeds())
SEVERAL = Case(shapes=[[2, 3], [3], [1], [1, 2]], scales=[3.0, 3.0, 3.0, 3.0], seed=4)
ZEROS = Case(shapes=[[2, 2], [3]], scales=[0.0, 0.0], seed=5)
MIXED = Case(shapes=[[], [4], [2, 2]], scales=[30.0, 1e-3, 0.5], seed=6)  # a 0-dim tensor; scales apart
# A norm (about 0.53) between max_norm - eps and max_norm: clipped although below max_norm.
BELOW = Case(shapes=[[2, 3]], scales=[0.5, 0.5, 0.5, 0.5], seed=1)


@given(case=clip_cases, max_norm=st.sampled_from([0.1, 1.0, 4.0, 1e3]), eps=st.sampled_from(["default", 0.5, 0.0]))
@example(case=SEVERAL, max_norm=1.0, eps="default")
@example(case=SEVERAL, max_norm=1e3, eps="default")
@example(case=ZEROS, max_norm=1.0, eps="default")
@example(case=MIXED, max_norm=4.0, eps="default")
@example(case=SEVERAL, max_norm=4.0, eps=0.5)
@example(case=BELOW, max_norm=1.0, eps=0.5)
@example(case=BELOW, max_norm=0.1, eps="default")  # norm 0.53: the default eps shows at rtol 1e-7
@example(case=BELOW, max_norm=0.1, eps=0.0)  # no eps at all: not the default in its place
def test_clip_grad_norm(impl, device, dtype, case, max_norm, eps):
    grads = [randn(*(shape or [1]), seed=case.seed + i, dtype=dtype, device=device, scale=scale).reshape(shape)
             for i, (shape, scale) in enumerate(zip(case.shapes, case.scales))]
    params = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    expected_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    expected = [p.grad for p in params]
    if eps != "default":  # torch's eps is fixed at 1e-6: the stub's formula with the given eps
        factor = (max_norm / (expected_norm + eps)).clamp(max=1.0)
        expected = [g * factor for g in grads]
    kwargs = {} if eps == "default" else {"eps": eps}
    clipped, total_norm = unpack(impl.clip_grad_norm(grads, max_norm, **kwargs), 2, "clip_grad_norm")
    what = f"clip_grad_norm of {len(grads)} tensors (max_norm={max_norm}, eps={eps})"
    tight = {"rtol": 1e-12, "atol": 0.0} if dtype == torch.float64 else {}  # a norm summed in float32 shows
    check(f"{what}: total_norm", total_norm, expected_norm, **tight)
    clipped = unpack(clipped, len(grads), f"{what}: the clipped list")
    for i, (c, e) in enumerate(zip(clipped, expected)):  # a factor carried through float32 shows too
        check(f"{what}: clipped tensor {i}", c, e, **tight)


@pytest.mark.gated  # a check of how the functions are called, not of what they compute
def test_clip_grad_norm_of_non_contiguous_grads(impl, device, dtype):
    """Gradients that are views (a transposed weight's, a strided slice's): ``g.view(-1)`` refuses
    them, ``reshape`` and the reductions do not."""
    grads = [randn(3, 2, seed=1, dtype=dtype, device=device).t(), randn(4, 6, seed=2, dtype=dtype, device=device)[:, ::2]]
    params = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    expected_norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
    what = "clip_grad_norm of non-contiguous gradients (max_norm=1.0)"
    clipped, total_norm = unpack(impl.clip_grad_norm(grads, 1.0), 2, what)
    check(f"{what}: total_norm", total_norm, expected_norm)
    for i, (c, p) in enumerate(zip(unpack(clipped, 2, f"{what}: the clipped list"), params)):
        check(f"{what}: clipped[{i}]", c, p.grad)


@given(case=clip_cases, max_norm=st.sampled_from([0.1, 1e3]))
@example(case=SEVERAL, max_norm=1e3)  # nothing to clip: the factor is 1
@example(case=SEVERAL, max_norm=0.1)
def test_clip_grad_norm_returns_new_tensors(impl, device, dtype, case, max_norm):
    """New tensors even when nothing is clipped: a caller that changes a clipped gradient in place (an
    optimizer's update) must not change the gradients it passed in."""
    grads = [randn(*(shape or [1]), seed=case.seed + i, dtype=dtype, device=device, scale=scale).reshape(shape)
             for i, (shape, scale) in enumerate(zip(case.shapes, case.scales))]
    shared = impl.drive("clipped_sharing_memory", grads, max_norm)
    if not isinstance(shared, list):
        raise Mismatch(f"clip_grad_norm should return (clipped, total_norm) with clipped a list, got {shared!r}"[:300])
    if shared:
        raise Mismatch(f"clip_grad_norm(max_norm={max_norm}) returned input tensor(s) {shared} themselves, not new "
                       "tensors: return g * factor for every g, even when the factor is 1 (a caller that updates a "
                       "clipped gradient in place would change the gradient it passed in)")


def _device_case(fn):
    x, h0, weights, d_output, d_h_n = _problem(ONE, torch.float32, "cpu")
    if fn == "rnn_backward":
        return (x, h0, *weights, d_output, d_h_n), {}
    if fn == "truncated_bptt":
        return (x, h0, *weights, d_output, 3), {}
    if fn == "truncated_bptt(k >= T)":  # one window: a shortcut to rnn_backward must keep the device too
        return (x, h0, *weights, d_output, x.shape[0]), {}
    return (weights, 1.0), {}


# The device pass (tests/devices.py): every input on the meta device; gradient buffers made
# without device= are the usual culprit.
DEVICE_CASES = ["rnn_backward", "truncated_bptt", "truncated_bptt(k >= T)", "clip_grad_norm"]


@pytest.mark.gated  # device handling counts as far as the topic's values are right
@pytest.mark.parametrize("fn", DEVICE_CASES)
def test_device_propagation(impl, fn):
    args, kwargs = _device_case(fn)
    check_devices(impl, fn.split("(")[0], *args, **kwargs)
