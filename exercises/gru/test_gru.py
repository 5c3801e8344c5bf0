"""Public tests: run ``pytest exercises/gru``. The graded suite checks much more."""
import torch

from gru import gru_cell, gru_cell_backward, gru_forward

torch.manual_seed(0)
I, H, B, T = 3, 4, 2, 5


def _weights(layers=1):
    return [tuple(0.5 * torch.randn(*s, dtype=torch.float64)
                  for s in ((3 * H, I if l == 0 else H), (3 * H, H), (3 * H,), (3 * H,))) for l in range(layers)]


def _load(module, weights, suffix=lambda layer: ""):
    with torch.no_grad():
        for layer, ws in enumerate(weights):
            for name, w in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), ws):
                getattr(module, name + suffix(layer)).copy_(w)
    return module


def test_cell_matches_torch():
    weights = _weights()
    cell = _load(torch.nn.GRUCell(I, H).double(), weights)
    x, h = torch.randn(B, I, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    torch.testing.assert_close(gru_cell(x, h, *weights[0]), cell(x, h))


def test_stacked_batch_first_matches_torch():
    weights = _weights(layers=2)
    module = _load(torch.nn.GRU(I, H, num_layers=2, batch_first=True).double(), weights, lambda l: f"_l{l}")
    x, h0 = torch.randn(B, T, I, dtype=torch.float64), torch.randn(2, B, H, dtype=torch.float64)
    expected_output, expected_h_n = module(x, h0)
    output, h_n = gru_forward(x, weights, h0=h0, batch_first=True)
    torch.testing.assert_close(output, expected_output)
    torch.testing.assert_close(h_n, expected_h_n)  # (L, B, H): never batch-first
    output, h_n = gru_forward(x.transpose(0, 1), weights[:1])  # time-major, no h0: zeros
    expected = _load(torch.nn.GRU(I, H).double(), weights[:1], lambda l: f"_l{l}")(x.transpose(0, 1))
    torch.testing.assert_close(output, expected[0])
    torch.testing.assert_close(h_n, expected[1])


def test_cell_backward_matches_autograd():
    weights = _weights()
    cell = _load(torch.nn.GRUCell(I, H).double(), weights)
    x, h = torch.randn(B, I, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    d_h_next = torch.randn(B, H, dtype=torch.float64)
    leaves = [t.clone().requires_grad_(True) for t in (x, h)]
    expected = torch.autograd.grad((cell(*leaves) * d_h_next).sum(),
                                   [*leaves, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh])
    for got, want in zip(gru_cell_backward(x, h, *weights[0], d_h_next), expected):
        torch.testing.assert_close(got, want)
