"""Does none of the work: every function returns None (a stub whose raise was deleted)."""


def token_nll(logits, targets):
    return None


def perplexity_from_nll(total_nll, n_tokens):
    return None


def perplexity(logits, targets, ignore_index=None, mask=None):
    return None
