"""Routes to one_hot and the softmax family (appended to the solution; ``via_*`` replaces TARGET)."""
import importlib

import torch

TARGET = "neural_bigram_grad"
XS = torch.tensor([0, 1, 2])


def via_one_hot(*_):
    return torch.nn.functional.one_hot(XS, 4)


def via_c_nn_one_hot(*_):
    return torch._C._nn.one_hot(XS, 4)


def via_ops_one_hot(*_):
    return torch.ops.aten.one_hot.default(XS, 4)


def via_computed_softmax(*_):
    return getattr(importlib.import_module("torch"), "soft" + "max")(torch.randn(3, 4), 1)


def via_ops_log_softmax(*_):
    return torch.ops.aten._log_softmax(torch.randn(3, 4), 1, False)


def via_sparse_softmax(*_):
    return torch.sparse.softmax(torch.randn(3, 4).to_sparse(), 1).to_dense()


def via_logcumsumexp(*_):
    x = torch.randn(3, 4)
    return (x - torch.logcumsumexp(x, 1)[:, -1:]).exp()


def via_attention_kernel(*_):
    """CPU flash attention with identity keys and values: the softmax of every row."""
    x, eye = torch.randn(3, 4)[None, None], torch.eye(4)[None, None]
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(x, eye, eye, scale=1.0)[0][0, 0]


def via_python_reference(*_):
    """PyTorch's own softmax written in Python with allowed operators (torch._refs)."""
    return importlib.import_module("torch._refs").softmax(torch.randn(3, 4), 1)


def via_mkldnn_softmax(*_):
    """The MKLDNN kernel of softmax, below autograd."""
    with torch.inference_mode():
        return torch._softmax(torch.randn(3, 4).to_mkldnn(), 1, False).to_dense()


def via_library_finalizers(*_):
    """torch.library keeps a finalizer per Library; calling one undoes its registrations."""
    import weakref
    for fin, info in list(weakref.finalize._registry.items()):
        if getattr(info.func, "__name__", "") == "_del_library":
            fin()
    return torch.nn.functional.one_hot(XS, 4)


def via_python_one_hot(*_):
    """PyTorch's one_hot written in Python with allowed operators (torch._decomp)."""
    return importlib.import_module("torch._decomp.decompositions").one_hot(XS, 3)
