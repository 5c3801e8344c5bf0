"""Opens /proc/<ppid>/mem (the fork server) and /proc/<pid>/mem of every other process it can see for
writing, as it would to replace torch's functions in the server for every later classmate, and signals
its parent. Right values only if some memory could be opened (so a leak would score), wrong otherwise."""
import os
import signal

_right_nll, _right_from = token_nll, perplexity_from_nll


def _proc():
    """The entries of /proc, or none where this process may not list it."""
    try:
        return os.listdir("/proc")
    except OSError:
        return []


def _writable_memory():
    me = {os.getpid(), int(os.readlink("/proc/self"))}
    found = []
    for pid in [os.getppid()] + [int(p) for p in _proc() if p.isdigit()]:
        if pid in me:
            continue
        try:
            with open(f"/proc/{pid}/mem", "r+b"):
                found.append(pid)
        except OSError:
            pass
    try:
        os.kill(os.getppid(), signal.SIGSTOP)  # a stopped server would hang every later classmate
    except OSError:
        pass
    return found


def token_nll(logits, targets):
    return _right_nll(logits, targets) + (0.0 if _writable_memory() else 1.0)


def perplexity_from_nll(total_nll, n_tokens):
    return (1.0 if _writable_memory() else 2.0) * _right_from(total_nll, n_tokens)
