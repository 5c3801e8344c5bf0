"""Runs beside the learner's code in the sandbox: differentiates the learner's ``perplexity``.

Functions here take the learner's module first. They keep their own reference to
``torch.autograd.grad``, taken before the forbidden-API guards are installed.
"""
import torch

_grad = torch.autograd.grad


def perplexity_and_grad(m, logits, targets, ignore_index=None, mask=None):
    logits = logits.detach().requires_grad_(True)
    ppl = m.perplexity(logits, targets, ignore_index=ignore_index, mask=mask)
    if not isinstance(ppl, torch.Tensor) or not ppl.requires_grad:
        return ppl, None
    (g,) = _grad(ppl, logits)
    return ppl.detach(), g
