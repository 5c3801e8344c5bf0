"""The hidden suites' settings: devices, dtypes and hypothesis profiles.

The grading protocol (which implementation is graded, the sandboxed proxy ``impl``, the clock, the
results) is the plugin ``grader/plugin.py``, whose hooks and fixtures this module takes in.
``pytest tests/rnn --impl PATH`` grades any folder laid out like ``exercises/`` (``solutions/`` when
omitted).
"""
from __future__ import annotations

import functools
import os

import hypothesis.core
import pytest
import torch
from hypothesis import HealthCheck, Phase, settings

from grader.plugin import *  # noqa: F401,F403 - the grading plugin's hooks and fixtures
from grader.plugin import parametrize_submissions

# Grades must not depend on the run: fixed examples, no example database, no timing checks.
# No "explain" phase: it re-runs a failing test many times and its notes quote the test's source.
settings.register_profile("grading", derandomize=True, database=None, deadline=None, max_examples=5,
                          suppress_health_check=list(HealthCheck), print_blob=False, report_multiple_bugs=False,
                          phases=[Phase.explicit, Phase.generate, Phase.shrink])
settings.register_profile("thorough", settings.get_profile("grading"), derandomize=False, max_examples=300)
# Only the fixed ``@example``s: a kill that must not depend on which examples happen to be drawn.
settings.register_profile("explicit", settings.get_profile("grading"), phases=[Phase.explicit])
settings.load_profile(os.environ.get("DLKATA_HYPOTHESIS_PROFILE", "grading"))

# A derandomized test seeds itself from a digest of its source, which hypothesis recomputes (by
# tokenizing the source) on every run; within one session the source does not change: remember it.
if hasattr(hypothesis.core, "function_digest"):
    hypothesis.core.function_digest = functools.lru_cache(maxsize=None)(hypothesis.core.function_digest)

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
# One thread: the suites' tensors are tiny, so intra-op threads only cost (they spin while grading
# processes share the cores), and a reference then does not depend on the machine's core count.
torch.set_num_threads(1)


def pytest_generate_tests(metafunc):
    parametrize_submissions(metafunc)
    if "device" in metafunc.fixturenames:
        cuda = pytest.param("cuda", marks=pytest.mark.skipif(
            not torch.cuda.is_available(), reason="no CUDA device here: CUDA cases not run"))
        metafunc.parametrize("device", ["cpu", cuda])
    if "dtype" in metafunc.fixturenames:
        metafunc.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
