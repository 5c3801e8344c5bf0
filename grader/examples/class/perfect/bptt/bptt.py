"""Backpropagation through time for a one-layer tanh RNN, by hand (no autograd).

Reference solution. The stub in ``exercises/bptt/bptt.py`` explains the math and the shapes.
"""
import torch


def _forward(x, h0, W_ih, W_hh, b_ih, b_hh):
    """Every hidden state, ``(T + 1, B, H)``: ``hs[0]`` is ``h0``, ``hs[t + 1]`` the state after step ``t``."""
    hs = [h0]
    for t in range(x.shape[0]):
        hs.append(torch.tanh(x[t] @ W_ih.T + b_ih + hs[-1] @ W_hh.T + b_hh))
    return torch.stack(hs)


def _backward(x, hs, W_ih, W_hh, d_output, d_h_n):
    """Gradients of ``sum(output * d_output) + sum(h_n * d_h_n)`` given the forward's states ``hs``."""
    dx = torch.zeros_like(x)
    dW_ih, dW_hh = torch.zeros_like(W_ih), torch.zeros_like(W_hh)
    d_bias = torch.zeros_like(W_hh[0])
    dh_next = d_h_n  # gradient reaching h_t from the steps after t
    for t in reversed(range(x.shape[0])):
        dh = d_output[t] + dh_next
        da = dh * (1 - hs[t + 1] ** 2)  # through tanh: tanh'(a) = 1 - tanh(a)^2
        dW_ih += da.T @ x[t]
        dW_hh += da.T @ hs[t]
        d_bias += da.sum(0)
        dx[t] = da @ W_ih
        dh_next = da @ W_hh
    return {"x": dx, "h0": dh_next, "W_ih": dW_ih, "W_hh": dW_hh, "b_ih": d_bias, "b_hh": d_bias.clone()}


def rnn_backward(x, h0, W_ih, W_hh, b_ih, b_hh, d_output, d_h_n):
    """Full backpropagation through time: a dict of gradients keyed like the inputs."""
    hs = _forward(x, h0, W_ih, W_hh, b_ih, b_hh)
    return _backward(x, hs, W_ih, W_hh, d_output, d_h_n)


def truncated_bptt(x, h0, W_ih, W_hh, b_ih, b_hh, d_output, k):
    """Windows of ``k`` steps: the state goes on from window to window, the gradient stops at the edges."""
    windows, h = [], h0
    for start in range(0, x.shape[0], k):
        hs = _forward(x[start:start + k], h, W_ih, W_hh, b_ih, b_hh)
        windows.append((start, hs))
        h = hs[-1]  # the next window starts where this one ended
    grads = {name: torch.zeros_like(w) for name, w in [("W_ih", W_ih), ("W_hh", W_hh), ("b_ih", b_ih), ("b_hh", b_hh)]}
    grads["x"] = torch.zeros_like(x)
    d_window_end = torch.zeros_like(h0)  # no gradient enters a window through its last state
    for start, hs in reversed(windows):
        g = _backward(x[start:start + k], hs, W_ih, W_hh, d_output[start:start + k], d_window_end)
        for name in ("W_ih", "W_hh", "b_ih", "b_hh"):
            grads[name] += g[name]
        grads["x"][start:start + k] = g["x"]
        grads["h0"] = g["h0"]  # the first window, processed last, is the one that reaches h0
    return grads


def clip_grad_norm(grads, max_norm, eps=1e-6):
    """Scale every gradient by ``min(1, max_norm / (total_norm + eps))``, ``total_norm`` the global L2 norm."""
    total_norm = torch.sqrt(sum((g * g).sum() for g in grads))
    scale = (max_norm / (total_norm + eps)).clamp(max=1.0)
    return [g * scale for g in grads], total_norm
