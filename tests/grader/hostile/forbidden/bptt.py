"""Routes to gradient clipping and recurrent kernels (appended to the solution; ``via_*`` replaces TARGET)."""
import importlib

import torch

TARGET = "clip_grad_norm"
G = [torch.randn(3, dtype=torch.float64), torch.randn(2, 2, dtype=torch.float64)]


def _params():
    ps = [g.clone().requires_grad_(True) for g in G]
    for p, g in zip(ps, G):
        p.grad = g.clone()
    return ps


def via_clip_grad_norm(*_):
    return torch.nn.utils.clip_grad_norm_(_params(), 1.0)


def via_clip_without_foreach(*_):
    return torch.nn.utils.clip_grad_norm_(_params(), 1.0, foreach=False)


def via_private_helper(*_):
    clip = importlib.import_module("torch.nn.utils." + "clip_grad")
    return getattr(clip, "_get_total_" + "norm")(G, foreach=False)


def via_foreach_kernel(*_):
    return torch._foreach_norm(G)


def via_vf_rnn(*_):
    x, h = torch.randn(2, 3, 5), torch.zeros(1, 3, 4)
    w = [torch.randn(4, 5), torch.randn(4, 4), torch.randn(4), torch.randn(4)]
    return torch._VF.rnn_tanh(x, h, w, True, 1, 0.0, False, False, False)[0]
