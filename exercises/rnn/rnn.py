"""A vanilla (Elman) recurrent network, forward only, in the layout of ``torch.nn.RNN``.

A recurrent network reads a sequence one step at a time and keeps a hidden state ``h`` that
summarizes what it has seen so far. At every step ``t``:

    h_t = tanh( x_t W_ih^T + b_ih  +  h_{t-1} W_hh^T + b_hh )

and the output of step ``t`` is ``h_t`` itself. The same weights are used at every step.

Shapes (the layout of ``torch.nn.RNN``, so that your weights load into torch and back):
  * ``W_ih``: ``(H, I)`` maps an input of size ``I`` to the hidden size ``H``; ``W_hh``: ``(H, H)``;
    ``b_ih`` and ``b_hh``: ``(H,)``. Both biases are added (torch keeps two, one would do).
  * ``x``: ``(T, B, I)``, time first ("time-major"), or ``(B, T, I)`` when ``batch_first=True``.
  * ``output``: every step's hidden state, ``(T, B, H)``, or ``(B, T, H)`` when ``batch_first=True``.
  * ``h0`` and ``h_n``: ``(num_layers, B, H)``: ``(1, B, H)`` for one layer. As in torch, these are
    NEVER batch-first, even when ``batch_first=True``. ``h0=None`` means a zero initial state.

Pitfalls:
  * ``W_ih`` is ``(H, I)``: multiply by its transpose. With ``I == H`` (and always for ``W_hh``) the
    shapes work out either way, only the values are wrong;
  * ``batch_first``: turn ``(B, T, I)`` into ``(T, B, I)`` with ``transpose``, not ``reshape``
    (``reshape`` keeps the memory order and mixes batch elements and steps); turn the output back;
  * ``h_n`` is the state after the LAST step; ``output[-1]`` (time-major) equals it for one layer;
  * in a stack, layer ``l > 0`` reads the outputs of layer ``l - 1`` (its ``W_ih`` is ``(H, H)``), and
    starts from its own initial state ``h0[l]``;
  * work on the device and dtype of the inputs (``torch.zeros(..., dtype=x.dtype, device=x.device)``
    or ``x.new_zeros(...)``; no ``.cpu()``, no tensors built from Python lists);
  * you train through these forwards: keep them differentiable (no ``.detach()``, ``torch.no_grad()``
    or ``.item()`` on the way); the grader compares the gradients of every input and weight;
  * do not change the tensors you are given in place (no ``x.transpose_``, no writing into ``h0``);
  * ``x`` may be a view (a batch-first tensor transposed by the caller): index it by step or use
    ``reshape``; ``x.view(T * B, I)`` fails on it.

Not allowed here (you write them): ``torch.nn.RNN``, ``torch.nn.RNNCell``, ``torch.rnn_tanh`` and
their relatives. Any other torch function (``torch.tanh``, ``@``, ``torch.stack``) is fine.
Guide: GUIDE.md (English), GUIDE.zh.md (中文).
"""
import torch


def rnn_cell(x_t, h_prev, W_ih, W_hh, b_ih, b_hh):
    """One step of the recurrence, like ``torch.nn.RNNCell``.

    Args:
        x_t: ``(B, I)`` input at this step.
        h_prev: ``(B, H)`` hidden state of the previous step.
        W_ih: ``(H, I)``; W_hh: ``(H, H)``; b_ih, b_hh: ``(H,)``.

    Returns:
        ``(B, H)``: ``tanh(x_t W_ih^T + b_ih + h_prev W_hh^T + b_hh)``.

    Pitfall: ``torch.tanh`` is exact for any input; ``tanh`` written out with ``exp`` overflows to
    ``nan`` once a pre-activation reaches a few hundred, in its values or (``2 / (1 + exp(-2a)) - 1``)
    in the gradients autograd computes through it.
    """
    raise NotImplementedError


def rnn_forward(x, W_ih, W_hh, b_ih, b_hh, h0=None, batch_first=False):
    """One recurrent layer over a whole sequence, like ``torch.nn.RNN(I, H, batch_first=...)``.

    Args:
        x: ``(T, B, I)``, or ``(B, T, I)`` when ``batch_first``.
        W_ih, W_hh, b_ih, b_hh: as in ``rnn_cell``.
        h0: ``(1, B, H)`` initial state (not batch-first, even with ``batch_first``); None for zeros.

    Returns:
        ``(output, h_n)``: ``output`` is every step's hidden state, ``(T, B, H)`` (``(B, T, H)`` when
        ``batch_first``); ``h_n`` is the last step's state, ``(1, B, H)``.
    """
    raise NotImplementedError


def stacked_rnn_forward(x, weights, h0=None, batch_first=False):
    """``L`` recurrent layers on top of each other, like ``torch.nn.RNN(I, H, num_layers=L)``.

    Args:
        x: ``(T, B, I)``, or ``(B, T, I)`` when ``batch_first``.
        weights: a list of ``L`` tuples ``(W_ih, W_hh, b_ih, b_hh)``, one per layer: layer 0's ``W_ih``
            is ``(H, I)``, the later layers' ``(H, H)`` (they read the outputs of the layer below).
        h0: ``(L, B, H)``: ``h0[l]`` is layer ``l``'s initial state; None for zeros.

    Returns:
        ``(output, h_n)``: the top layer's outputs, shaped like in ``rnn_forward``, and ``h_n``
        ``(L, B, H)``, every layer's last state.
    """
    raise NotImplementedError
