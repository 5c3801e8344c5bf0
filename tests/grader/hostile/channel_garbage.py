"""token_nll writes a forged, oversized message header to every open file descriptor (the grader's
channel among them): the grader must treat it as a crash of this topic, not believe it."""
import os
import struct


def token_nll(logits, targets):
    for fd in sorted(int(f) for f in os.listdir("/proc/self/fd")):
        try:
            os.write(fd, struct.pack("<QQ", 1 << 40, 1 << 40) + b'{"ok": 0}')
        except OSError:
            pass
    return torch.zeros(targets.shape, dtype=logits.dtype)
