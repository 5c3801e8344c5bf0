"""Public tests: run ``pytest exercises/rnn``. The graded suite checks much more."""
import torch

from dlkata.compare import check, unpack
from rnn import rnn_cell, rnn_forward, stacked_rnn_forward

torch.manual_seed(0)


def _load(module, weights):
    """Copy per-layer ``(W_ih, W_hh, b_ih, b_hh)`` into a ``torch.nn.RNN``."""
    with torch.no_grad():
        for layer, (W_ih, W_hh, b_ih, b_hh) in enumerate(weights):
            getattr(module, f"weight_ih_l{layer}").copy_(W_ih)
            getattr(module, f"weight_hh_l{layer}").copy_(W_hh)
            getattr(module, f"bias_ih_l{layer}").copy_(b_ih)
            getattr(module, f"bias_hh_l{layer}").copy_(b_hh)
    return module


def _weights(I, H, layers=1):
    return [(torch.randn(H, I if l == 0 else H, dtype=torch.float64), torch.randn(H, H, dtype=torch.float64),
             torch.randn(H, dtype=torch.float64), torch.randn(H, dtype=torch.float64)) for l in range(layers)]


def test_cell_matches_torch():
    (W_ih, W_hh, b_ih, b_hh), = _weights(3, 4)
    cell = torch.nn.RNNCell(3, 4).double()
    with torch.no_grad():
        for p, w in zip((cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh), (W_ih, W_hh, b_ih, b_hh)):
            p.copy_(w)
    x_t, h = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    check("rnn_cell (compared with torch.nn.RNNCell)", rnn_cell(x_t, h, W_ih, W_hh, b_ih, b_hh), cell(x_t, h))


def test_forward_matches_torch_time_major():
    weights = _weights(3, 4)
    x, h0 = torch.randn(5, 2, 3, dtype=torch.float64), torch.randn(1, 2, 4, dtype=torch.float64)
    expected = _load(torch.nn.RNN(3, 4).double(), weights)(x, h0)
    output, h_n = unpack(rnn_forward(x, *weights[0], h0=h0), 2, "rnn_forward")
    check("rnn_forward: output", output, expected[0])
    check("rnn_forward: h_n", h_n, expected[1])


def test_forward_batch_first_without_h0():
    weights = _weights(3, 4)
    x = torch.randn(2, 5, 3, dtype=torch.float64)  # (B, T, I)
    expected = _load(torch.nn.RNN(3, 4, batch_first=True).double(), weights)(x)
    output, h_n = unpack(rnn_forward(x, *weights[0], batch_first=True), 2, "rnn_forward")
    check("rnn_forward(batch_first=True): output (B, T, H)", output, expected[0])
    check("rnn_forward(batch_first=True): h_n (1, B, H), never batch-first", h_n, expected[1])


def test_stacked_matches_torch():
    weights = _weights(3, 4, layers=2)
    x, h0 = torch.randn(5, 2, 3, dtype=torch.float64), torch.randn(2, 2, 4, dtype=torch.float64)
    expected = _load(torch.nn.RNN(3, 4, num_layers=2).double(), weights)(x, h0)
    output, h_n = unpack(stacked_rnn_forward(x, weights, h0=h0), 2, "stacked_rnn_forward")
    check("stacked_rnn_forward: output of the top layer", output, expected[0])
    check("stacked_rnn_forward: h_n, every layer's last state", h_n, expected[1])


def test_stacked_batch_first_without_h0():
    weights = _weights(3, 4, layers=3)
    x = torch.randn(2, 5, 3, dtype=torch.float64)  # (B, T, I)
    expected = _load(torch.nn.RNN(3, 4, num_layers=3, batch_first=True).double(), weights)(x)
    output, h_n = unpack(stacked_rnn_forward(x, weights, batch_first=True), 2, "stacked_rnn_forward")
    check("stacked_rnn_forward(batch_first=True): output (B, T, H)", output, expected[0])
    check("stacked_rnn_forward(batch_first=True): h_n (L, B, H), never batch-first", h_n, expected[1])
