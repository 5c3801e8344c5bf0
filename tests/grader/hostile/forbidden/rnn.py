"""Routes to PyTorch's recurrent kernels (appended to the solution; ``via_*`` replaces TARGET)."""
import importlib
import sys

import torch

TARGET = "rnn_forward"
X = torch.randn(2, 3, 5)
H = torch.zeros(1, 3, 4)
W_IH, W_HH, B = torch.randn(4, 5), torch.randn(4, 4), torch.randn(4)


def via_vf(*_):
    return torch._VF.rnn_tanh(X, H, [W_IH, W_HH, B, B], True, 1, 0.0, False, False, False)[0]


def via_variable_functions(*_):
    return torch._C._VariableFunctions.rnn_tanh_cell(X[0], H[0], W_IH, W_HH, B, B)


def via_ops(*_):
    return torch.ops.aten.rnn_relu_cell.default(X[0], H[0], W_IH, W_HH, B, B)


def via_module(*_):
    return torch.nn.RNN(5, 4)(X)[0]


def via_computed_getattr(*_):
    return getattr(sys.modules["torch"], "rnn_" + "tanh")(X, H, [W_IH, W_HH, B, B], True, 1, 0.0, False, False, False)[0]


def via_gru_with_open_gates(*_):
    return importlib.import_module("torch.nn").GRU(5, 4)(X)[0]


def via_decomposition_helper(*_):
    """The RNN cell that PyTorch's Python decomposition of aten.rnn_tanh is made of (torch._decomp)."""
    dec = importlib.import_module("torch._decomp.decompositions")
    return dec.rnn_cell(torch.tanh)(X[0] @ W_IH.T, H[0], W_HH, B, None)


def via_library_finalizers(*_):
    """torch.library keeps a finalizer per Library; calling one undoes its registrations."""
    import weakref
    for fin, info in list(weakref.finalize._registry.items()):
        if getattr(info.func, "__name__", "") == "_del_library":
            fin()
    return torch.rnn_tanh(X, H, [W_IH, W_HH, B, B], True, 1, 0.0, False, False, False)[0]
