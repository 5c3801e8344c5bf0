"""Submissions that try to earn points without the work, each graded beside right solutions in one
grading process (``--jobs 1``): a function that returns None (``hostile/returns_none.py``), one that is
wrong only the first time it sees an input (``hostile/first_call_wrong.py``: the replay of hypothesis'
examples, then hypothesis' own run), and a
hand-gradient function written as numerical differentiation of the submission's own forward
(``hostile/numeric_gradient.py``: the complex step, exact to rounding)."""
from __future__ import annotations

import os

import pytest

from tests.grader import classroom as c

LSTM = "lstm"
LSTM_SOLUTION = os.path.join(c.ROOT, "solutions", LSTM, f"{LSTM}.py")
GOOD = ["a_good", "zz_good"]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("unearned")
    folder = str(base / "class")
    with open(LSTM_SOLUTION) as f:
        lstm = f.read()
    with open(os.path.join(c.HOSTILE, "numeric_gradient.py")) as f:
        numeric = f.read()
    for name in GOOD:
        c.write_submission(os.path.join(folder, name), {f"{c.TOPIC}/{c.TOPIC}.py": c.solution_source(),
                                                        f"{LSTM}/{LSTM}.py": lstm})
    c.write_submission(os.path.join(folder, "m_returns_none"),
                       {f"{c.TOPIC}/{c.TOPIC}.py": c.hostile_source("returns_none"), f"{LSTM}/{LSTM}.py": lstm})
    c.write_submission(os.path.join(folder, "m_first_call_wrong"),
                       {f"{c.TOPIC}/{c.TOPIC}.py": c.hostile_source("first_call_wrong"), f"{LSTM}/{LSTM}.py": lstm})
    c.write_submission(os.path.join(folder, "m_numeric"),
                       {f"{c.TOPIC}/{c.TOPIC}.py": c.solution_source(), f"{LSTM}/{LSTM}.py": lstm + "\n\n" + numeric})
    report = c.run_grader(folder, str(base / "out"), topics=f"{c.TOPIC},{LSTM}", jobs=1, call_timeout=10)
    return c.by_name(report)


@pytest.mark.parametrize("name", GOOD)
def test_classmates_keep_full_marks(graded, name):
    assert graded[name]["score"] == graded[name]["max"] == 20.0, c.messages(graded[name])


def test_returning_none_earns_nothing_not_even_the_device_pass(graded):
    sub = graded["m_returns_none"]
    assert c.topic_of(sub)["score"] == 0, c.messages(sub)
    assert "returned NoneType" in c.tests_of(sub)[c.DEVICES]["feedback"]
    assert c.topic_of(sub, LSTM)["score"] == 10.0


@pytest.mark.xfail(strict=True, reason="a hand-written gradient is judged by its values only: numerical "
                   "differentiation of the submission's own forward (complex step, or central differences with "
                   "extrapolation) matches within the float64 tolerance without any derivation")
def test_a_numeric_gradient_earns_nothing_for_the_hand_gradient(graded):
    test = c.tests_of(graded["m_numeric"], LSTM)["test_lstm_cell_backward"]
    assert test["passed"] == 0 and test["failed"] > 0


def test_right_only_on_a_second_sight_earns_nothing_but_the_gated_tests(graded):
    """The replay fails, hypothesis' run meets new inputs first (wrong) and then the failing one again
    (right): a flaky failure, reported without the addresses of objects (grades are reproducible).
    The gated tests (how code runs, not what it computes) may pass: they count for nothing here."""
    sub = graded["m_first_call_wrong"]
    for test, t in c.tests_of(sub).items():
        if test not in c.GATED:
            assert t["passed"] == 0 and t["failed"] > 0, (test, t)
        assert " at 0x" not in t["feedback"], t["feedback"]


NORMS = "norms"
NORMS_BACKWARD = ["test_layer_norm_backward", "test_rms_norm_backward", "test_layer_norm_backward_with_a_common_offset",
                  "test_backward_with_a_zero_in_the_weight"]


