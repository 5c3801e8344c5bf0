"""The hidden suites' harness: which implementation is graded, on which devices, with which settings.

``pytest tests/rnn --impl PATH`` points the suite at any folder laid out like ``exercises/``
(``solutions/`` when omitted); ``--impl`` may be repeated, and every test then runs once per folder.
The learner's code never runs in this process: ``impl`` is a proxy whose calls run in a sandboxed
worker (see ``grader/sandbox.py``) and come back as plain tensors and numbers.
"""
from __future__ import annotations

import functools
import json
import os
import time
import tomllib

import hypothesis.core
import pytest
import torch
from hypothesis import HealthCheck, Phase, settings

from grader.guard import violations
from grader.plugin import pytest_pyfunc_call  # noqa: F401 - the grading plugin's hooks
from grader.sandbox import LearnerError, Sandbox
from grader.submission import topic_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
with open(os.path.join(TESTS, "grading.toml"), "rb") as _f:
    GRADING = tomllib.load(_f)

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


def pytest_addoption(parser):
    group = parser.getgroup("dlkata")
    group.addoption("--impl", action="append", default=[], metavar="PATH",
                    help="folder laid out like exercises/ to grade (repeatable; default: solutions/)")
    group.addoption("--results", metavar="FILE", help="write each test's outcome as JSON lines here")
    group.addoption("--results-fd", type=int, metavar="FD",
                    help="the grader's pipe: the catalogue of cases (at collection, before any learner "
                         "code runs), then each test's outcome, as JSON lines")
    group.addoption("--slot", type=int, default=None, help="sandbox slot (a uid of its own)")
    group.addoption("--call-timeout", type=float, default=10.0, metavar="S",
                    help="wall-clock limit of one call into learner code (default 10 s)")
    group.addoption("--submission-timeout", type=float, default=120.0, metavar="S",
                    help="wall-clock limit of all learner calls of one submission (default 120 s)")


class SubmissionError(BaseException):
    """A learner problem that no other input would change (not implemented, missing, crashed,
    forbidden API, timed out). A BaseException, so that hypothesis reports it at once instead of
    searching for a smaller example."""


_STOP = {"not_implemented", "missing", "import", "forbidden", "timeout", "crash", "internal", "exit", "memory"}


class LearnerFunctionError(Exception):
    """The learner's function raised on some input: hypothesis shrinks that input."""


class SideEffect(AssertionError):
    """The learner's function changed one of its inputs in place: a failure of that case."""


class Impl:
    """The learner's topic module: ``impl.rnn_forward(x, ...)`` runs it in the sandbox."""

    def __init__(self, learner, topic: str, banned: dict[str, list[str]], clock: "Clock"):
        self._learner, self._topic, self._banned, self._clock = learner, topic, banned, clock

    def __repr__(self):  # hypothesis names the arguments in its messages: no memory address there
        return "impl"

    def __getattr__(self, fn: str):
        if fn.startswith("_"):
            raise AttributeError(fn)
        return lambda *args, **kwargs: self._call(fn, args, kwargs, driver=False)

    def drive(self, fn: str, *args, **kwargs):
        """Run ``tests/<topic>/driver.py``'s ``fn(learner_module, *args)`` beside the learner's code."""
        return self._call(fn, args, kwargs, driver=True)

    def _call(self, fn, args, kwargs, driver):
        if isinstance(self._learner, LearnerError):
            raise SubmissionError(self._learner.message)
        # A driver function (tests/<topic>/driver.py) may call any of the learner's functions; its own
        # name means nothing to a student, so messages then speak of the learner's code.
        who = sorted(k for k in self._banned if k != "*") if driver else [fn]
        used = sorted(set(self._banned.get("*", []) + [a for k in who for a in self._banned.get(k, [])]))
        if used:
            raise SubmissionError(f"{', '.join(who) or 'your module'} uses {', '.join(used)}, which this "
                                  "exercise asks you to write by hand: no credit for it")
        label = "your code" if driver else fn
        timeout = self._clock.left()
        if timeout <= 0:
            raise SubmissionError("the submission used up its time limit; later tests are not run")
        try:
            return self._learner.call(fn, *args, driver=driver, timeout=timeout, **kwargs)
        except LearnerError as e:
            if e.kind == "not_implemented":
                raise SubmissionError(f"{e.message or fn}: not implemented yet") from None
            if e.kind == "side_effect":
                raise SideEffect(e.message) from None
            if e.kind in _STOP:
                raise SubmissionError(f"{label}: {e.message}") from None
            raise LearnerFunctionError(f"{label} raised {e.message}") from None
        finally:
            self._clock.stop()


class Clock:
    """Wall-clock budget of one submission, counted over calls into its code only."""

    def __init__(self, per_call: float, total: float):
        self.per_call, self.remaining, self._start = per_call, total, None

    def left(self) -> float:
        self._start = time.monotonic()
        return min(self.per_call, self.remaining)

    def stop(self):
        if self._start is not None:
            self.remaining -= time.monotonic() - self._start
            self._start = None


def _impls(config) -> list[str]:
    paths = config.getoption("impl") or [os.path.join(ROOT, "solutions")]
    return [os.path.abspath(p) for p in paths]


