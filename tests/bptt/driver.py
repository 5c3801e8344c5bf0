"""Runs beside the learner's code in the sandbox: the gradient reaching ``h0`` over growing lengths,
in one call; which clipped tensors are the inputs themselves (object identity does not travel).

Functions here take the learner's module first.
"""
import torch


def dh0_over_lengths(m, x, h0, W_ih, W_hh, b_ih, b_hh, d_last):
    """For ``T = 1 .. len(x)``: the learner's gradient of ``h0`` when only the last output of
    ``x[:T]`` has an upstream gradient (``d_last``) and the final state has none. A result that is not
    a dict with an ``"h0"`` entry is returned as it is, for the test to report."""
    out = []
    for T in range(1, x.shape[0] + 1):
        d_output = torch.zeros(T, *d_last.shape, dtype=d_last.dtype, device=d_last.device)
        d_output[-1] = d_last
        grads = m.rnn_backward(x[:T], h0, W_ih, W_hh, b_ih, b_hh, d_output, torch.zeros_like(d_last))
        if not isinstance(grads, dict) or "h0" not in grads:
            return grads
        out.append(grads["h0"])
    return out


def clipped_sharing_memory(m, grads, max_norm):
    """The indices of ``clip_grad_norm``'s clipped tensors that share memory with one of its inputs.
    A result that is not ``(list, norm)`` is returned as it is, for the test to report."""
    result = m.clip_grad_norm(grads, max_norm)
    if not isinstance(result, (tuple, list)) or len(result) != 2 or not isinstance(result[0], (list, tuple)):
        return result
    inputs = {g.untyped_storage().data_ptr() for g in grads}
    return [k for k, c in enumerate(result[0])
            if isinstance(c, torch.Tensor) and c.untyped_storage().data_ptr() in inputs]
