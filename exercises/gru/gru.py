"""A gated recurrent unit (GRU) in the layout of ``torch.nn.GRU``, and the backward of one cell
written by hand.

The GRU is the LSTM's lighter sibling: one state ``h`` instead of two, and two gates instead of
three. At every step, from the input ``x`` and the previous state ``h``:

    gi = x W_ih^T + b_ih                  (B, 3H): the input's share of the three pre-activations
    gh = h W_hh^T + b_hh                  (B, 3H): the state's share
    i_r, i_z, i_n = the three (B, H) chunks of gi, IN THIS ORDER (r, z, n); likewise h_r, h_z, h_n
    r = sigmoid(i_r + h_r)                reset gate: how much of the old state the candidate sees
    z = sigmoid(i_z + h_z)                update gate: how much of the old state to keep
    n = tanh(i_n + r * h_n)               candidate state; r multiplies h_n = (h W_hn^T + b_hn),
                                          ITS BIAS INCLUDED
    h' = (1 - z) * n + z * h              keep the old state where z is near 1

(``*`` is the elementwise product.) The output of a step is ``h'``, carried to the next step.

PyTorch's convention differs from the original GRU paper in two places that change the numbers:
the reset gate multiplies ``W_hn h + b_hn`` (the paper applies it to ``h`` before the matrix
product), and the update gate keeps the OLD state: ``h' = (1 - z) * n + z * h`` (some texts write
``z * n + (1 - z) * h``). Follow torch's, so that your weights load into ``torch.nn.GRU``.

Shapes (the layout of ``torch.nn.GRU``):
  * ``W_ih``: ``(3H, I)``, the three gates' input weights stacked as ``W_ir | W_iz | W_in`` (rows
    ``0:H`` for r, ``H:2H`` for z, ``2H:3H`` for n); ``W_hh``: ``(3H, H)``, stacked the same way;
    ``b_ih`` and ``b_hh``: ``(3H,)``. Both biases are added (and for n, they are NOT interchangeable:
    ``b_hn`` is inside ``r * (...)``, ``b_in`` is outside);
  * ``x``: ``(T, B, I)``, time first, or ``(B, T, I)`` when ``batch_first=True``;
  * ``output``: the top layer's ``h'`` of every step, ``(T, B, H)`` (``(B, T, H)`` when
    ``batch_first``); ``h0`` and ``h_n``: ``(L, B, H)`` for ``L`` layers, NEVER batch-first.

Pitfalls:
  * the gate order is ``r, z, n``, and ``n``'s hidden part is multiplied by ``r`` after its bias;
  * ``h' = (1 - z) * n + z * h``, not the other way round;
  * in a stack, layer ``l > 0`` reads the outputs of layer ``l - 1`` and starts from ``h0[l]``;
  * ``batch_first``: ``transpose``, not ``reshape``; ``h_n`` stays ``(L, B, H)``;
  * work on the device and dtype of the inputs (``x.new_zeros(...)``), no ``.cpu()``, no numpy;
    do not change any input in place;
  * ``x`` may be a view (a batch-first tensor transposed by the caller): index it by step or use
    ``reshape``; ``x.view(T * B, I)`` fails on it.

The backward of one cell. Given ``d_h_next``, the gradient of the loss with respect to ``h'``:
  * ``h'`` depends on ``h`` twice: directly through ``z * h``, and through the matrix product ``gh``;
    add both into ``dh``;
  * ``tanh'(u) = 1 - tanh(u)^2``, ``sigmoid'(u) = s * (1 - s)``: reuse ``n``, ``r``, ``z``;
  * the pre-activation gradients go back side by side, in the order r, z, n. For ``gi`` the n part is
    the gradient of ``i_n + r * h_n`` with respect to ``i_n``; for ``gh`` it is with respect to
    ``h_n``, so it is multiplied by ``r``: ``db_ih`` and ``db_hh`` DIFFER in their n part;
  * from ``d_gi`` (``(B, 3H)``) and ``d_gh``: ``dx = d_gi W_ih``, ``dW_ih = d_gi^T x``, the biases
    get the sums over the batch; the same for ``gh`` with ``h``.

Not allowed here (you write them): ``torch.nn.GRU``, ``torch.nn.GRUCell``, ``torch.gru``,
``torch.gru_cell`` and their relatives; in ``gru_cell_backward``, autograd (``torch.autograd``,
``.backward()``, ``torch.func``). ``torch.sigmoid``, ``torch.tanh``, ``@``, ``chunk``, ``torch.cat``
and ``torch.stack`` are fine.
Guide: GUIDE.md (English), GUIDE.zh.md (中文).
"""
import torch


def gru_cell(x, h, W_ih, W_hh, b_ih, b_hh):
    """One step of the recurrence, like ``torch.nn.GRUCell``.

    Args:
        x: ``(B, I)`` input at this step.
        h: ``(B, H)`` state of the previous step.
        W_ih: ``(3H, I)``; W_hh: ``(3H, H)``; b_ih, b_hh: ``(3H,)``, gates in the order r, z, n.

    Returns:
        ``h'``: ``(B, H)``.

    Pitfall: ``torch.sigmoid`` and ``torch.tanh`` are exact for any input; written out with ``exp``
    they overflow to ``nan`` once a pre-activation reaches a few hundred, in their values or (as
    ``1 / (1 + exp(-u))``) in the gradients autograd computes through them.
    """
    raise NotImplementedError


def gru_forward(x, weights, h0=None, batch_first=False):
    """``L`` GRU layers on top of each other over a whole sequence, like
    ``torch.nn.GRU(I, H, num_layers=L, batch_first=...)``.

    Args:
        x: ``(T, B, I)``, or ``(B, T, I)`` when ``batch_first``.
        weights: a list of ``L`` tuples ``(W_ih, W_hh, b_ih, b_hh)``: layer 0's ``W_ih`` is ``(3H, I)``,
            the later layers' ``(3H, H)``.
        h0: ``(L, B, H)``: ``h0[l]`` is layer ``l``'s initial state; None for zeros.

    Returns:
        ``(output, h_n)``: the top layer's state at every step, ``(T, B, H)`` (``(B, T, H)`` when
        ``batch_first``), and every layer's last state, ``(L, B, H)``. Differentiable: autograd
        through your code must give torch's gradients for ``x``, ``h0`` and every weight.
    """
    raise NotImplementedError


def gru_cell_backward(x, h, W_ih, W_hh, b_ih, b_hh, d_h_next):
    """The gradients of one cell, without autograd.

    Args:
        x, h, W_ih, W_hh, b_ih, b_hh: as in ``gru_cell``.
        d_h_next: ``(B, H)``, the gradient of the loss with respect to ``h'``.

    Returns:
        ``(dx, dh, dW_ih, dW_hh, db_ih, db_hh)``, each shaped like its input.
    """
    raise NotImplementedError
