"""Returns wrong values in a torch.Tensor subclass whose every comparison (==, !=, allclose, isclose,
equal, assert_close's internals) says "equal". An in-process grader comparing it would pass it; this one refuses to
receive a tensor subclass at all."""
_right_nll, _right_from = token_nll, perplexity_from_nll


class AlwaysClose(torch.Tensor):
    def __eq__(self, other):
        return torch.ones(self.shape, dtype=torch.bool)

    def __ne__(self, other):
        return torch.zeros(self.shape, dtype=torch.bool)

    __hash__ = torch.Tensor.__hash__

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal, torch.Tensor.allclose, torch.Tensor.equal):
            return True
        if func in (torch.isclose, torch.Tensor.isclose, torch.eq, torch.Tensor.eq):
            return torch.ones(args[0].shape, dtype=torch.bool)
        return super().__torch_function__(func, types, args, kwargs or {})


def token_nll(logits, targets):
    return (_right_nll(logits, targets) + 1.0).as_subclass(AlwaysClose)


def perplexity_from_nll(total_nll, n_tokens):
    return (2.0 * _right_from(total_nll, n_tokens)).as_subclass(AlwaysClose)
