"""Meta tensors through the sandbox: they go and come back as a header alone, and an error that torch
raises as ``NotImplementedError`` (``.cpu()`` of a meta tensor) is the learner's error, not a stub."""
from __future__ import annotations

import os

import pytest
import torch

from grader.sandbox import LearnerError, Sandbox

SOURCE = '''
import torch


def double(x):
    return x * 2


def to_cpu(x):
    return x.cpu()


def fresh_zeros(x):
    return torch.zeros(x.shape, dtype=x.dtype)


def stub(x):
    raise NotImplementedError
'''


@pytest.fixture(scope="module")
def learner():
    box = Sandbox(slot=3980 + os.getpid() % 9, timeout=20)
    learner = box.open("metacheck", {"metacheck.py": SOURCE})
    yield learner
    learner.close()
    box.kill()


def test_meta_tensors_go_and_come_back(learner):
    out = learner.call("double", torch.empty(2, 3, dtype=torch.float64, device="meta"))
    assert out.device.type == "meta" and out.shape == (2, 3) and out.dtype == torch.float64
    out = learner.call("fresh_zeros", torch.empty(4, device="meta"))  # made on the CPU: it says so
    assert out.device.type == "cpu" and out.shape == (4,)


def test_a_not_implemented_error_from_torch_is_not_a_stub(learner):
    with pytest.raises(LearnerError) as e:
        learner.call("to_cpu", torch.empty(2, device="meta"))
    assert e.value.kind == "raised" and "Cannot copy out of meta tensor" in e.value.message
    with pytest.raises(LearnerError) as e:
        learner.call("stub", torch.empty(2, device="meta"))
    assert e.value.kind == "not_implemented"
