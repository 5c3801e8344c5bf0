"""The device pass's verdicts (``tests/devices.py``), from what the learner's function does off the
CPU and on it: the decision table alone, with a stand-in for the sandboxed learner."""
from __future__ import annotations

import pytest
import torch

from grader.plugin import LearnerFunctionError
from grader.worker import VALUES_UNKNOWN
from tests.compare import Mismatch
from tests.devices import check_devices, meta


class Learner:
    """``device_pass(where, fn, ...)``: ``elsewhere`` and ``cpu`` answer as told (a value, or an
    exception raised)."""

    def __init__(self, elsewhere, cpu=None):
        self.answers, self.calls = {"elsewhere": elsewhere, "cpu": cpu}, []

    def device_pass(self, where, fn, *args, **kwargs):
        self.calls.append(where)
        answer = self.answers[where]
        answer = answer(*args) if callable(answer) and not isinstance(answer, type) else answer
        if isinstance(answer, BaseException):
            raise answer
        return answer


def _raised(message, unfollowed=False):
    return LearnerFunctionError(f"f raised Traceback:\n  f.py, line 3, in f\nRuntimeError: {message}",
                                unfollowed=unfollowed)


def test_results_on_the_inputs_device_pass_then_the_dtype_half_runs_in_bfloat16():
    learner = Learner(elsewhere=(meta(2, 3), [meta(4)]), cpu=lambda x: (x * 2, [x.sum()]))
    check_devices(learner, "f", meta(2, 3))
    assert learner.calls == ["elsewhere", "cpu"]


def test_without_floating_inputs_there_is_no_dtype_half():
    learner = Learner(elsewhere=meta(3))
    check_devices(learner, "f", meta(3, dtype=torch.int64), 4)
    assert learner.calls == ["elsewhere"]


@pytest.mark.parametrize("made", [torch.float32, torch.float64])
def test_a_result_in_another_dtype_than_its_inputs_fails(made):
    """A buffer made without dtype= (float32) turns a bfloat16 result into float32."""
    learner = Learner(elsewhere=meta(2, 3), cpu=lambda x: x.to(made))
    with pytest.raises(Mismatch, match="for bfloat16 inputs"):
        check_devices(learner, "f", meta(2, 3))


def test_a_dtype_asked_for_is_a_dtype_given():
    learner = Learner(elsewhere=meta(2, 3), cpu=lambda x, dtype: x.to(dtype))
    check_devices(learner, "f", meta(2, 3), torch.float32)


def test_an_error_in_bfloat16_only_fails_and_an_operator_without_bfloat16_is_inconclusive():
    only = Learner(elsewhere=meta(2, 3), cpu=lambda x: _raised("expected m1 and m2 to have the same dtype")
                   if x.dtype == torch.bfloat16 else x)
    with pytest.raises(Mismatch, match="raised on bfloat16 inputs only"):
        check_devices(only, "f", meta(2, 3))
    missing = Learner(elsewhere=meta(2, 3), cpu=_raised('"addmm_impl_cpu_" not implemented for \'BFloat16\''))
    with pytest.raises(pytest.skip.Exception):
        check_devices(missing, "f", meta(2, 3))


@pytest.mark.parametrize("result", [torch.zeros(3), (meta(2), torch.zeros(2)), None, 3.0],
                         ids=["a CPU tensor", "one of two on the CPU", "None", "a float"])
def test_a_result_off_the_inputs_device_or_without_a_tensor_fails(result):
    with pytest.raises(Mismatch):
        check_devices(Learner(elsewhere=result), "f", meta(2, 3))


@pytest.mark.parametrize("message", ["Tensor on device meta is not on the expected device cpu!",
                                     "Expected all tensors to be on the same device, but found at least two "
                                     "devices, meta and cpu!",
                                     "Cannot copy out of meta tensor; no data!"])
def test_mixing_devices_or_moving_data_fails_without_asking_the_cpu(message):
    learner = Learner(elsewhere=_raised(message))
    with pytest.raises(Mismatch, match="CPU"):
        check_devices(learner, "f", meta(2, 3))
    assert learner.calls == ["elsewhere"]


def test_an_error_off_the_cpu_only_fails():
    learner = Learner(elsewhere=_raised("not here"), cpu=torch.zeros(2))
    with pytest.raises(Mismatch, match="raised off the CPU"):
        check_devices(learner, "f", meta(2, 3))
    assert learner.calls == ["elsewhere", "cpu"]


def test_an_error_on_the_cpu_too_is_inconclusive():
    learner = Learner(elsewhere=_raised("bad shapes"), cpu=_raised("bad shapes"))
    with pytest.raises(pytest.skip.Exception):
        check_devices(learner, "f", meta(2, 3))


@pytest.mark.parametrize("message", [f"a tensor on the meta device that {VALUES_UNKNOWN}",
                                     "META device type not an accelerator."])
def test_what_the_pass_cannot_follow_is_inconclusive(message):
    learner = Learner(elsewhere=_raised(message, unfollowed=True), cpu=torch.zeros(2))
    with pytest.raises(pytest.skip.Exception):
        check_devices(learner, "f", meta(2, 3))
    assert learner.calls == ["elsewhere"]


@pytest.mark.parametrize("message", [f"a tensor on the meta device that {VALUES_UNKNOWN}",
                                     "META device type not an accelerator."])
def test_the_same_words_raised_by_the_learner_are_no_excuse(message):
    """Only the worker says that the pass could not follow a call: a device bug hidden behind the
    pass's own words (raised on the meta device, not on the CPU) fails, it is not skipped."""
    learner = Learner(elsewhere=_raised(message), cpu=torch.zeros(2))
    with pytest.raises(Mismatch, match="raised off the CPU"):
        check_devices(learner, "f", meta(2, 3))
