"""perplexity_from_nll dereferences a NULL pointer (ctypes.string_at(0)): a segfault."""
import ctypes


def perplexity_from_nll(total_nll, n_tokens):
    return ctypes.string_at(0)
