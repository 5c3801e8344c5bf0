"""Backpropagation through time (BPTT) for a one-layer tanh RNN, by hand: no autograd.

The forward (the layout of ``torch.nn.RNN``, time-major, one layer)::

    a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh        x_t: (B, I), h_t: (B, H)
    h_t = tanh(a_t)                                        t = 0 .. T-1, h_{-1} = h0
    output = (h_0, ..., h_{T-1})  (T, B, H),   h_n = h_{T-1}  (B, H)

The loss is anything that depends on the outputs; you receive its gradient with respect to every
step's output, ``d_output`` ``(T, B, H)``, and with respect to the final state, ``d_h_n`` ``(B, H)``.
(So the gradients you compute are those of ``sum(output * d_output) + sum(h_n * d_h_n)``.)

Walk the steps backwards, from ``t = T-1`` down to ``0``, carrying ``dh_next``, the gradient that
reaches ``h_t`` from the steps after ``t`` (at the start: ``d_h_n``)::

    dh_t  = d_output[t] + dh_next                  h_t feeds both the output and the next step
    da_t  = dh_t * (1 - h_t ** 2)                  tanh'(a) = 1 - tanh(a)^2: reuse h_t, not a_t
    dW_ih += da_t^T x_t        dW_hh += da_t^T h_{t-1}        db_ih += sum over the batch of da_t
    db_hh += (the same)        dx_t = da_t W_ih               dh_next = da_t W_hh

after the last (that is, first) step ``dh_next`` is the gradient of ``h0``. The weights are shared
by all the steps, so their gradients are SUMS over the steps. You need every ``h_t`` (and ``h0``):
run the forward first and keep its states.

Truncated BPTT: a long sequence is cut into windows of ``k`` steps. The hidden state flows on from
one window to the next (the forward is the same as above), but the gradient is cut at the window
edges: inside a window, BPTT as above, starting with ``dh_next = 0`` at the window's end; no
gradient flows from a window into the one before. The weight gradients are summed over windows.

Gradient clipping: when the gradients are too large, scale all of them by the same factor, so that
their global L2 norm (the norm of all of their entries taken together) becomes ``max_norm``.

Pitfalls:
  * ``dW_ih`` has the shape of ``W_ih``, ``(H, I)``: ``da^T x``, not ``x^T da``;
  * ``+=`` over the steps, not ``=``;
  * ``1 - h ** 2``, not ``1 - h``;
  * do not forget ``d_h_n`` and ``dh_next``: without them no gradient travels back in time;
  * work on the device and dtype of the inputs; do not change the tensors you were given in place;
  * ``x`` and the gradients to clip may be views (transposed, strided): ``reshape``, not ``.view``;
  * ``clip_grad_norm(..., eps=0.0)`` means no eps at all, not the default;
  * each gradient is a tensor of its own (``"b_hh": d_bias.clone()``, not ``d_bias`` again): an
    optimizer's in-place step on one would change the other (the graded suite checks it).

Not allowed here (you write them): ``torch.autograd``, ``.backward()``, ``torch.func``,
``torch.nn.RNN``, ``torch.nn.utils.clip_grad_norm_`` and its relatives. Any other torch function
(``torch.tanh``, ``@``, ``torch.linalg.vector_norm``) is fine.
Guide: GUIDE.md (English), GUIDE.zh.md (中文).
"""
import torch


def rnn_backward(x, h0, W_ih, W_hh, b_ih, b_hh, d_output, d_h_n):
    """Full backpropagation through time.

    Args:
        x: ``(T, B, I)`` inputs, time-major.
        h0: ``(B, H)`` initial state.
        W_ih: ``(H, I)``; W_hh: ``(H, H)``; b_ih, b_hh: ``(H,)``.
        d_output: ``(T, B, H)`` gradient of the loss with respect to every step's output.
        d_h_n: ``(B, H)`` gradient of the loss with respect to the final state.

    Returns:
        a dict of gradients, each shaped like what it is the gradient of:
        ``{"x": ..., "h0": ..., "W_ih": ..., "W_hh": ..., "b_ih": ..., "b_hh": ...}``.
    """
    raise NotImplementedError


def truncated_bptt(x, h0, W_ih, W_hh, b_ih, b_hh, d_output, k):
    """Truncated BPTT over windows of ``k`` steps: ``[0, k), [k, 2k), ...`` (the last may be shorter).

    The state goes on from window to window; the gradient does not cross window edges. This is what
    running a torch forward window by window, with ``h = h.detach()`` between windows, gives.

    Args:
        x, h0, W_ih, W_hh, b_ih, b_hh, d_output: as in ``rnn_backward`` (no gradient for the final
            state here).
        k: the window length, ``k >= 1``; ``k >= T`` is one window, that is full BPTT.

    Returns:
        the same dict as ``rnn_backward``: the weight and bias gradients summed over the windows,
        ``"x"`` every step's input gradient, and ``"h0"`` the gradient of ``h0`` (which only the first
        window reaches).
    """
    raise NotImplementedError


def clip_grad_norm(grads, max_norm, eps=1e-6):
    """Clip by global norm, like ``torch.nn.utils.clip_grad_norm_`` (which works in place on
    ``.grad``; here you return new tensors, even when nothing is clipped).

    ``total_norm = sqrt(sum over all tensors of sum(g ** 2))``; every tensor is multiplied by
    ``min(1, max_norm / (total_norm + eps))``: one factor for all (clipping each tensor on its own
    changes the direction of the update), and never more than 1 (small gradients stay as they are).

    Args:
        grads: a non-empty list of tensors (any shapes, 0-dim included), on one device and of one dtype.
        max_norm: a positive float.

    Returns:
        ``(clipped, total_norm)``: the list of scaled tensors, in order, and the total norm before
        clipping, a 0-dim tensor of the gradients' dtype.
    """
    raise NotImplementedError
