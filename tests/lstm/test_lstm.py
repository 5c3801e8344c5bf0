"""Hidden suite for lstm: the learner's gates, cell and layer against the chunks of torch's
pre-activations, ``torch.nn.LSTMCell`` and ``torch.nn.LSTM`` loaded with the same weights (values and
gradients through them), the manual backward of one cell against ``torch.autograd.grad``, and devices.

What the stub promises, and where it is tested:

| promise (exercises/lstm/lstm.py) | test |
|---|---|
| gates i, f, g, o in torch's order; sigmoid, sigmoid, tanh, sigmoid | ``test_lstm_gates`` |
| ``c' = f * c + i * g``, ``h' = o * tanh(c')``, ``c'`` returned without tanh | ``test_lstm_cell`` |
| (4H, I) / (4H, H) layout, both biases | every test (I != H) |
| ``hc0=None`` is zeros for both states; ``c0`` counts as much as ``h0`` | ``test_lstm_forward`` examples |
| ``(h_n, c_n)`` each ``(1, B, H)``, the last step's states | ``test_lstm_forward`` |
| a forward a student trains through: gradients of x, h, c / hc0 and every weight | ``test_*_gradients`` |
| the backward: every gradient, ``d_c_next`` added, ``dc`` through f, both biases | ``test_lstm_cell_backward`` |
| edges: T = 1, B = 1, H = 1, I = 1 | ``EDGE``, ``THIN`` examples; strategies reach them |
| sigmoid and tanh exact for any input (no ``nan`` from an ``exp`` that overflows), autograd through them too | ``test_lstm_cell_saturated``, ``test_lstm_cell_backward_saturated``, ``test_lstm_cell_gradients_saturated`` |
| dtype of the inputs | every test, float64 and float32 |
| device of the inputs (no ``.cpu()``, no numpy) | ``test_device_propagation`` (meta device) |
| inputs not changed in place | every call (the sandbox compares inputs) and the gradient tests |
| ``x`` a view (a transposed batch-first tensor): no ``x.view(T * B, I)`` | ``test_non_contiguous_x`` |
"""
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from tests.compare import Mismatch, check, unpack
from tests.devices import check_devices
from tests.diagnosis import forward_or_backward
from tests.gradients import check_gradients, reference_grads, upstream
from tests.strategies import Case, cases, dims, randn, seeds
from tests.references import reference

# input != hidden, so that a weight used without its transpose cannot go unnoticed.
shapes = cases(batch=dims(1, 3), seq_len=dims(1, 4), input=dims(1, 4), hidden=dims(1, 4), seed=seeds()) \
    .filter(lambda c: c.input != c.hidden)

# Explicit cases, run first: batch and time of different lengths, both larger than 1; the edges.
ONE = Case(batch=2, seq_len=3, input=3, hidden=4, seed=1)
EDGE = Case(batch=1, seq_len=1, input=2, hidden=3, seed=3)  # one sequence of one step
THIN = Case(batch=3, seq_len=2, input=2, hidden=1, seed=4)  # states of size 1

GATES = ("gate i (input)", "gate f (forget)", "gate g (candidate values)", "gate o (output)")
GRADS = ("dx", "dh", "dc", "dW_ih", "dW_hh", "db_ih", "db_hh")


def _weights(case, dtype, device):
    """``(W_ih, W_hh, b_ih, b_hh)`` in the layout of ``torch.nn.LSTM``: every gate has weights of its
    own, biases are not zero, and the scale keeps the gates away from saturation."""
    H, I = case.hidden, case.input
    shapes_ = [(4 * H, I), (4 * H, H), (4 * H,), (4 * H,)]
    return tuple(randn(*s, seed=case.seed + 10 + k, dtype=dtype, device=device, scale=0.5)
                 for k, s in enumerate(shapes_))


def _load(module, weights, suffix=""):
    with torch.no_grad():
        for name, w in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), weights):
            getattr(module, name + suffix).copy_(w)
    return module


