"""Scoring from a catalogue of cases and their results: partial credit, a case without a result, and a
gated test (one that checks how code runs, e.g. the device pass) that counts only as far as the rest
of its topic passes."""
from grader.grade import Submission
from grader.plugin import CaseResult
from grader.score import NO_RESULT, score

CONFIG = {"t": {"weight": 10, "tests": {"test_values": 3}}}


def _case(test, dtype, gated=False):
    return CaseResult(f"tests/t/test_t.py::{test}", {"dtype": dtype}, gated=gated)


def _result(test, dtype, outcome):
    return CaseResult(f"tests/t/test_t.py::{test}", {"dtype": dtype}, outcome,
                      message="" if outcome == "passed" else "values differ")


CATALOGUE = [_case("test_values", "float64"), _case("test_values", "float32"),
             _case("test_devices", "float64", gated=True)]


def _graded(values: list[str], devices: str) -> dict:
    s = Submission(name="s", source="s", root="/nowhere")
    s.results = [_result("test_values", d, o) for d, o in zip(("float64", "float32"), values)]
    s.results.append(_result("test_devices", "float64", devices))
    return score(s, ["t"], CONFIG, CATALOGUE)["topics"][0]


def test_right_values_and_devices_earn_everything():
    assert _graded(["passed", "passed"], "passed")["score"] == 10


def test_a_gated_test_earns_nothing_when_nothing_else_passes():
    topic = _graded(["failed", "failed"], "passed")
    assert topic["score"] == 0
    devices = next(t for t in topic["tests"] if t["test"] == "test_devices")
    assert devices["credit"] == 0 and "counts 0%" in devices["feedback"]


def test_a_gated_test_counts_as_far_as_the_rest_passes():
    # values: weight 3, credit 1/2; devices: weight 1, credit 1/2 (scaled by the values' 1/2)
    assert _graded(["passed", "failed"], "passed")["score"] == round(10 * (3 * 0.5 + 1 * 0.5) / 4, 4)


def test_a_case_without_a_result_fails_and_keeps_the_denominator():
    s = Submission(name="s", source="s", root="/nowhere")
    s.results = [_result("test_values", "float64", "passed")]
    topic = score(s, ["t"], CONFIG, CATALOGUE)["topics"][0]
    values = next(t for t in topic["tests"] if t["test"] == "test_values")
    assert (values["passed"], values["failed"]) == (1, 1) and values["feedback"] == NO_RESULT
    assert topic["score"] == round(10 * 3 * 0.5 / 4, 4)
