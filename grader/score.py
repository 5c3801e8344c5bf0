"""Scores from test outcomes, with the weights of ``tests/grading.toml``.

A test's credit is the fraction of its cases (devices, dtypes, ...) that passed; cases that could
not run here (CUDA without a GPU) are left out of that fraction and counted as "not run". A topic's
score is its weight times the weighted mean credit of its tests. A gated test (``@pytest.mark.gated``:
one that checks how code runs, such as the device pass, rather than what it computes) counts only as
far as the topic's other tests pass: its credit is scaled by their weighted mean credit, so code that
computes nothing right earns nothing for running on the right device. The cases a test has come from the
catalogue that its grading process wrote when it collected the suite, before any learner code ran:
a case with no result is a failed case ("no result: ..."), never a smaller denominator.
"""
from __future__ import annotations

from collections import defaultdict

from grader.grade import Submission
from grader.plugin import CaseResult

NOT_RUN = "not run"
NO_RESULT = "no result: the grading process was interrupted"


def _topic_and_test(r: CaseResult) -> tuple[str, str]:
    """``("rnn", "test_rnn_forward")`` from a result's node id ``tests/rnn/test_rnn.py::test_rnn_forward``."""
    return r.topic, r.name


def _case_id(params: dict) -> str:
    return "-".join(f"{v}" for k, v in sorted(params.items())) or "-"


def score(s: Submission, topics: list[str], config: dict, catalogue: list[dict]) -> dict:
    """The report of one submission: per topic, per test, with messages for the student.

    ``catalogue`` holds its cases (``{"test", "params"}``, as collected by its grading process; the
    run's generic one for a submission that could not be graded). A case without a result is failed
    and counted in the report's ``no_result``.
    """
    expected = cases_by_test(catalogue)
    gated = {_topic_and_test(c) for c in catalogue if c.gated}
    no_result = 0
    by_test: dict[tuple, list] = defaultdict(list)
    for r in s.results:
        by_test[_topic_and_test(r)].append(r)
    out_topics = []
    for topic in topics:
        cfg = config.get(topic, {})
        weights = cfg.get("tests", {})
        tests, got, total_w, not_run = [], 0.0, 0.0, 0
        for test in expected.get(topic, {}):
            cases = {_case_id(r.params): r for r in by_test.get((topic, test), [])}
            passed = failed = skipped = 0
            messages = []
            for cid in expected[topic][test]:
                r = cases.get(cid)
                if s.problem and s.root is None:
                    failed += 1
                    messages.append(s.problem)
                elif r is None:
                    failed += 1
                    no_result += 1
                    messages.append(NO_RESULT)
                elif r.outcome == "passed":
                    passed += 1
                elif r.outcome == "skipped":
                    skipped += 1
                else:
                    failed += 1
                    messages.append(f"[{', '.join(f'{v}' for v in r.params.values())}] {r.message}".strip())
            not_run += skipped
            w = float(weights.get(test, 1))
            counted = passed + failed
            credit = passed / counted if counted else None
            if credit is not None:
                total_w += w
                got += w * credit
            tests.append({"test": test, "weight": w, "passed": passed, "failed": failed, "not_run": skipped,
                          "credit": credit, "status": NOT_RUN if credit is None else
                          ("passed" if failed == 0 else "failed"),
                          "feedback": messages[0] if messages else ""})
        got = _gate(tests, {t for tp, t in gated if tp == topic}, got)
        weight = float(cfg.get("weight", 1))
        points = weight * got / total_w if total_w else 0.0
        reason = _common_reason(tests)
        out_topics.append({"topic": topic, "score": round(points, 4), "max": weight if total_w else 0.0,
                           "not_run_cases": not_run, "reason": reason, "tests": tests})
    total = sum(t["score"] for t in out_topics)
    maximum = sum(t["max"] for t in out_topics)
    return {"name": s.name, "source": s.source, "sha256": s.digest, "problem": s.problem,
            "score": round(total, 4), "max": maximum, "no_result": no_result, "topics": out_topics}


def _gate(tests: list[dict], gated: set[str], got: float) -> float:
    """Scale each gated test's credit by the weighted mean credit of the topic's other tests; return
    the topic's weighted credit sum with the scaled credits."""
    rest = [t for t in tests if t["test"] not in gated and t["credit"] is not None]
    share = sum(t["weight"] * t["credit"] for t in rest) / sum(t["weight"] for t in rest) if rest else 0.0
    for t in tests:
        if t["test"] in gated and t["credit"] is not None and share < 1:
            got -= t["weight"] * t["credit"] * (1 - share)
            t["credit"] *= share
            if t["status"] == "passed":
                t["feedback"] = (f"counts {share:.0%}: this check counts as far as the topic's other tests "
                                 "pass")
    return got


def _common_reason(tests: list[dict]) -> str:
    """When every case of a topic failed for the same reason (a missing file, an import error), that reason."""
    msgs = {t["feedback"].split("] ", 1)[-1] for t in tests if t["status"] != NOT_RUN}
    if tests and all(t["passed"] == 0 for t in tests) and len(msgs) == 1:
        return msgs.pop()
    return ""


def cases_by_test(catalogue: list[dict]) -> dict[str, dict[str, dict]]:
    """``{topic: {test: {case id: None}}}`` of a catalogue, in suite order (dicts as ordered sets)."""
    out: dict[str, dict[str, dict]] = {}
    for case in catalogue:
        topic, test = _topic_and_test(case)
        params = {k: v for k, v in case.params.items() if k != "submission"}
        out.setdefault(topic, {}).setdefault(test, {})[_case_id(params)] = None
    return out
