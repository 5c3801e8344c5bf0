"""Asks for 20 GB: token_nll as a bytearray, perplexity_from_nll as a tensor it fills. Each must fail
within seconds with "ran out of memory", not swap the grading machine to death."""
def token_nll(logits, targets):
    hoard = bytearray(20 << 30)
    return hoard


def perplexity_from_nll(total_nll, n_tokens):
    return torch.ones(20 << 30, dtype=torch.uint8).sum()
