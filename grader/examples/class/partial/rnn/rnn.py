"""A vanilla (Elman) recurrent network, forward only, in the weight layout of ``torch.nn.RNN``.

Reference solution. The stub in ``exercises/rnn/rnn.py`` explains the math and the shapes.
"""
import torch


def rnn_cell(x_t, h_prev, W_ih, W_hh, b_ih, b_hh):
    """One step: ``tanh(x_t W_ih^T + b_ih + h_prev W_hh^T + b_hh)``."""
    return torch.tanh(x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh)


def rnn_forward(x, W_ih, W_hh, b_ih, b_hh, h0=None, batch_first=False):
    """One layer over a whole sequence: ``(output, h_n)``."""
    if batch_first:
        x = x.transpose(0, 1)  # (B, T, I) -> (T, B, I)
    hidden = W_hh.shape[0]
    h = x.new_zeros(x.shape[1], hidden)
    outputs = []
    for t in range(x.shape[0]):
        h = rnn_cell(x[t], h, W_ih, W_hh, b_ih, b_hh)
        outputs.append(h)
    output = torch.stack(outputs)
    if batch_first:
        output = output.transpose(0, 1)
    return output, h.unsqueeze(0)  # h_n is (1, B, H) whatever batch_first says


def stacked_rnn_forward(x, weights, h0=None, batch_first=False):
    """Layers on top of each other: each layer reads the outputs of the one below."""
    layer_input, finals = x, []
    for layer, (W_ih, W_hh, b_ih, b_hh) in enumerate(weights):
        h0_layer = None if h0 is None else h0[layer:layer + 1]
        layer_input, h_n = rnn_forward(layer_input, W_ih, W_hh, b_ih, b_hh, h0_layer, batch_first)
        finals.append(h_n)
    return layer_input, torch.cat(finals)