def _torch_cell(weights, dtype, device):
    hidden4, inputs = weights[0].shape
    return _load(torch.nn.LSTMCell(inputs, hidden4 // 4).to(device=device, dtype=dtype), weights)


@reference
def _cell_output(weights, x, h, c):
    """``(h', c')`` of ``torch.nn.LSTMCell`` holding ``weights``."""
    with torch.no_grad():
        return _torch_cell(weights, x.dtype, x.device)(x, (h, c))


@reference
def _layer_output(weights, x, hc0):
    """``(output, (h_n, c_n))`` of a one-layer ``torch.nn.LSTM`` holding ``weights``."""
    H = weights[1].shape[1]
    module = _load(torch.nn.LSTM(x.shape[-1], H).to(device=x.device, dtype=x.dtype), weights, suffix="_l0")
    with torch.no_grad():
        return module(x, hc0)


def _check_all(what, names, results, expected):
    """Compare every item; on failure name all the wrong ones (and the right ones), then detail the first."""
    wrong, errors = [], []
    for name, got, want in zip(names, results, expected):
        try:
            check(name, got, want)
        except Mismatch as e:
            wrong.append(name)
            errors.append(str(e))
    if wrong:
        right = [n for n in names if n not in wrong]
        summary = f"{what}: wrong {', '.join(wrong)}" + (f" (right: {', '.join(right)})" if right else "")
        raise Mismatch(f"{summary}. First, {errors[0]}")


def _step_inputs(case, dtype, device):
    """``x (B, I)``, ``h (B, H)``, ``c (B, H)``: a cell state of size 1-2, so that forgetting it shows."""
    x = randn(case.batch, case.input, seed=case.seed, dtype=dtype, device=device)
    h = randn(case.batch, case.hidden, seed=case.seed + 1, dtype=dtype, device=device)
    c = randn(case.batch, case.hidden, seed=case.seed + 2, dtype=dtype, device=device, scale=1.5)
    return x, h, c


@given(case=shapes)
@example(case=ONE)
@example(case=THIN)
def test_lstm_gates(impl, device, dtype, case):
    weights = _weights(case, dtype, device)
    W_ih, W_hh, b_ih, b_hh = weights
    x, h, _ = _step_inputs(case, dtype, device)
    z_i, z_f, z_g, z_o = (x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=1)
    expected = (torch.sigmoid(z_i), torch.sigmoid(z_f), torch.tanh(z_g), torch.sigmoid(z_o))
    gates = unpack(impl.lstm_gates(x, h, *weights), 4, "lstm_gates")
    _check_all("lstm_gates", GATES, gates, expected)


@given(case=shapes)
@example(case=ONE)
@example(case=THIN)
def test_lstm_cell(impl, device, dtype, case):
    weights = _weights(case, dtype, device)
    x, h, c = _step_inputs(case, dtype, device)
    expected_h, expected_c = _cell_output(weights, x, h, c)
    h_next, c_next = unpack(impl.lstm_cell(x, h, c, *weights), 2, "lstm_cell")
    check("lstm_cell (compared with torch.nn.LSTMCell): h', the new hidden state", h_next, expected_h)
    check("lstm_cell (compared with torch.nn.LSTMCell): c', the new cell state", c_next, expected_c)


def test_lstm_cell_saturated(impl, device, dtype):
    """Pre-activations in the thousands: the gates saturate at 0 and 1 (exp written out overflows to nan)."""
    weights = _weights(ONE, dtype, device)
    x, h, c = _step_inputs(ONE, dtype, device)
    x = x * 1e4
    expected_h, expected_c = _cell_output(weights, x, h, c)
    h_next, c_next = unpack(impl.lstm_cell(x, h, c, *weights), 2, "lstm_cell")
    what = "lstm_cell with pre-activations of size 1e3 to 1e4 (compared with torch.nn.LSTMCell; no nan)"
    check(f"{what}: h'", h_next, expected_h)
    check(f"{what}: c'", c_next, expected_c)


def test_non_contiguous_x(impl, device, dtype):
    """``x`` a time-major view of a batch-first tensor, as a model that transposes its input passes it: ``x.view(T * B, I)`` refuses it, ``reshape`` and indexing by step do not."""
    weights = _weights(ONE, dtype, device)
    x = randn(ONE.batch, ONE.seq_len, ONE.input, seed=ONE.seed, dtype=dtype, device=device).transpose(0, 1)
    expected_output, (expected_h, expected_c) = _layer_output(weights, x, None)
    what = "lstm_forward of x given as a non-contiguous view (T, B, I)"
    output, state = unpack(impl.lstm_forward(x, *weights), 2, what)
    h_n, c_n = unpack(state, 2, f"{what}: the final state (h_n, c_n)")
    check(f"{what}: output", output, expected_output)
    check(f"{what}: h_n", h_n, expected_h)
    check(f"{what}: c_n", c_n, expected_c)


@given(case=shapes, with_hc0=st.booleans())
@example(case=ONE, with_hc0=True)
@example(case=ONE, with_hc0=False)
@example(case=EDGE, with_hc0=True)
@example(case=THIN, with_hc0=True)
def test_lstm_forward(impl, device, dtype, case, with_hc0):
    weights = _weights(case, dtype, device)
    x = randn(case.seq_len, case.batch, case.input, seed=case.seed, dtype=dtype, device=device)
    hc0 = None
    if with_hc0:
        hc0 = (randn(1, case.batch, case.hidden, seed=case.seed + 1, dtype=dtype, device=device),
               randn(1, case.batch, case.hidden, seed=case.seed + 2, dtype=dtype, device=device, scale=1.5))
    expected_output, (expected_h, expected_c) = _layer_output(weights, x, hc0)
    what = f"lstm_forward(hc0={'given' if with_hc0 else 'None'}, compared with torch.nn.LSTM)"
    output, state = unpack(impl.lstm_forward(x, *weights, hc0=hc0), 2, what)
    h_n, c_n = unpack(state, 2, f"{what}: the final state (h_n, c_n)")
    check(f"{what}: output, every step's hidden state (T, B, H)", output, expected_output)
    check(f"{what}: h_n, the last hidden state (1, B, H)", h_n, expected_h)
    check(f"{what}: c_n, the last cell state (1, B, H)", c_n, expected_c)


@given(case=shapes)
@example(case=ONE)
@example(case=THIN)
def test_lstm_cell_backward(impl, device, dtype, case):
    _check_cell_backward(impl, device, dtype, case, 1.0, "lstm_cell_backward (compared with autograd on torch.nn.LSTMCell)")


def test_lstm_cell_backward_saturated(impl, device, dtype):
    """Pre-activations in the thousands: the gates' derivatives are 0, not nan (a backward that
    recomputes the gates with exp written out overflows)."""
    _check_cell_backward(impl, device, dtype, ONE, 1e4, "lstm_cell_backward with pre-activations of size 1e3 "
                         "to 1e4 (compared with autograd on torch.nn.LSTMCell; no nan)")


def _check_cell_backward(impl, device, dtype, case, x_scale, what):
    weights = _weights(case, dtype, device)
    x, h, c = _step_inputs(case, dtype, device)
    x = x * x_scale
    d_h_next = randn(case.batch, case.hidden, seed=case.seed + 3, dtype=dtype, device=device)
    d_c_next = randn(case.batch, case.hidden, seed=case.seed + 4, dtype=dtype, device=device)
    expected = _cell_backward(weights, x, h, c, d_h_next, d_c_next)
    grads = unpack(impl.lstm_cell_backward(x, h, c, *weights, d_h_next, d_c_next), 7, "lstm_cell_backward")
    inputs = dict(zip(("x", "h", "c", "W_ih", "W_hh", "b_ih", "b_hh"), (x, h, c, *weights)))
    with forward_or_backward(impl, "lstm_cell", _lstm_cell_reference, inputs, dict(zip(inputs, grads)),
                             (d_h_next, d_c_next)):
        _check_all(what, GRADS, grads, expected)


@reference
def _cell_backward(weights, x, h, c, d_h_next, d_c_next):
    """The gradients of ``sum(h' * d_h_next) + sum(c' * d_c_next)`` through ``torch.nn.LSTMCell``
    holding ``weights``: ``x``, ``h``, ``c``, then every weight."""
    cell = _torch_cell(weights, x.dtype, x.device)
    leaves = [t.detach().requires_grad_(True) for t in (x, h, c)]
    h_next, c_next = cell(leaves[0], (leaves[1], leaves[2]))
    loss = (h_next * d_h_next).sum() + (c_next * d_c_next).sum()
    return torch.autograd.grad(loss, [*leaves, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh])


def _lstm_cell_reference(x, h, c, W_ih, W_hh, b_ih, b_hh):
    return torch.lstm_cell(x, (h, c), W_ih, W_hh, b_ih, b_hh)


_PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
_NAMES = ("W_ih", "W_hh", "b_ih", "b_hh")


@given(case=shapes)
@example(case=ONE)
def test_lstm_cell_gradients(impl, device, dtype, case):
    weights = _weights(case, dtype, device)
    x, h, c = _step_inputs(case, dtype, device)
    outs, d_outs, expected = _cell_gradients(weights, x, h, c, case.seed + 20)
    check_gradients(impl, "lstm_cell", (x, h, c, *weights), {}, d_outs, outs, expected,
                    outputs=["h'", "c'"], inputs=["x", "h", "c", *_NAMES], what="lstm_cell")


def test_lstm_cell_gradients_saturated(impl, device, dtype):
    """Pre-activations in the thousands: the gates are 0 or 1 and their derivatives 0. A sigmoid
    written as ``1 / (1 + exp(-u))`` (or tanh as ``2 sigmoid(2u) - 1``) has the right values, but
    autograd through it gives ``0 * inf = nan``."""
    weights = _weights(ONE, dtype, device)
    x, h, c = _step_inputs(ONE, dtype, device)
    x = x * 1e4
    outs, d_outs, expected = _cell_gradients(weights, x, h, c, ONE.seed + 20)
    check_gradients(impl, "lstm_cell", (x, h, c, *weights), {}, d_outs, outs, expected,
                    outputs=["h'", "c'"], inputs=["x", "h", "c", *_NAMES],
                    what="lstm_cell with pre-activations of size 1e3 to 1e4 (the gates saturate: gradients 0, no nan)")


@reference
def _cell_gradients(weights, x, h, c, seed):
    """``torch.nn.LSTMCell`` holding ``weights``: ``[h', c']``, upstream gradients drawn from ``seed``,
    and the gradients of ``x``, ``h``, ``c`` and every weight."""
    cell = _torch_cell(weights, x.dtype, x.device)
    leaves = [t.detach().requires_grad_(True) for t in (x, h, c)]
    outs = cell(leaves[0], (leaves[1], leaves[2]))
    d_outs = upstream(outs, seed)
    return [o.detach() for o in outs], d_outs, reference_grads(outs, [*leaves, *(getattr(cell, n) for n in _PARAMS)], d_outs)


@given(case=shapes, with_hc0=st.booleans())
@example(case=ONE, with_hc0=True)
@example(case=ONE, with_hc0=False)
def test_lstm_forward_gradients(impl, device, dtype, case, with_hc0):
    weights = _weights(case, dtype, device)
    x = randn(case.seq_len, case.batch, case.input, seed=case.seed, dtype=dtype, device=device)
    states = [randn(1, case.batch, case.hidden, seed=case.seed + 1, dtype=dtype, device=device),
              randn(1, case.batch, case.hidden, seed=case.seed + 2, dtype=dtype, device=device, scale=1.5)]
    outs, d_outs, expected = _layer_gradients(weights, x, states if with_hc0 else None, case.seed + 20)
    kwargs = {"hc0": tuple(states)} if with_hc0 else {}
    what = f"lstm_forward(hc0={'given' if with_hc0 else 'None'})"
    check_gradients(impl, "lstm_forward", (x, *weights), kwargs, d_outs, outs, expected,
                    outputs=["output", "h_n", "c_n"], inputs=["x", *_NAMES, *(["h0", "c0"] if with_hc0 else [])],
                    what=what)


@reference
def _layer_gradients(weights, x, states, seed):
    """A one-layer ``torch.nn.LSTM`` holding ``weights``: ``[output, h_n, c_n]``, upstream gradients
    drawn from ``seed``, and the gradients in the order of the arguments: ``x``, every weight, then
    ``h0`` and ``c0`` when ``states`` are given."""
    H = weights[1].shape[1]
    module = _load(torch.nn.LSTM(x.shape[-1], H).to(device=x.device, dtype=x.dtype), weights, suffix="_l0")
    leaves = [t.detach().requires_grad_(True) for t in (x, *(states or []))]
    output, (h_n, c_n) = module(leaves[0], tuple(leaves[1:]) if states is not None else None)
    outs = [output, h_n, c_n]
    d_outs = upstream(outs, seed)
    params = [getattr(module, n + "_l0") for n in _PARAMS]
    wrt = [leaves[0], *params, *leaves[1:]]
    return [o.detach() for o in outs], d_outs, reference_grads(outs, wrt, d_outs)


def _device_case(fn, with_hc0=False):
    weights = _weights(ONE, torch.float32, "cpu")
    x, h, c = _step_inputs(ONE, torch.float32, "cpu")
    if fn == "lstm_gates":
        return (x, h, *weights), {}
    if fn == "lstm_cell":
        return (x, h, c, *weights), {}
    if fn == "lstm_cell_backward":
        return (x, h, c, *weights, h, c), {}
    xs = randn(ONE.seq_len, ONE.batch, ONE.input, seed=0, dtype=torch.float32)
    return (xs, *weights), ({"hc0": (h.unsqueeze(0), c.unsqueeze(0))} if with_hc0 else {})


# The device pass (tests/devices.py): every input on the meta device. Zero states made without
# device= (hc0=None) are the usual culprit.
DEVICE_CASES = {
    "lstm_gates": lambda: _device_case("lstm_gates"),
    "lstm_cell": lambda: _device_case("lstm_cell"),
    "lstm_forward(hc0=None)": lambda: _device_case("lstm_forward"),
    "lstm_forward(hc0)": lambda: _device_case("lstm_forward", with_hc0=True),
    "lstm_cell_backward": lambda: _device_case("lstm_cell_backward"),
}


@pytest.mark.gated  # device handling counts as far as the topic's values are right
@pytest.mark.parametrize("case", DEVICE_CASES)
def test_device_propagation(impl, case):
    args, kwargs = DEVICE_CASES[case]()
    check_devices(impl, case.split("(")[0], *args, **kwargs)
