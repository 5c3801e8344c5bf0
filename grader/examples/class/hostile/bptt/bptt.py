"""Crashes the interpreter and tries the network."""
import ctypes
import socket


def rnn_backward(x, h0, W_ih, W_hh, b_ih, b_hh, d_output, d_h_n):
    ctypes.string_at(0)


def clip_grad_norm(grads, max_norm, eps=1e-6):
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    return grads, 0.0
