"""Leaves token_nll out: only that function's test should fail, with "has no function token_nll"."""
del token_nll  # noqa: F821 - the solution above defines it; perplexity() only calls it by name


def perplexity(logits, targets, ignore_index=None, mask=None):  # noqa: F811 - no token_nll any more
    counted = torch.ones_like(targets, dtype=torch.bool)
    if ignore_index is not None:
        counted = counted & (targets != ignore_index)
    if mask is not None:
        counted = counted & mask
    shifted = logits - logits.amax(dim=-1, keepdim=True)
    log_probs = shifted - shifted.exp().sum(dim=-1, keepdim=True).log()
    nll = -log_probs.gather(-1, targets.clamp(0, logits.shape[-1] - 1).unsqueeze(-1)).squeeze(-1)
    return perplexity_from_nll(torch.where(counted, nll, torch.zeros_like(nll)).sum(), counted.sum())