def pytest_generate_tests(metafunc):
    if "submission" in metafunc.fixturenames:
        paths = _impls(metafunc.config)
        ids = [os.path.basename(p.rstrip("/")) or p for p in paths]
        if len(set(ids)) < len(ids):
            ids = [f"{i}{n}" for n, i in enumerate(ids)]
        metafunc.parametrize("submission", paths, ids=ids, scope="session")
    if "device" in metafunc.fixturenames:
        cuda = pytest.param("cuda", marks=pytest.mark.skipif(
            not torch.cuda.is_available(), reason="no CUDA device here: CUDA cases not run"))
        metafunc.parametrize("device", ["cpu", cuda])
    if "dtype" in metafunc.fixturenames:
        metafunc.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])


@pytest.fixture(scope="session")
def sandbox(pytestconfig):
    box = Sandbox(slot=pytestconfig.getoption("slot"))
    yield box
    box.kill()


_CLOCKS: dict[str, Clock] = {}


def runtime_rules(topic: str) -> list[str]:
    """What the worker refuses while the topic's code runs (see ``Watch`` in ``grader/worker.py``)."""
    rules = GRADING.get(topic, {})
    return [*rules.get("forbidden_ops", []), *[f"python:{m}" for m in rules.get("forbidden_python", [])],
            *[f"autograd:{f}" for f in rules.get("hand_gradients", [])]]


def topic_of(module) -> str:
    return module.__name__.split(".")[1]


@pytest.fixture(scope="module")
def impl(request, sandbox, submission):
    topic = topic_of(request.module)
    opt = request.config.getoption
    clock = _CLOCKS.setdefault(submission, Clock(opt("call_timeout"), opt("submission_timeout")))
    driver_path = os.path.join(TESTS, topic, "driver.py")
    driver = open(driver_path).read() if os.path.exists(driver_path) else None
    forbidden = GRADING.get(topic, {}).get("forbidden", [])
    banned: dict[str, list[str]] = {}
    try:
        files = topic_files(submission, topic)
        banned = violations(files, forbidden)
        timeout = clock.left()
        try:
            learner = sandbox.open(topic, files, driver, runtime_rules(topic), timeout=max(timeout, 0.1))
        finally:
            clock.stop()
    except LearnerError as e:
        learner = e
    yield Impl(learner, topic, banned, clock)
    if not isinstance(learner, LearnerError):
        learner.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if call.excinfo is not None and call.when == "call":
        exc = call.excinfo.value
        report.student_message = "\n".join([str(exc) or type(exc).__name__, *_shrunk_input(exc)])[:4000]
    report.dlkata = _params(item)
    return report


def _params(item) -> dict:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return {k: (str(v).removeprefix("torch.") if k != "submission" else v) for k, v in params.items()}


def _shrunk_input(exc) -> list[str]:
    """The drawn arguments of hypothesis' minimal failing example, without the fixtures."""
    for note in getattr(exc, "__notes__", []):
        if note.startswith(("Falsifying example", "Falsifying explicit example", "Failing test case")):
            args = [a.strip().rstrip(",") for a in note.splitlines()[1:-1]]
            args = [a for a in args if not a.startswith(("impl=", "device=", "dtype="))]
            return ["shrunk input: " + ", ".join(args)] if args else []
    return []


_RESULTS = None
_GRADER = None  # the grader's pipe (``--results-fd``)


def pytest_configure(config):
    global _RESULTS, _GRADER
    if config.getoption("results"):
        _RESULTS = open(config.getoption("results"), "a")
    if config.getoption("results_fd") is not None:
        _GRADER = os.fdopen(config.getoption("results_fd"), "w")
        _not_dumpable()


def _not_dumpable():
    """Grading: no process of our uid may read our memory or open our descriptors (the grader's pipe)
    through /proc, nor ptrace us (learner code runs as this uid when the grader is neither root nor
    sandboxed)."""
    import ctypes
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0


def pytest_collection_modifyitems(session, config, items):
    """The catalogue: every case this process will grade, written before any learner code runs, so
    that a case without a result counts as failed, never as absent."""
    if _GRADER is not None:
        cases = [{"test": item.nodeid.split("[")[0], "params": _params(item)} for item in items]
        _GRADER.write(json.dumps({"catalogue": cases}) + "\n")
        _GRADER.flush()


def pytest_runtest_logreport(report):
    """One JSON line per test case and outcome, for the grader (``--results``, ``--results-fd``)."""
    if (_RESULTS is None and _GRADER is None) or (report.when != "call" and not (report.failed or report.skipped)):
        return
    message = getattr(report, "student_message", "")
    if report.skipped and isinstance(report.longrepr, tuple):
        message = report.longrepr[2]
    elif report.failed and not message:
        message = f"error in the test's {report.when}: {report.longrepr.reprcrash.message if hasattr(report.longrepr, 'reprcrash') else report.longrepr}"
    line = json.dumps({"test": report.nodeid.split("[")[0], "params": getattr(report, "dlkata", {}),
                       "outcome": report.outcome, "when": report.when, "message": message}) + "\n"
    for out in (_RESULTS, _GRADER):
        if out is not None:
            out.write(line)
            out.flush()