@pytest.fixture(scope="module")
def taken_over(tmp_path_factory):
    """norms graded beside a right solution, with a forward that takes over its process's loop on its
    first call and answers every later call itself, the hand-written gradients by autograd
    (``hostile/takes_over_its_loop.py``): no check inside that process is left to stop it; and with
    gradients derived by TorchScript's symbolic differentiation (``hostile/jit_differentiates.py``) or
    by sympy's (``hostile/sympy_differentiates.py``)."""
    base = tmp_path_factory.mktemp("taken_over")
    folder = str(base / "class")
    with open(os.path.join(c.ROOT, "solutions", NORMS, f"{NORMS}.py")) as f:
        norms = f.read()
    c.write_submission(os.path.join(folder, "a_good"), {f"{NORMS}/{NORMS}.py": norms})
    for name, hostile in [("m_takes_over", "takes_over_its_loop"), ("m_by_jit", "jit_differentiates"),
                          ("m_by_sympy", "sympy_differentiates"), ("m_by_sympy_afresh", "sympy_imported_afresh"),
                          ("m_by_weight_norm", "weight_norm_differentiates"),
                          ("m_by_gradcheck", "gradcheck_differentiates"),
                          ("m_by_another_sympy", ("sympy_of_another_copy", "sympy_imported_afresh"))]:
        appended = [hostile] if isinstance(hostile, str) else hostile  # hostile files appended in order
        source = norms
        for part in appended:
            with open(os.path.join(c.HOSTILE, f"{part}.py")) as f:
                source += "\n\n" + f.read()
        c.write_submission(os.path.join(folder, name), {f"{NORMS}/{NORMS}.py": source})
    return c.by_name(c.run_grader(folder, str(base / "out"), topics=NORMS, jobs=1, call_timeout=10))


def test_a_process_that_took_over_its_loop_has_no_autograd_for_the_hand_written_gradients(taken_over):
    """The learner's functions of a topic of hand-written gradients run where PyTorch has no autograd
    kernel left (``Sandbox.without_autograd``): answers computed by autograd fail, whoever sends them.
    Its forwards, right, keep their points; the classmate keeps full marks."""
    assert taken_over["a_good"]["score"] == taken_over["a_good"]["max"] == 10.0, c.messages(taken_over["a_good"])
    tests = c.tests_of(taken_over["m_takes_over"], NORMS)
    for name in NORMS_BACKWARD:
        assert tests[name]["passed"] == 0 and tests[name]["failed"] > 0, (name, tests[name])
    assert tests["test_layer_norm"]["failed"] == 0, tests["test_layer_norm"]


@pytest.mark.parametrize("name", ["m_by_jit", "m_by_sympy", "m_by_sympy_afresh", "m_by_weight_norm", "m_by_gradcheck",
                                  "m_by_another_sympy"])
def test_no_library_derives_a_hand_written_gradient(taken_over, name):
    """TorchScript differentiates a graph without autograd, sympy an expression, gradcheck by finite
    differences, weight norm's backward kernel is a norm's: a server for hand-written gradients has no
    TorchScript left (a guard around it would still hold it, in its closure), sympy's, mpmath's and
    gradcheck's differentiation refuse, their files are not there to import afresh
    (``hostile/sympy_imported_afresh.py``), nor any other copy of them (``sympy_of_another_copy.py``:
    hidden where found, refused by an audit hook where not), and norms forbids weight norm's operators."""
    tests = c.tests_of(taken_over[name], NORMS)
    for name in NORMS_BACKWARD:
        assert tests[name]["passed"] == 0 and tests[name]["failed"] > 0, (name, tests[name])
    assert tests["test_layer_norm"]["failed"] == 0, tests["test_layer_norm"]


def test_a_differentiating_library_run_afresh_from_any_copy_is_refused():
    """The audit hook of a server without autograd: module code from a folder named after sympy or
    mpmath, wherever it lies (a copy that was not found to be hidden: vendored inside another
    package), is refused; a learner's file of a similar name, and other events, are not."""
    from grader.worker import _no_fresh_import_of
    refused = []
    hook = _no_fresh_import_of(("sympy", "mpmath"), refused.append)
    hook("exec", (compile("x = 1", "/opt/lib/python3/dist-packages/other/_vendor/sympy/core/basic.py", "exec"),))
    hook("exec", (compile("x = 1", "/tmp/learner-1/sympy_helpers.py", "exec"),))
    hook("open", ("/opt/lib/python3/dist-packages/mpmath/__init__.py", "r", 0))
    assert refused == ["sympy imported afresh from its files"]
