"""Every function floods stdout and stderr (print in a loop, raw writes to fd 1 and 2, bytes that look
like the grader's messages), then returns the right value: the flood must neither corrupt the grader's
channel nor cost any points. The first call of each function writes about 16 MB, later calls a little."""
import os
import sys

_right = {"token_nll": token_nll, "perplexity_from_nll": perplexity_from_nll, "perplexity": perplexity}
_flooded = set()


def _flood(fn):
    rounds = 1 if fn in _flooded else 100
    _flooded.add(fn)
    for _ in range(rounds):
        print("flood " * 2000)
        print("flood " * 2000, file=sys.stderr)
        for fd in (1, 2):
            os.write(fd, b"\x00\xff{\"ok\": 1}\n" * 3000)


def token_nll(logits, targets):
    _flood("token_nll")
    return _right["token_nll"](logits, targets)


def perplexity_from_nll(total_nll, n_tokens):
    _flood("perplexity_from_nll")
    return _right["perplexity_from_nll"](total_nll, n_tokens)


def perplexity(logits, targets, ignore_index=None, mask=None):
    _flood("perplexity")
    return _right["perplexity"](logits, targets, ignore_index, mask)
