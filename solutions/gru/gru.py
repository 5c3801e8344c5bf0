"""A gated recurrent unit (GRU) in the layout of ``torch.nn.GRU``, and the manual backward of one
cell.

Reference solution. The stub in ``exercises/gru/gru.py`` explains the math.
"""
import torch


def _gates(x, h, W_ih, W_hh, b_ih, b_hh):
    """``(r, z, n, h_n)``: the two gates, the candidate and the state's share of n, each ``(B, H)``."""
    i_r, i_z, i_n = (x @ W_ih.T + b_ih).chunk(3, dim=1)  # the input's share of r, z, n
    h_r, h_z, h_n = (h @ W_hh.T + b_hh).chunk(3, dim=1)  # the state's share
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)  # the reset gate scales W_hn h + b_hn, bias included
    return r, z, n, h_n


def gru_cell(x, h, W_ih, W_hh, b_ih, b_hh):
    """One step: ``h'``, ``(B, H)``."""
    _, z, n, _ = _gates(x, h, W_ih, W_hh, b_ih, b_hh)
    return (1 - z) * n + z * h


def gru_forward(x, weights, h0=None, batch_first=False):
    """``L`` stacked layers over a sequence: ``(output, h_n)``."""
    if batch_first:
        x = x.transpose(0, 1)  # (B, T, I) -> (T, B, I)
    hidden = weights[0][1].shape[1]
    layer_input, finals = x, []
    for layer, (W_ih, W_hh, b_ih, b_hh) in enumerate(weights):
        h = x.new_zeros(x.shape[1], hidden) if h0 is None else h0[layer]
        outputs = []
        for x_t in layer_input:
            h = gru_cell(x_t, h, W_ih, W_hh, b_ih, b_hh)
            outputs.append(h)
        layer_input = torch.stack(outputs)
        finals.append(h)
    output = layer_input.transpose(0, 1) if batch_first else layer_input
    return output, torch.stack(finals)


def gru_cell_backward(x, h, W_ih, W_hh, b_ih, b_hh, d_h_next):
    """Gradients of one cell: ``(dx, dh, dW_ih, dW_hh, db_ih, db_hh)``."""
    r, z, n, h_n = _gates(x, h, W_ih, W_hh, b_ih, b_hh)
    # h' = (1 - z) * n + z * h
    d_n = d_h_next * (1 - z)
    d_z = d_h_next * (h - n)
    d_h = d_h_next * z
    d_a_n = d_n * (1 - n * n)  # through tanh: the pre-activation i_n + r * h_n
    d_r = d_a_n * h_n
    d_a_z = d_z * z * (1 - z)  # through the sigmoids
    d_a_r = d_r * r * (1 - r)
    d_gi = torch.cat([d_a_r, d_a_z, d_a_n], dim=1)         # i_r, i_z, i_n enter their sums as they are
    d_gh = torch.cat([d_a_r, d_a_z, d_a_n * r], dim=1)     # h_n enters as r * h_n
    dx = d_gi @ W_ih
    dh = d_gh @ W_hh + d_h
    return dx, dh, d_gi.T @ x, d_gh.T @ h, d_gi.sum(dim=0), d_gh.sum(dim=0)
