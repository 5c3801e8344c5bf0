"""A long short-term memory (LSTM) layer in the layout of ``torch.nn.LSTM``, and the backward of one
cell written by hand.

A vanilla RNN squeezes everything it remembers through ``tanh`` at every step, and its gradients
shrink (or blow up) over long sequences. An LSTM keeps a second state, the cell ``c``, that is
updated additively and controlled by gates. At every step, from the input ``x`` and the previous
state ``(h, c)``:

    z = x W_ih^T + b_ih + h W_hh^T + b_hh          (B, 4H): four pre-activations side by side
    z_i, z_f, z_g, z_o = the four (B, H) chunks of z, IN THIS ORDER
    i = sigmoid(z_i)      input gate:  how much of the candidate to write
    f = sigmoid(z_f)      forget gate: how much of the old cell to keep
    g = tanh(z_g)         candidate values to write (tanh, not sigmoid: they can be negative)
    o = sigmoid(z_o)      output gate: how much of the cell to show
    c' = f * c + i * g
    h' = o * tanh(c')

(``*`` is the elementwise product.) The output of a step is ``h'``; ``(h', c')`` is carried to the next.

Shapes (the layout of ``torch.nn.LSTM``, so that your weights load into torch and back):
  * ``W_ih``: ``(4H, I)``, the four gates' input weights stacked as ``W_ii | W_if | W_ig | W_io``
    (rows ``0:H`` for i, ``H:2H`` for f, ``2H:3H`` for g, ``3H:4H`` for o); ``W_hh``: ``(4H, H)``,
    stacked the same way; ``b_ih`` and ``b_hh``: ``(4H,)``. Both biases are added.
  * ``x``: ``(T, B, I)``, time first; ``output``: every step's ``h'``, ``(T, B, H)``.
  * ``hc0 = (h0, c0)`` and ``(h_n, c_n)``: each ``(1, B, H)`` (``num_layers = 1``), as in torch.

Pitfalls:
  * the gate order is PyTorch's ``i, f, g, o``. Other texts (CS231n, for one) use ``i, f, o, g``
    with weights laid out ``(I, 4H)``: with random weights every order "works", only torch's matches;
  * ``g`` goes through ``tanh``, the three gates through ``sigmoid``;
  * ``h' = o * tanh(c')``: the cell state is squashed before it is shown, but ``c'`` itself is
    carried to the next step (and returned) as it is, without ``tanh``;
  * the initial cell state ``c0`` counts as much as ``h0``; zeros for both when ``hc0`` is None;
  * work on the device and dtype of the inputs (``x.new_zeros(...)``), no ``.cpu()``, no numpy;
  * ``x`` may be a view (a batch-first tensor transposed by the caller): index it by step or use
    ``reshape``; ``x.view(T * B, I)`` fails on it;
  * you train through ``lstm_cell`` and ``lstm_forward``: keep them differentiable (no ``.detach()``,
    ``torch.no_grad()`` or ``.item()`` on the way); the grader compares the gradients of every input
    and weight (autograd is forbidden in your code, not in the grader's);
  * do not change the tensors you are given in place (no ``c.mul_(f)``, no ``d_c_next +=``);
  * each gradient is a tensor of its own: ``db_ih`` and ``db_hh`` hold the same values, but
    ``return ..., db, db`` would let an optimizer's in-place step on one change the other
    (``db, db.clone()``; the graded suite checks it).

The backward of one cell. Given the gradient ``d_h_next`` of the loss with respect to ``h'`` and
``d_c_next`` with respect to ``c'`` (what the next step sends back along the cell state), work back
through the formulas above:
  * ``c'`` receives gradient from two places: through ``h' = o * tanh(c')``, and ``d_c_next``
    directly. Add them before going further. ``tanh'(u) = 1 - tanh(u)^2``;
  * ``sigmoid'(u) = s * (1 - s)`` with ``s = sigmoid(u)``: reuse the gate values;
  * the gradients of the four pre-activations go back side by side into ``dz`` (``(B, 4H)``, same
    order i, f, g, o); from ``dz``, the matrix products give ``dx``, ``dh``, ``dW_ih``, ``dW_hh``; the
    biases get ``dz`` summed over the batch (both biases the same);
  * ``dc`` (towards the previous cell state) only passes the forget gate.

Not allowed here (you write them): ``torch.nn.LSTM``, ``torch.nn.LSTMCell``, ``torch.lstm``,
``torch.lstm_cell`` and their relatives; in all functions, autograd (``torch.autograd``,
``.backward()``, ``torch.func``): the backward is the point of the exercise. Any other torch function
(``torch.sigmoid``, ``torch.tanh``, ``@``, ``chunk``, ``torch.cat``, ``torch.stack``) is fine.
Guide: GUIDE.md (English), GUIDE.zh.md (中文).
"""
import torch


