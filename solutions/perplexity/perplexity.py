"""Perplexity of a language model: how many tokens it hesitates between, on average.

Reference solution. The stub in ``exercises/perplexity/perplexity.py`` explains the math.
"""
import torch


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of each target token: ``-log softmax(logits)[..., target]``."""
    shifted = logits - logits.amax(dim=-1, keepdim=True)
    log_probs = shifted - shifted.exp().sum(dim=-1, keepdim=True).log()
    safe = targets.clamp(0, logits.shape[-1] - 1)  # padding ids may lie outside the vocabulary
    return -log_probs.gather(-1, safe.unsqueeze(-1)).squeeze(-1)


def perplexity_from_nll(total_nll: torch.Tensor, n_tokens) -> torch.Tensor:
    """``exp(total_nll / n_tokens)``."""
    return torch.exp(total_nll / n_tokens)


def perplexity(logits: torch.Tensor, targets: torch.Tensor, ignore_index=None, mask=None) -> torch.Tensor:
    """``exp`` of the mean NLL over the tokens that ``ignore_index`` and ``mask`` both keep; ``nan``
    (0 / 0) when none is left."""
    counted = torch.ones_like(targets, dtype=torch.bool)
    if ignore_index is not None:
        counted = counted & (targets != ignore_index)
    if mask is not None:
        counted = counted & mask
    nll = token_nll(logits, targets)
    total = torch.where(counted, nll, torch.zeros_like(nll)).sum()
    return perplexity_from_nll(total, counted.sum())
