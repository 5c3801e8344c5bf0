"""Benchmark: what the forbidden-operator watch (``Watch`` in ``worker.py``) costs a call into learner
code, on the reference solutions, in this process (CPU, one thread). Prints figures; asserts nothing.

    python -m tests.grader.benchmark_watch

Each line: the best of several runs without and with the watch of that topic's rules. Allowed
operators cost nothing (the forbidden ones' kernels refuse); a function whose gradient is written by
hand runs under a dispatch mode, a Python call per aten operator, so such code made of many tiny
operations pays the most. The watch's refusing kernels stay registered in this process afterwards.
"""
from __future__ import annotations

import gc
import importlib
import os
import sys
import time
import tomllib

import torch

from grader.grade import ROOT
from grader.worker import Watch


def _rules(topic: str) -> list[str]:
    with open(os.path.join(ROOT, "tests", "grading.toml"), "rb") as f:
        rules = tomllib.load(f).get(topic, {})
    return [*rules.get("forbidden_ops", []), *[f"python:{m}" for m in rules.get("forbidden_python", [])],
            *[f"autograd:{f}" for f in rules.get("hand_gradients", [])]]


def _solution(topic: str):
    sys.path.insert(0, os.path.join(ROOT, "solutions", topic))
    return importlib.import_module(topic)


def _cases():
    g = torch.Generator().manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    T, B, I, H = 50, 4, 8, 16
    bptt, ce, norms, lstm = (_solution(t) for t in ("bptt", "cross_entropy", "norms", "lstm"))
    args = {
        "bptt": (r(T, B, I), r(B, H), r(H, I), r(H, H), r(H), r(H), r(T, B, H), r(B, H)),
        "ce": (r(256, 1000), torch.randint(0, 1000, (256,), generator=g)),
        "norms": (r(64, 512), (512,), r(512), r(512), 1e-5, r(64, 512)),
        "lstm": (r(T, B, I), r(4 * H, I), r(4 * H, H), r(4 * H), r(4 * H)),
    }
    return {
        "bptt.rnn_backward, T=50 (many tiny ops)": ("bptt", "rnn_backward", lambda: bptt.rnn_backward(*args["bptt"])),
        "cross_entropy.cross_entropy_grad, 256x1000": ("cross_entropy", "cross_entropy_grad",
                                                      lambda: ce.cross_entropy_grad(*args["ce"])),
        "norms.layer_norm_backward, 64x512": ("norms", "layer_norm_backward",
                                              lambda: norms.layer_norm_backward(*args["norms"])),
        "lstm.lstm_forward, T=50": ("lstm", "lstm_forward", lambda: lstm.lstm_forward(*args["lstm"])),
    }


def main(argv=None) -> int:
    torch.set_num_threads(1)
    for label, (topic, fn, run) in _cases().items():
        watch = Watch(_rules(topic))
        best = {"without": float("inf"), "with": float("inf")}
        for _ in range(5):
            for mode in best:
                gc.collect()
                start = time.perf_counter()
                for _ in range(5):
                    if mode == "with":
                        with watch.call(fn):
                            run()
                    else:
                        run()
                best[mode] = min(best[mode], (time.perf_counter() - start) / 5)
        a, b = best["without"], best["with"]
        print(f"{label:45s} without {a * 1e3:7.2f} ms   with {b * 1e3:7.2f} ms   +{(b - a) * 1e3:6.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
