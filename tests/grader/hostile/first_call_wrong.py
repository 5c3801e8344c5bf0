"""Wrong the first time it sees an input, right on every later call with the same input: the replay of
hypothesis' examples fails, and hypothesis' own run that follows sees each input a second time.
Appended to the perplexity solution."""
import hashlib

_seen = set()
_right = {"token_nll": token_nll, "perplexity_from_nll": perplexity_from_nll, "perplexity": perplexity}


def _key(name, args, kwargs):
    h = hashlib.sha256(name.encode())
    for a in list(args) + sorted(kwargs.items(), key=lambda kv: kv[0]):
        a = a[1] if isinstance(a, tuple) else a
        if isinstance(a, torch.Tensor):
            if a.device.type == "meta":
                h.update(repr((a.shape, a.dtype)).encode())
            else:
                h.update(a.detach().cpu().contiguous().numpy().tobytes() + repr(a.dtype).encode())
        else:
            h.update(repr(a).encode())
    return h.hexdigest()


def _wrap(name):
    def f(*args, **kwargs):
        out = _right[name](*args, **kwargs)
        k = _key(name, args, kwargs)
        if k not in _seen:
            _seen.add(k)
            return out * 1.5
        return out
    return f


token_nll, perplexity_from_nll, perplexity = _wrap("token_nll"), _wrap("perplexity_from_nll"), _wrap("perplexity")
