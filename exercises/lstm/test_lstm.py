"""Public tests: run ``pytest exercises/lstm``. The graded suite checks much more."""
import torch

from dlkata.compare import check, unpack
from dlkata.gradcheck import check_backward
from lstm import lstm_cell, lstm_cell_backward, lstm_forward, lstm_gates

torch.manual_seed(0)
I, H, B = 3, 4, 2


def _weights():
    """``(W_ih, W_hh, b_ih, b_hh)`` in the layout of ``torch.nn.LSTM``."""
    return (0.5 * torch.randn(4 * H, I, dtype=torch.float64), 0.5 * torch.randn(4 * H, H, dtype=torch.float64),
            0.5 * torch.randn(4 * H, dtype=torch.float64), 0.5 * torch.randn(4 * H, dtype=torch.float64))


def _load(module, weights, suffix=""):
    with torch.no_grad():
        for name, w in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), weights):
            getattr(module, name + suffix).copy_(w)
    return module


def test_gates_are_the_chunks_i_f_g_o():
    W_ih, W_hh, b_ih, b_hh = _weights()
    x, h = torch.randn(B, I, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    z_i, z_f, z_g, z_o = (x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=1)
    gates = unpack(lstm_gates(x, h, W_ih, W_hh, b_ih, b_hh), 4, "lstm_gates")
    expected = torch.sigmoid(z_i), torch.sigmoid(z_f), torch.tanh(z_g), torch.sigmoid(z_o)
    for name, got, want in zip(["i = sigmoid(z_i)", "f = sigmoid(z_f)", "g = tanh(z_g)", "o = sigmoid(z_o)"],
                               gates, expected):
        check(f"lstm_gates: {name}", got, want)


def test_cell_matches_torch_on_h_and_c():
    weights = _weights()
    cell = _load(torch.nn.LSTMCell(I, H).double(), weights)
    x, h, c = torch.randn(B, I, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64), \
        torch.randn(B, H, dtype=torch.float64)
    expected_h, expected_c = cell(x, (h, c))
    h_next, c_next = unpack(lstm_cell(x, h, c, *weights), 2, "lstm_cell")
    check("lstm_cell: h'", h_next, expected_h)
    check("lstm_cell: c' (carried as it is, without tanh)", c_next, expected_c)


def test_forward_matches_torch():
    weights = _weights()
    lstm = _load(torch.nn.LSTM(I, H).double(), weights, suffix="_l0")
    x = torch.randn(5, B, I, dtype=torch.float64)
    h0, c0 = torch.randn(1, B, H, dtype=torch.float64), torch.randn(1, B, H, dtype=torch.float64)
    expected_output, (expected_h, expected_c) = lstm(x, (h0, c0))
    output, state = unpack(lstm_forward(x, *weights, hc0=(h0, c0)), 2, "lstm_forward")
    h_n, c_n = unpack(state, 2, "lstm_forward's (h_n, c_n)")
    check("lstm_forward: output", output, expected_output)
    check("lstm_forward: h_n", h_n, expected_h)
    check("lstm_forward: c_n", c_n, expected_c)


def test_forward_without_hc0_starts_from_zeros():
    weights = _weights()
    lstm = _load(torch.nn.LSTM(I, H).double(), weights, suffix="_l0")
    x = torch.randn(3, B, I, dtype=torch.float64)
    expected_output, (expected_h, expected_c) = lstm(x)
    output, state = unpack(lstm_forward(x, *weights), 2, "lstm_forward")
    h_n, c_n = unpack(state, 2, "lstm_forward's (h_n, c_n)")
    check("lstm_forward(hc0=None): output", output, expected_output)
    check("lstm_forward(hc0=None): h_n", h_n, expected_h)
    check("lstm_forward(hc0=None): c_n", c_n, expected_c)


def test_cell_backward_matches_autograd():
    weights = _weights()
    x, h, c = (torch.randn(B, n, dtype=torch.float64) for n in (I, H, H))
    d_h, d_c = torch.randn(B, H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    cell = _load(torch.nn.LSTMCell(I, H).double(), weights)
    names = ["x", "h", "c", "W_ih", "W_hh", "b_ih", "b_hh"]
    leaves = [t.clone().requires_grad_(True) for t in (x, h, c)]
    h_next, c_next = cell(leaves[0], (leaves[1], leaves[2]))
    expected = torch.autograd.grad((h_next * d_h).sum() + (c_next * d_c).sum(), [*leaves, *cell.parameters()])
    grads = unpack(lstm_cell_backward(x, h, c, *weights, d_h, d_c), 7, "lstm_cell_backward")
    inputs = dict(zip(names, (x, h, c, *weights)))

    def reference(x, h, c, W_ih, W_hh, b_ih, b_hh):
        return torch.lstm_cell(x, (h, c), W_ih, W_hh, b_ih, b_hh)

    check_backward("lstm_cell_backward", dict(zip(names, grads)), dict(zip(names, expected)),
                   forward=lstm_cell, reference=reference, inputs=inputs, d_out=(d_h, d_c),
                   own_forward="your lstm_cell")
