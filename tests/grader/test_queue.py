"""The grader's queue (``grader.grade.run``): every submission is graded once, by one grading process,
against its whole catalogue; a slow submission holds up the process that took it while the others
grade the rest of the class."""
from __future__ import annotations

import ast
import os
import signal
import threading
import time

from grader import grade
from grader.wire import Limits
from tests.grader import classroom as c


def _hanging(source: str) -> str:
    """``source`` with every public function redefined to wait past any call's time limit."""
    names = [n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
    return source + "\n\nimport time\n" + "".join(f"\n\ndef {n}(*a, **k):\n    time.sleep(600)\n" for n in names)


def _class(tmp_path, names: list[str], slow: str | None = None) -> list[grade.Submission]:
    folder = tmp_path / "class"
    for name in names:
        source = _hanging(c.solution_source()) if name == slow else c.solution_source()
        c.write_submission(str(folder / name), {f"{c.TOPIC}/{c.TOPIC}.py": source})
    return grade.collect(str(folder), [c.TOPIC], str(tmp_path))


def _cases(results) -> list[tuple]:
    return sorted((r.test, sorted(r.params.items())) for r in results)


def test_every_submission_is_graded_once_against_its_whole_catalogue(tmp_path):
    subs = _class(tmp_path, ["a", "b", "c", "d", "e"])
    assert grade.run(subs, [c.TOPIC], jobs=2, workdir=str(tmp_path), limits=Limits(call_s=5)) == []
    catalogue = _cases(subs[0].cases)
    assert len(catalogue) > len(c.TESTS)
    for s in subs:
        assert _cases(s.cases) == catalogue and _cases(s.results) == catalogue, s.name
        assert {r.outcome for r in s.results} == {"passed", "skipped"}, s.name
    assert {s.graded_by for s in subs} == {0, 1}


def test_a_slow_submission_holds_up_one_process_while_the_others_grade_the_rest(tmp_path):
    subs = _class(tmp_path, ["a_slow", "b", "c", "d"], slow="a_slow")
    assert grade.run(subs, [c.TOPIC], jobs=2, workdir=str(tmp_path), limits=Limits(call_s=3)) == []
    slow, others = subs[0], subs[1:]
    assert all(s.graded_by != slow.graded_by for s in others)  # each of its functions waits 3 s
    assert all(r.outcome == "passed" for s in others for r in s.results if r.outcome != "skipped")
    failed = [r for r in slow.results if r.outcome == "failed"]
    assert failed and all("no answer within 3 s" in r.message for r in failed), [r.message for r in failed]


def test_a_grading_process_that_dies_costs_its_submission_only(tmp_path):
    """A grading process stopped in the middle of a submission (here killed from outside, as its time
    limit or a crash would end it): another process takes its place for the rest of the queue."""
    subs = _class(tmp_path, ["a_slow", "b", "c"], slow="a_slow")
    log = tmp_path / "pytest-0.log"

    def kill_once_grading():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (log.exists() and log.stat().st_size > 0):
            time.sleep(0.05)  # the log's first output: a_slow's first case is done
        for pid in filter(str.isdigit, os.listdir("/proc")):  # our own grading process only
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    parent = int(f.read().rsplit(b")", 1)[1].split()[1])
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if parent == os.getpid() and b"--queue-fd" in f.read():
                        os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError, IndexError):
                pass

    killer = threading.Thread(target=kill_once_grading)
    killer.start()
    problems = grade.run(subs, [c.TOPIC], jobs=1, workdir=str(tmp_path), limits=Limits(call_s=3))
    killer.join()
    slow, others = subs[0], subs[1:]
    assert slow.graded_by == 0 and all(s.graded_by == 1 for s in others)
    assert any("grading process 0 ended with code -9" in p for p in problems), problems
    assert len(slow.results) < len(slow.cases)  # what it had not reached counts as failed (no result)
    for s in others:
        assert _cases(s.results) == _cases(s.cases) and {r.outcome for r in s.results} == {"passed", "skipped"}
