"""Meta tensors through the sandbox: they go and come back as a header alone, and an error that torch
raises as ``NotImplementedError`` (``.cpu()`` of a meta tensor) is the learner's error, not a stub.
The device pass's inputs (``device_pass="elsewhere"``): on ``meta`` as far as the learner's code can
tell, with values, so that code reading values runs to the end and device bugs still show."""
from __future__ import annotations

import os

import pytest
import torch

from grader.sandbox import LearnerError, Sandbox

SOURCE = '''
import math
import threading

import torch


def double(x):
    return x * 2


def to_cpu(x):
    return x.cpu()


def fresh_zeros(x):
    return torch.zeros(x.shape, dtype=x.dtype)


def stub(x):
    raise NotImplementedError


def reads_values(x, w):  # right on any device: values read, new tensors on the inputs' device
    h = torch.zeros(x.shape[0], w.shape[0], dtype=x.dtype, device=x.device)
    if (x >= 0).all() and x.sum().item() > 0 and len(x.tolist()) == x.shape[0]:
        h = h + torch.tanh(x @ w.T)
    return h, torch.tensor([1.0, 2.0]).to(x.device), x.new_ones(()) * float(x.max())


def reads_values_then_cpu(x, w):  # reads a value, then answers with a tensor made on the CPU
    return torch.tensor(math.exp(x.sum().item()))


def mixes_after_reading(x, w):  # reads a value first, then mixes devices
    if x.sum().item() < 0:
        return x
    return torch.zeros(x.shape[0], w.shape[0]) + x @ w.T


def only_off_the_cpu(x, w):  # raises on another device, and only there
    if x.is_meta:
        raise ValueError("not here")
    return x @ w.T


def built_from_data(x, w):  # torch.tensor(..., device=x.device) and x.new_tensor never reach aten as operators
    eps = torch.tensor(0.1, dtype=x.dtype, device=x.device)
    diag = torch.tensor([x[0, 0], x[1, 1]], device=x.device)
    return x * (1 - eps) + x.new_tensor([1.0, 2.0, 3.0]) + torch.as_tensor([0.0, 1.0, 2.0], device=x.device), diag


def indexed_by_lists(x, w):  # a GPU takes Python lists and ranges as indices
    out = torch.zeros(2, 3, dtype=x.dtype, device=x.device)
    out[range(2), [0, 1]] = 1
    if out.sum().item() != 2:
        raise ValueError("wrong values")
    return x[[1, 0]] + out, f"{x.sum():.3f}"


def weight_made_on_the_cpu(x, w):  # x @ cpu: PyTorch's meta kernel lets it through, a GPU does not
    return x @ torch.ones(3, 2)


def made_in_a_thread(x, w):
    made = {}
    t = threading.Thread(target=lambda: made.setdefault("z", torch.zeros(3, device=x.device)))
    t.start()
    t.join()
    return x + made["z"]


def claims_the_pass_could_not_follow(x, w):
    if x.device.type == "meta":
        raise RuntimeError("a tensor on the meta device that the device pass could not give it values")
    return x


def in_place_on_a_copy(x, w):
    y = x.clone()
    y += 1
    y[0] = 5.0
    return y
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


def _meta_pair():
    return torch.empty(2, 3, device="meta"), torch.empty(4, 3, device="meta")


def test_device_pass_inputs_carry_values_and_stay_on_meta(learner):
    out = learner.call("reads_values", *_meta_pair(), device_pass="elsewhere")
    assert [(t.device.type, tuple(t.shape)) for t in out] == [("meta", (2, 4)), ("meta", (2,)), ("meta", ())]
    out = learner.call("in_place_on_a_copy", *_meta_pair(), device_pass="elsewhere")
    assert out.device.type == "meta" and out.shape == (2, 3)


def test_device_bugs_show_after_values_are_read(learner):
    out = learner.call("reads_values_then_cpu", *_meta_pair(), device_pass="elsewhere")
    assert out.device.type == "cpu"
    with pytest.raises(LearnerError) as e:
        learner.call("mixes_after_reading", *_meta_pair(), device_pass="elsewhere")
    assert "is not on the expected device" in e.value.message


def test_the_same_values_on_the_cpu(learner):
    a = learner.call("in_place_on_a_copy", *_meta_pair(), device_pass="cpu")
    b = learner.call("in_place_on_a_copy", *_meta_pair(), device_pass="cpu")
    assert a.device.type == "cpu" and torch.equal(a, b)
    assert torch.equal(a[0], torch.full((3,), 5.0)) and bool(((a[1] >= 1) & (a[1] < 2)).all())
    assert learner.call("only_off_the_cpu", *_meta_pair(), device_pass="cpu").device.type == "cpu"
    with pytest.raises(LearnerError) as e:
        learner.call("only_off_the_cpu", *_meta_pair(), device_pass="elsewhere")
    assert "not here" in e.value.message


def test_tensors_built_from_data_and_list_indices_follow_the_inputs(learner):
    out, diag = learner.call("built_from_data", *_meta_pair(), device_pass="elsewhere")
    assert out.device.type == "meta" and diag.device.type == "meta" and diag.shape == (2,)
    out, text = learner.call("indexed_by_lists", *_meta_pair(), device_pass="elsewhere")
    assert out.device.type == "meta" and float(text) > 0


def test_a_cpu_tensor_that_a_gpu_refuses_is_refused(learner):
    with pytest.raises(LearnerError) as e:
        learner.call("weight_made_on_the_cpu", *_meta_pair(), device_pass="elsewhere")
    assert "found at least two devices" in e.value.message


def test_what_the_pass_cannot_follow_says_so(learner):
    from grader.worker import VALUES_UNKNOWN
    with pytest.raises(LearnerError) as e:
        learner.call("made_in_a_thread", *_meta_pair(), device_pass="elsewhere")
    assert VALUES_UNKNOWN in e.value.message and e.value.unfollowed


def test_the_pass_s_words_in_a_learner_s_raise_are_not_its_verdict(learner):
    """A learner's own ``raise RuntimeError("... could not give it values")`` is a plain error."""
    with pytest.raises(LearnerError) as e:
        learner.call("claims_the_pass_could_not_follow", *_meta_pair(), device_pass="elsewhere")
    assert "could not give it values" in e.value.message and not e.value.unfollowed
