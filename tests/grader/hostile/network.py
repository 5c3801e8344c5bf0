"""Tries the network: a TCP connection to a listener on the grading machine's 127.0.0.1 (the test
starts one) and to 1.1.1.1. Right values if any connection works (so a leak would score), wrong ones
if none does."""
import socket

_right_nll, _right_from = token_nll, perplexity_from_nll
PORT = int("__PORT__")


def _online():
    for address in [("127.0.0.1", PORT), ("1.1.1.1", 53)]:
        try:
            with socket.create_connection(address, timeout=0.5) as s:
                s.sendall(b"leaked from the sandbox")
                return True
        except OSError:
            pass
    return False


def token_nll(logits, targets):
    return _right_nll(logits, targets) + (0.0 if _online() else 1.0)


def perplexity_from_nll(total_nll, n_tokens):
    return (1.0 if _online() else 2.0) * _right_from(total_nll, n_tokens)
