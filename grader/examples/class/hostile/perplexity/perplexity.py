"""Tries to forge a score: patches the comparisons, returns a tensor that equals everything,
writes a results.json at exit, and leaves the process mid-test."""
import atexit
import json
import os

import torch

torch.allclose = lambda *a, **k: True
torch.testing.assert_close = lambda *a, **k: None
atexit.register(lambda: open("results.json", "w").write(json.dumps({"score": 100})))


class Always(torch.Tensor):
    def __eq__(self, other):
        return True

    def __sub__(self, other):
        return torch.zeros(())


def token_nll(logits, targets):
    return torch.zeros(targets.shape).as_subclass(Always)


def perplexity_from_nll(total_nll, n_tokens):
    os._exit(0)


def perplexity(logits, targets, ignore_index=None, mask=None):
    import inspect
    for frame in inspect.stack():  # look for the expected value in the caller's variables
        if "expected" in frame.frame.f_locals:
            return frame.frame.f_locals["expected"]
    raise RuntimeError("no expected value in reach")
