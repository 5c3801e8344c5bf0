"""Hidden suite for lstm: the learner's gates, cell and layer against the chunks of torch's
pre-activations, ``torch.nn.LSTMCell`` and ``torch.nn.LSTM`` loaded with the same weights, and the
manual backward of one cell against ``torch.autograd.grad``."""
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from tests.compare import Mismatch, check, unpack
from tests.diagnosis import forward_or_backward
from tests.strategies import Case, cases, dims, randn, seeds

# input != hidden, so that a weight used without its transpose cannot go unnoticed.
shapes = cases(batch=dims(1, 3), seq_len=dims(1, 4), input=dims(1, 4), hidden=dims(2, 4), seed=seeds()) \
    .filter(lambda c: c.input != c.hidden)

# Explicit case, run first: batch and time of different lengths, both larger than 1.
ONE = Case(batch=2, seq_len=3, input=3, hidden=4, seed=1)

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
def test_lstm_cell(impl, device, dtype, case):
    weights = _weights(case, dtype, device)
    x, h, c = _step_inputs(case, dtype, device)
    with torch.no_grad():
        expected_h, expected_c = _torch_cell(weights, dtype, device)(x, (h, c))
    h_next, c_next = unpack(impl.lstm_cell(x, h, c, *weights), 2, "lstm_cell")
    check("lstm_cell (compared with torch.nn.LSTMCell): h', the new hidden state", h_next, expected_h)
    check("lstm_cell (compared with torch.nn.LSTMCell): c', the new cell state", c_next, expected_c)


@given(case=shapes, with_hc0=st.booleans())
@example(case=ONE, with_hc0=True)
@example(case=ONE, with_hc0=False)
def test_lstm_forward(impl, device, dtype, case, with_hc0):
    weights = _weights(case, dtype, device)
    x = randn(case.seq_len, case.batch, case.input, seed=case.seed, dtype=dtype, device=device)
    hc0 = None
    if with_hc0:
        hc0 = (randn(1, case.batch, case.hidden, seed=case.seed + 1, dtype=dtype, device=device),
               randn(1, case.batch, case.hidden, seed=case.seed + 2, dtype=dtype, device=device, scale=1.5))
    module = _load(torch.nn.LSTM(case.input, case.hidden).to(device=device, dtype=dtype), weights, suffix="_l0")
    with torch.no_grad():
        expected_output, (expected_h, expected_c) = module(x, hc0)
    what = f"lstm_forward(hc0={'given' if with_hc0 else 'None'}, compared with torch.nn.LSTM)"
    output, state = unpack(impl.lstm_forward(x, *weights, hc0=hc0), 2, what)
    h_n, c_n = unpack(state, 2, f"{what}: the final state (h_n, c_n)")
    check(f"{what}: output, every step's hidden state (T, B, H)", output, expected_output)
    check(f"{what}: h_n, the last hidden state (1, B, H)", h_n, expected_h)
    check(f"{what}: c_n, the last cell state (1, B, H)", c_n, expected_c)


@given(case=shapes)
@example(case=ONE)
def test_lstm_cell_backward(impl, device, dtype, case):
    weights = _weights(case, dtype, device)
    x, h, c = _step_inputs(case, dtype, device)
    d_h_next = randn(case.batch, case.hidden, seed=case.seed + 3, dtype=dtype, device=device)
    d_c_next = randn(case.batch, case.hidden, seed=case.seed + 4, dtype=dtype, device=device)
    cell = _torch_cell(weights, dtype, device)
    leaves = [t.detach().requires_grad_(True) for t in (x, h, c)]
    h_next, c_next = cell(leaves[0], (leaves[1], leaves[2]))
    loss = (h_next * d_h_next).sum() + (c_next * d_c_next).sum()
    expected = torch.autograd.grad(loss, [*leaves, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh])
    grads = unpack(impl.lstm_cell_backward(x, h, c, *weights, d_h_next, d_c_next), 7, "lstm_cell_backward")
    inputs = dict(zip(("x", "h", "c", "W_ih", "W_hh", "b_ih", "b_hh"), (x, h, c, *weights)))
    with forward_or_backward(impl, "lstm_cell", _lstm_cell_reference, inputs, dict(zip(inputs, grads)),
                             (d_h_next, d_c_next)):
        _check_all("lstm_cell_backward (compared with autograd on torch.nn.LSTMCell)", GRADS, grads, expected)


def _lstm_cell_reference(x, h, c, W_ih, W_hh, b_ih, b_hh):
    return torch.lstm_cell(x, (h, c), W_ih, W_hh, b_ih, b_hh)
