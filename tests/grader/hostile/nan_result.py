"""perplexity returns NaN everywhere (a 0/0): the message must point at the NaN."""
def perplexity(logits, targets, ignore_index=None, mask=None):
    return torch.full((), float("nan"), dtype=logits.dtype)
