"""Hidden suite for bptt: the learner's manual backward through time, truncated BPTT and clipping
against ``torch.autograd.grad`` through ``torch.nn.RNN`` and ``torch.nn.utils.clip_grad_norm_``."""
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from dlkata.gradcheck import which_differ
from tests.compare import Mismatch, check, unpack
from tests.strategies import Case, cases, dims, randn, seeds

NAMES = ("x", "h0", "W_ih", "W_hh", "b_ih", "b_hh")

# input != hidden, so that a transposed dW_ih cannot go unnoticed; sequences of 3 steps or more.
shapes = cases(batch=dims(1, 3), seq_len=dims(3, 5), input=dims(1, 4), hidden=dims(2, 4), seed=seeds()) \
    .filter(lambda c: c.input != c.hidden)
windows = cases(batch=dims(1, 2), seq_len=dims(3, 6), input=dims(1, 4), hidden=dims(2, 4), k=dims(1, 4),
                seed=seeds()).filter(lambda c: c.input != c.hidden)

ONE = Case(batch=2, seq_len=4, input=3, hidden=4, seed=1)
CUT = Case(batch=2, seq_len=5, input=2, hidden=3, k=2, seed=2)


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


@given(case=shapes)
@example(case=ONE)
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
def test_truncated_bptt(impl, device, dtype, case):
    x, h0, weights, d_output, _ = _problem(case, dtype, device)
    expected = _reference(x, h0, weights, d_output, k=case.k)
    result = impl.truncated_bptt(x, h0, *weights, d_output, case.k)
    _check_grads(result, expected, f"truncated_bptt(k={case.k}) over {case.seq_len} steps")


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


clip_cases = cases(shapes=st.lists(st.lists(dims(1, 3), min_size=1, max_size=2), min_size=1, max_size=4),
                   scale=st.sampled_from([0.5, 3.0]), seed=seeds())
SEVERAL = Case(shapes=[[2, 3], [3], [1], [1, 2]], scale=3.0, seed=4)
ZEROS = Case(shapes=[[2, 2], [3]], scale=0.0, seed=5)


@given(case=clip_cases, max_norm=st.sampled_from([0.1, 1.0, 4.0, 1e3]))
@example(case=SEVERAL, max_norm=1.0)
@example(case=SEVERAL, max_norm=1e3)
@example(case=ZEROS, max_norm=1.0)
def test_clip_grad_norm(impl, device, dtype, case, max_norm):
    grads = [randn(*shape, seed=case.seed + i, dtype=dtype, device=device, scale=case.scale)
             for i, shape in enumerate(case.shapes)]
    params = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    expected_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    clipped, total_norm = unpack(impl.clip_grad_norm(grads, max_norm), 2, "clip_grad_norm")
    what = f"clip_grad_norm of {len(grads)} tensors (max_norm={max_norm})"
    check(f"{what}: total_norm", total_norm, expected_norm)
    clipped = unpack(clipped, len(grads), f"{what}: the clipped list")
    for i, (c, p) in enumerate(zip(clipped, params)):
        check(f"{what}: clipped tensor {i}", c, p.grad)
