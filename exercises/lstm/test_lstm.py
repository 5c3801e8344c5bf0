"""Public tests: run ``pytest exercises/lstm``. The graded suite checks much more."""
import torch

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
    i, f, g, o = lstm_gates(x, h, W_ih, W_hh, b_ih, b_hh)
    torch.testing.assert_close(i, torch.sigmoid(z_i))
    torch.testing.assert_close(f, torch.sigmoid(z_f))
    torch.testing.assert_close(g, torch.tanh(z_g))
    torch.testing.assert_close(o, torch.sigmoid(z_o))


def test_cell_matches_torch_on_h_and_c():
    weights = _weights()
    cell = _load(torch.nn.LSTMCell(I, H).double(), weights)
    x, h, c = torch.randn(B, I, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64), \
        torch.randn(B, H, dtype=torch.float64)
    expected_h, expected_c = cell(x, (h, c))
    h_next, c_next = lstm_cell(x, h, c, *weights)
    torch.testing.assert_close(h_next, expected_h)
    torch.testing.assert_close(c_next, expected_c)


def test_forward_matches_torch():
    weights = _weights()
    lstm = _load(torch.nn.LSTM(I, H).double(), weights, suffix="_l0")
    x = torch.randn(5, B, I, dtype=torch.float64)
    h0, c0 = torch.randn(1, B, H, dtype=torch.float64), torch.randn(1, B, H, dtype=torch.float64)
    expected_output, (expected_h, expected_c) = lstm(x, (h0, c0))
    output, (h_n, c_n) = lstm_forward(x, *weights, hc0=(h0, c0))
    torch.testing.assert_close(output, expected_output)
    torch.testing.assert_close(h_n, expected_h)
    torch.testing.assert_close(c_n, expected_c)


def test_cell_backward_matches_autograd():
    weights = _weights()
    x, h, c = (torch.randn(B, n, dtype=torch.float64, requires_grad=True) for n in (I, H, H))
    d_h, d_c = torch.randn(B, H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    cell = _load(torch.nn.LSTMCell(I, H).double(), weights)
    h_next, c_next = cell(x, (h, c))
    loss = (h_next * d_h).sum() + (c_next * d_c).sum()
    expected = torch.autograd.grad(loss, [x, h, c, *cell.parameters()])
    grads = lstm_cell_backward(x.detach(), h.detach(), c.detach(), *weights, d_h, d_c)
    for name, got, want in zip(["x", "h", "c", "W_ih", "W_hh", "b_ih", "b_hh"], grads, expected):
        torch.testing.assert_close(got, want, msg=lambda m, name=name: f"gradient of {name}: {m}")
