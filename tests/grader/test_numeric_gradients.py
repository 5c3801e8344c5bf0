"""A hand-gradient function written as numerical differentiation of the submission's own forward
(``hostile/numeric_gradient.py``: the complex step, exact to rounding), graded beside right
solutions in one grading process (``--jobs 1``)."""
from __future__ import annotations

import os

import pytest

from tests.grader import classroom as c

TOPIC = "lstm"
SOLUTION = os.path.join(c.ROOT, "solutions", TOPIC, f"{TOPIC}.py")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("numeric-gradient")
    folder = str(base / "class")
    with open(SOLUTION) as f:
        solution = f.read()
    with open(os.path.join(c.HOSTILE, "numeric_gradient.py")) as f:
        hostile = f.read()
    for name in ("a_good", "zz_good"):
        c.write_submission(os.path.join(folder, name), {f"{TOPIC}/{TOPIC}.py": solution})
    c.write_submission(os.path.join(folder, "numeric"), {f"{TOPIC}/{TOPIC}.py": solution + "\n\n" + hostile})
    report = c.run_grader(folder, str(base / "out"), topics=TOPIC, jobs=1, call_timeout=10)
    return c.by_name(report)


@pytest.mark.parametrize("name", ["a_good", "zz_good"])
def test_classmates_keep_full_marks(graded, name):
    assert graded[name]["score"] == graded[name]["max"] == 10.0, c.messages(graded[name])


@pytest.mark.xfail(strict=True, reason="a hand-written gradient is judged by its values only: numerical "
                   "differentiation of the submission's own forward (complex step, or central differences with "
                   "extrapolation) matches within the float64 tolerance without any derivation")
def test_a_numeric_gradient_earns_nothing_for_the_hand_gradient(graded):
    test = c.tests_of(graded["numeric"], TOPIC)["test_lstm_cell_backward"]
    assert test["passed"] == 0 and test["failed"] > 0
