"""Right math, wrong containers: token_nll sums over the sequence (shape (batch,) instead of
(batch, seq_len)), perplexity_from_nll returns its value on the meta device (no data), perplexity always
returns float32. Each test must fail with a message naming the shape, the device or the dtype."""
_right_nll, _right_from, _right_ppl = token_nll, perplexity_from_nll, perplexity


def token_nll(logits, targets):
    return _right_nll(logits, targets).sum(-1)


def perplexity_from_nll(total_nll, n_tokens):
    return _right_from(total_nll, n_tokens).to("meta")


def perplexity(logits, targets, ignore_index=None, mask=None):
    global token_nll, perplexity_from_nll
    wrong = token_nll, perplexity_from_nll
    token_nll, perplexity_from_nll = _right_nll, _right_from
    try:
        return _right_ppl(logits, targets, ignore_index, mask).float()
    finally:
        token_nll, perplexity_from_nll = wrong
