"""A long short-term memory (LSTM) layer in the layout of ``torch.nn.LSTM``, and the manual
backward of one cell.

Reference solution. The stub in ``exercises/lstm/lstm.py`` explains the math.
"""
import torch


def lstm_gates(x, h, W_ih, W_hh, b_ih, b_hh):
    """The four gate activations ``(i, f, g, o)``, each ``(B, H)``."""
    z = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh  # (B, 4H): the pre-activations of i, f, g, o side by side
    i, f, g, o = z.chunk(4, dim=1)
    return torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)


def lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh):
    """One step: ``(h', c')``."""
    i, f, g, o = lstm_gates(x, h, W_ih, W_hh, b_ih, b_hh)
    c_next = f * c + i * g
    h_next = o * torch.tanh(c_next)
    return h_next, c_next


def lstm_forward(x, W_ih, W_hh, b_ih, b_hh, hc0=None):
    """A whole time-major sequence: ``(output, (h_n, c_n))``."""
    hidden = W_hh.shape[1]
    if hc0 is None:
        h = c = x.new_zeros(x.shape[1], hidden)
    else:
        h, c = hc0[0][0], hc0[1][0]
    outputs = []
    for x_t in x:
        h, c = lstm_cell(x_t, h, c, W_ih, W_hh, b_ih, b_hh)
        outputs.append(h)
    return torch.stack(outputs), (h.unsqueeze(0), c.unsqueeze(0))


def lstm_cell_backward(x, h, c, W_ih, W_hh, b_ih, b_hh, d_h_next, d_c_next):
    """Gradients of one cell: ``(dx, dh, dc, dW_ih, dW_hh, db_ih, db_hh)``."""
    i, f, g, o = lstm_gates(x, h, W_ih, W_hh, b_ih, b_hh)
    tanh_c = torch.tanh(f * c + i * g)  # tanh of the new cell state
    # The new cell state gets gradient through h' = o * tanh(c') and, directly, from the next step.
    d_c_new = d_h_next * o * (1 - tanh_c ** 2) + d_c_next
    d_i, d_f, d_g, d_o = d_c_new * g, d_c_new * c, d_c_new * i, d_h_next * tanh_c
    # Through the nonlinearities to the pre-activations: sigmoid' = s (1 - s), tanh' = 1 - t^2.
    dz = torch.cat([d_i * i * (1 - i), d_f * f * (1 - f), d_g * (1 - g * g), d_o * o * (1 - o)], dim=1)
    dx = dz @ W_ih
    dh = dz @ W_hh
    dc = d_c_new * f
    dW_ih = dz.T @ x
    dW_hh = dz.T @ h
    db = dz.sum(dim=0)
    return dx, dh, dc, dW_ih, dW_hh, db, db.clone()
