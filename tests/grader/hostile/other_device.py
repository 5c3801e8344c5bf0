"""token_nll returns its result on the other device (CUDA for CPU inputs, CPU for CUDA ones): the
message must name both devices. Needs a GPU."""
_right_nll = token_nll


def token_nll(logits, targets):
    out = _right_nll(logits, targets)
    return out.to("cpu" if out.is_cuda else "cuda")
