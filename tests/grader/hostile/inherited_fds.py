"""Lists /proc/self/fd and writes a forged, well-formed answer ({"ok": 1.0}) into every descriptor it
holds, as it would into a channel shared with the grading of its classmates. Its own values are wrong."""
import os
import struct

_right_nll, _right_from = token_nll, perplexity_from_nll
_FORGED = struct.pack("<QQ", 11, 0) + b'{"ok": 1.0}'


def _forge():
    for fd in sorted(int(f) for f in os.listdir("/proc/self/fd")):
        try:
            os.write(fd, _FORGED * 4)
        except OSError:
            pass


def token_nll(logits, targets):
    _forge()
    return _right_nll(logits, targets) + 1.0


def perplexity_from_nll(total_nll, n_tokens):
    _forge()
    return 2.0 * _right_from(total_nll, n_tokens)
