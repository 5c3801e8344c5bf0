"""Routes to PyTorch's embedding kernels (appended to the solution; ``via_*`` replaces TARGET)."""
import importlib
import sys

import torch

TARGET = "embedding"
IDS = torch.tensor([[0, 2, 1], [3, 3, 0]])
W = torch.randn(4, 3, dtype=torch.float64)


def via_computed_functional(*_):
    return getattr(importlib.import_module("torch.nn.functional"), "embed" + "ding")(IDS, W)


def via_torch_embedding(*_):
    return getattr(sys.modules["torch"], "embedding")(W, IDS)


def via_ops(*_):
    return torch.ops.aten.embedding.default(W, IDS)


def via_module(*_):
    return torch.nn.Embedding.from_pretrained(W)(IDS)


def via_bag(*_):
    return torch.nn.functional.embedding_bag(IDS, W, mode="sum")


def via_dense_backward(*_):
    return torch.ops.aten.embedding_dense_backward(torch.ones(2, 3, 3, dtype=torch.float64), IDS, 4, -1, False)


def via_decomposition(*_):
    """PyTorch's own embedding backward written in Python with allowed operators (torch._decomp)."""
    dec = importlib.import_module("torch._decomp.decompositions")
    return dec.embedding_dense_backward(torch.ones(2, 3, 3, dtype=W.dtype), IDS, 4, -1, False)


def via_library_finalizers(*_):
    """torch.library keeps a finalizer per Library; calling one undoes its registrations."""
    import weakref
    for fin, info in list(weakref.finalize._registry.items()):
        if getattr(info.func, "__name__", "") == "_del_library":
            fin()
    return torch.nn.functional.embedding(IDS, W)
