"""perplexity_from_nll crashes its process with a segmentation fault (SIGSEGV, as a C extension's bad
pointer would: ctypes itself is refused)."""
import os
import signal


def perplexity_from_nll(total_nll, n_tokens):
    os.kill(os.getpid(), signal.SIGSEGV)