def lstm_gates(x, h, W_ih, W_hh, b_ih, b_hh):
    """The four gate activations of one step, for inspection.

    Args:
        x: ``(B, I)`` input at this step.
        h: ``(B, H)`` hidden state of the previous step.
        W_ih: ``(4H, I)``; W_hh: ``(4H, H)``; b_ih, b_hh: ``(4H,)``, laid out i | f | g | o.

    Returns:
        ``(i, f, g, o)``, each ``(B, H)``: ``sigmoid``, ``sigmoid``, ``tanh``, ``sigmoid`` of the four
        chunks of ``x W_ih^T + b_ih + h W_hh^T + b_hh``.

    Pitfall: ``torch.sigmoid`` and ``torch.tanh`` are exact for any input; written out with ``exp``
    they overflow to ``nan`` once a pre-activation reaches a few hundred, in their values or (as
    ``1 / (1 + exp(-u))``) in the gradients autograd computes through them.
    """
    raise NotImplementedError


def lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh):
    """One step of the LSTM, like ``torch.nn.LSTMCell``.

    Args:
        x: ``(B, I)``; h, c: ``(B, H)`` previous hidden and cell state; weights as in ``lstm_gates``.

    Returns:
        ``(h', c')``, each ``(B, H)``: ``c' = f * c + i * g`` and ``h' = o * tanh(c')``.
    """
    raise NotImplementedError


def lstm_forward(x, W_ih, W_hh, b_ih, b_hh, hc0=None):
    """One LSTM layer over a whole sequence, like ``torch.nn.LSTM(I, H)`` (time-major).

    Args:
        x: ``(T, B, I)``.
        W_ih, W_hh, b_ih, b_hh: as in ``lstm_gates``.
        hc0: ``(h0, c0)``, each ``(1, B, H)``; None for zeros.

    Returns:
        ``(output, (h_n, c_n))``: ``output`` is every step's hidden state, ``(T, B, H)``; ``h_n`` and
        ``c_n`` are the hidden and cell state after the last step, each ``(1, B, H)``.
    """
    raise NotImplementedError


def lstm_cell_backward(x, h, c, W_ih, W_hh, b_ih, b_hh, d_h_next, d_c_next):
    """The backward of ``lstm_cell``, by hand (no autograd).

    Recompute what you need of the forward from the inputs, then apply the chain rule.

    Args:
        x, h, c, W_ih, W_hh, b_ih, b_hh: the inputs of ``lstm_cell``.
        d_h_next: ``(B, H)`` gradient of the loss with respect to ``h'``.
        d_c_next: ``(B, H)`` gradient of the loss with respect to ``c'`` that arrives from the next
            step; it adds to the part of ``c'``'s gradient that flows back through ``h'``.

    Returns:
        ``(dx, dh, dc, dW_ih, dW_hh, db_ih, db_hh)``: the gradients of the loss with respect to each
        input, each shaped like that input.
    """
    raise NotImplementedError
