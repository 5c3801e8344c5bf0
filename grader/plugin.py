"""The pytest plugin the hidden suites run under: the grading protocol, one owner for it.

- Which implementation is graded: ``--impl PATH`` (repeatable; ``solutions/`` when omitted), as the
  session-scoped parameter ``submission``; or, for the grader, ``--slots K --queue-fd FD``: K slots,
  each filled with the next submission of the grader's queue when the process reaches it, so that a
  process held up by a slow submission leaves the rest of the class to the others.
- ``impl``: the learner's topic module as a proxy. Its calls run in a sandboxed worker
  (``grader/sandbox.py``) and come back as plain data; what goes wrong there comes back as a
  ``LearnerError`` whose ``ErrorKind`` decides how the case fails: at once (``SubmissionError``, for
  what no other input would change), or shrunk by hypothesis (``LearnerFunctionError``, a
  ``SideEffect``, a wrong value).
- The clock: a wall-clock budget per call and per submission, counted over learner code only.
- The results: ``CaseResult`` lines (JSON), the catalogue of cases first (at collection, before any
  learner code runs), then one line per case, to ``--results FILE`` and the grader's pipe
  (``--results-fd``). The grader (``grader/grade.py``), the scores (``grader/score.py``) and the kata's
  checks read them back with ``CaseResult.parse``.
- Replaying examples (below).

``tests/conftest.py`` keeps what is about the suites: devices, dtypes, hypothesis profiles.
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import gc
import json
import os
import random
import time
import tomllib
from dataclasses import asdict, dataclass, field

import hypothesis.core
import pytest
from _pytest.skipping import evaluate_skip_marks
from hypothesis import settings

from grader.guard import violations
from grader.sandbox import LearnerError, Sandbox
from grader.submission import topic_files
from grader.wire import ErrorKind, Limits

# What the suites' conftest takes in with ``from grader.plugin import *``: hooks and fixtures.
__all__ = ["pytest_addoption", "pytest_configure", "pytest_collection_modifyitems", "pytest_runtest_protocol",
           "pytest_runtest_makereport", "pytest_runtest_logreport", "pytest_pyfunc_call", "sandbox", "impl"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
with open(os.path.join(TESTS, "grading.toml"), "rb") as _f:
    GRADING = tomllib.load(_f)


@dataclass
class CaseResult:
    """One case of a hidden test (a test with its parameters) and, once run, its outcome. The first
    line a grading process writes is its catalogue: ``{"catalogue": [case, ...]}`` without outcomes."""
    test: str  # the node id without parameters: "tests/rnn/test_rnn.py::test_rnn_forward"
    params: dict = field(default_factory=dict)  # {"submission": path, "device": "cpu", "dtype": "float64", ...}
    outcome: str = ""  # "passed", "failed", "skipped"; "" in the catalogue
    when: str = "call"  # the phase that decided it ("setup" or "teardown": a problem of the harness)
    message: str = ""  # for the student
    gated: bool = False  # counts only as far as the rest of its topic passes (``@pytest.mark.gated``)

    @property
    def topic(self) -> str:
        return self.test.split("/")[1]

    @property
    def name(self) -> str:
        return self.test.split("::")[-1]

    def line(self) -> str:  # the fields themselves: ``asdict`` deep-copies each one (a case's params too)
        return json.dumps({k: getattr(self, k) for k in self.__dataclass_fields__}) + "\n"

    @classmethod
    def parse(cls, data: dict) -> "CaseResult":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def pytest_addoption(parser):
    group = parser.getgroup("dlkata")
    group.addoption("--impl", action="append", default=[], metavar="PATH",
                    help="folder laid out like exercises/ to grade (repeatable; default: solutions/)")
    group.addoption("--results", metavar="FILE", help="write each test's outcome as JSON lines here")
    group.addoption("--results-fd", type=int, metavar="FD",
                    help="the grader's pipe: the catalogue of cases (at collection, before any learner "
                         "code runs), then each test's outcome, as JSON lines")
    group.addoption("--slot", type=int, default=None, help="sandbox slot (a uid of its own)")
    group.addoption("--slots", type=int, default=0, metavar="K",
                    help="grade up to K submissions taken from the grader's queue (--queue-fd) instead of --impl")
    group.addoption("--queue-fd", type=int, metavar="FD",
                    help="the grader's queue: a JSON line per request, the next submission's folder or null")
    group.addoption("--limits", metavar="JSON", default="{}",
                    help="the limits on learner code (grader.wire.Limits as JSON; the grader passes them)")
    group.addoption("--call-timeout", type=float, default=None, metavar="S",
                    help=f"wall-clock limit of one call into learner code (default {Limits.call_s:g} s)")
    group.addoption("--submission-timeout", type=float, default=None, metavar="S",
                    help=f"wall-clock limit of all learner calls of one submission (default {Limits.submission_s:g} s)")


class SubmissionError(BaseException):
    """A learner problem that no other input would change (not implemented, missing, crashed,
    forbidden API, timed out). A BaseException, so that hypothesis reports it at once instead of
    searching for a smaller example."""


class LearnerFunctionError(Exception):
    """The learner's function raised on some input: hypothesis shrinks that input. ``unfollowed``:
    in the device pass, the worker could not follow the call (not the learner's doing)."""

    def __init__(self, message: str, unfollowed: bool = False):
        super().__init__(message)
        self.unfollowed = unfollowed


class SideEffect(AssertionError):
    """The learner's function changed one of its inputs in place: a failure of that case."""


class Impl:
    """The learner's topic module: ``impl.rnn_forward(x, ...)`` runs it in the sandbox.

    In a topic of hand-written gradients the learner's code runs where autograd cannot record a graph
    at all (``Sandbox.without_autograd``); the drivers that differentiate its forwards (``graphs``:
    their names, ``open_graphs``: opens their child, again after the learner's own calls) run in a child of their own, where
    the functions written by hand are not."""

    def __init__(self, learner, topic: str, banned: dict[str, list[str]], clock: "Clock",
                 graphs: frozenset = frozenset(), open_graphs=None):
        self._learner, self._topic, self._banned, self._clock = learner, topic, banned, clock
        self._graphs, self._open_graphs, self._graphs_learner = graphs, open_graphs, None

    def _close(self):
        for learner in (self._learner, self._graphs_learner):
            if learner is not None and not isinstance(learner, LearnerError):
                learner.close()

    def _where(self, fn: str, driver: bool, timeout: float):
        """The child that takes this call. No child with autograd lives while the learner's own code
        runs in the other: code of the learner's left in it (a thread, a patched function) could
        compute gradients for a hand-written one and pass them on by whatever two live processes
        share (a red-team pass used the kernel's key store, then pages of files in memory)."""
        if not (driver and self._open_graphs is not None and fn in self._graphs):
            if self._graphs_learner is not None and not isinstance(self._graphs_learner, LearnerError):
                self._graphs_learner.close()  # opened again for the next driver that needs it
                self._graphs_learner = None
            return self._learner
        if self._graphs_learner is None:
            try:
                self._graphs_learner = self._open_graphs(timeout)
                self._graphs_learner.dead = self._learner.dead  # a function that hung is dead in both
            except LearnerError as e:
                self._graphs_learner = e
        return self._graphs_learner

    def __repr__(self):  # hypothesis names the arguments in its messages: no memory address there
        return "impl"

    def __getattr__(self, fn: str):
        if fn.startswith("_"):
            raise AttributeError(fn)
        return lambda *args, **kwargs: self._call(fn, args, kwargs, driver=False)

    def drive(self, fn: str, *args, **kwargs):
        """Run a driver function ``fn(learner_module, *args)`` beside the learner's code: one of
        ``tests/driver.py`` (every topic's) or of ``tests/<topic>/driver.py`` (the topic's own)."""
        return self._call(fn, args, kwargs, driver=True)

    def device_pass(self, where: str, fn: str, *args, **kwargs):
        """Call ``fn`` with its meta inputs given values (the same every time): ``where="elsewhere"``,
        tensors that are on the meta device as far as the learner's code can tell and still carry the
        values (``worker.Elsewhere``); ``where="cpu"``, those values as plain CPU tensors."""
        return self._call(fn, args, kwargs, driver=False, device_pass=where)

    def _refuse_banned(self, fn: str, driver: bool):
        """A call of a function that names a forbidden API (the static check) earns nothing. A driver
        function (tests/driver.py, tests/<topic>/driver.py) may call any of the learner's functions;
        its own name means nothing to a student, so messages then speak of the learner's code."""
        who = sorted(k for k in self._banned if k != "*") if driver else [fn]
        used = sorted(set(self._banned.get("*", []) + [a for k in who for a in self._banned.get(k, [])]))
        if used:
            raise SubmissionError(f"{', '.join(who) or 'your module'} uses {', '.join(used)}, which this "
                                  "exercise asks you to write by hand: no credit for it")

    def _call(self, fn, args, kwargs, driver, device_pass=None):
        if isinstance(self._learner, LearnerError):
            raise SubmissionError(self._learner.message)
        if self._banned:
            self._refuse_banned(fn, driver)
        label = "your code" if driver else fn
        timeout = self._clock.left()
        if timeout <= 0:
            raise SubmissionError("the submission used up its time limit; later tests are not run")
        try:
            learner = self._where(fn, driver, timeout)
            if isinstance(learner, LearnerError):
                raise SubmissionError(learner.message)
            return learner.call(fn, *args, driver=driver, timeout=timeout, device_pass=device_pass, **kwargs)
        except LearnerError as e:
            if e.kind == ErrorKind.NOT_IMPLEMENTED:
                raise SubmissionError(f"{e.message or fn}: not implemented yet") from None
            if e.kind == ErrorKind.SIDE_EFFECT:
                raise SideEffect(e.message) from None
            if e.kind.final:
                raise SubmissionError(f"{label}: {e.message}") from None
            raise LearnerFunctionError(f"{label} raised {e.message}", unfollowed=e.unfollowed) from None
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


def parametrize_submissions(metafunc):
    """The session-scoped parameter ``submission``: every ``--impl`` folder, or ``--slots`` slots
    (the suites' conftest calls this from its ``pytest_generate_tests``)."""
    if "submission" in metafunc.fixturenames:
        if metafunc.config.getoption("slots"):
            slots = _slots(metafunc.config)
            metafunc.parametrize("submission", slots, ids=[s.name for s in slots], scope="session")
            return
        paths = _impls(metafunc.config)
        ids = [os.path.basename(p.rstrip("/")) or p for p in paths]
        if len(set(ids)) < len(ids):
            ids = [f"{i}{n}" for n, i in enumerate(ids)]
        metafunc.parametrize("submission", paths, ids=ids, scope="session")


class Slot:
    """A place for one submission of the grader's queue: its folder is known once the process
    reaches its first test (``path``, None before, and for good when the queue was empty)."""

    def __init__(self, k: int):
        self.name, self.path, self.asked = f"slot{k}", None, False

    def __str__(self):  # results name the submission's folder; the catalogue, made before, the slot
        return self.path or f"slot:{self.name}"


_SLOTS: list[Slot] = []
_QUEUE = None  # the grader's queue (``--queue-fd``)


def _slots(config) -> list[Slot]:
    if not _SLOTS:
        _SLOTS.extend(Slot(k) for k in range(config.getoption("slots")))
    return _SLOTS


def _fill(slot: Slot) -> None:
    """Ask the grader for the next submission of its queue: a line on our results pipe, the answer
    (a folder, or null when the queue is empty) on the queue's pipe."""
    slot.asked = True
    if _GRADER is None or _QUEUE is None or any(s.asked and s.path is None for s in _SLOTS if s is not slot):
        return
    _GRADER.write(json.dumps({"next": slot.name}) + "\n")
    _GRADER.flush()
    answer = _QUEUE.readline()
    slot.path = json.loads(answer) if answer.strip() else None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """A slot's tests run once the grader gave it a submission; a slot left empty runs nothing.
    Grading, a case its marks skip (the CUDA cases on a machine without a GPU) is reported skipped
    at once, as pytest would, without the protocol's setup, call and reports."""
    slot = getattr(getattr(item, "callspec", None), "params", {}).get("submission")
    if isinstance(slot, Slot):
        if not slot.asked:
            _fill(slot)
            _settle_heap()
        if not slot.path:
            return True
    if _GRADER is not None:
        skipped = evaluate_skip_marks(item)
        if skipped is not None:
            _write(CaseResult(item.nodeid.split("[")[0], _params(item), "skipped", "setup",
                              f"Skipped: {skipped.reason}").line())
            item.session._setupstate.teardown_exact(nextitem)  # what the protocol's teardown would end
            return True
    return None


def _settle_heap():
    """Before each submission: what the process made so far (torch, the suites, the examples drawn)
    lives on; the garbage collector stops walking it (a full collection walked it about every second)."""
    gc.collect()
    gc.freeze()


def _path(submission) -> str:
    return str(submission)


def limits_of(config) -> Limits:
    """``--limits``, with ``--call-timeout`` and ``--submission-timeout`` on top when given."""
    limits = Limits.from_dict(json.loads(config.getoption("limits")))
    for name, option in (("call_s", "call_timeout"), ("submission_s", "submission_timeout")):
        if config.getoption(option) is not None:
            limits = dataclasses.replace(limits, **{name: config.getoption(option)})
    return limits


@pytest.fixture(scope="session")
def sandbox(pytestconfig):
    box = Sandbox(slot=pytestconfig.getoption("slot"), limits=limits_of(pytestconfig))
    yield box
    box.kill_all()


_CLOCKS: dict[str, Clock] = {}


def runtime_rules(topic: str) -> list[str]:
    """What the worker refuses while the topic's code runs (see ``Watch`` in ``grader/worker.py``)."""
    rules = GRADING.get(topic, {})
    return [*rules.get("forbidden_ops", []), *[f"python:{m}" for m in rules.get("forbidden_python", [])],
            *[f"name:{n}" for n in rules.get("forbidden_names", [])],
            *[f"autograd:{f}" for f in rules.get("hand_gradients", [])]]


def topic_of(module) -> str:
    return module.__name__.split(".")[1]


@pytest.fixture(scope="module")
def impl(request, sandbox, submission):
    topic = topic_of(request.module)
    limits = limits_of(request.config)
    submission = _path(submission)
    clock = _CLOCKS.setdefault(submission, Clock(limits.call_s, limits.submission_s))
    driver, graphs = _drivers(topic)
    by_hand = bool(GRADING.get(topic, {}).get("hand_gradients"))
    forbidden = GRADING.get(topic, {}).get("forbidden", [])
    banned: dict[str, list[str]] = {}
    try:
        files = topic_files(submission, topic)
        box = sandbox.without_autograd() if by_hand else sandbox  # the learner's own calls: no autograd there
        box.ready()  # a restart that the last submission caused is not this one's time
        if by_hand and graphs:
            sandbox.ready()
        clock.left()
        try:  # the static check's time is the submission's, as its calls' is
            banned = violations(files, forbidden)
        finally:
            clock.stop()
        timeout = clock.left()
        try:
            learner = box.open(topic, files, driver, runtime_rules(topic), timeout=max(timeout, 0.1))
        finally:
            clock.stop()
    except LearnerError as e:
        learner = e

    def open_graphs(timeout: float):
        return sandbox.open(topic, files, driver, runtime_rules(topic), timeout=max(timeout, 0.1), graphs=True)

    impl = Impl(learner, topic, banned, clock, graphs, open_graphs if by_hand and graphs else None)
    yield impl
    impl._close()


@functools.lru_cache(maxsize=None)
def _drivers(topic: str) -> tuple[str | None, frozenset]:
    """The drivers' source (``tests/driver.py``, then ``tests/<topic>/driver.py``) and the names of
    those that differentiate the learner's forwards, as each file's ``DIFFERENTIATE`` lists them."""
    sources = [open(p).read() for p in (os.path.join(TESTS, "driver.py"), os.path.join(TESTS, topic, "driver.py"))
               if os.path.exists(p)]
    graphs: set = set()
    for source in sources:
        for node in ast.parse(source).body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "DIFFERENTIATE"
                                                    for t in node.targets):
                graphs |= set(ast.literal_eval(node.value))
    return "\n\n".join(sources) or None, frozenset(graphs)


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
    return {k: (str(v).removeprefix("torch.") if k != "submission" else _path(v)) for k, v in params.items()}


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
    config.addinivalue_line("markers", "gated: the test's credit counts only as far as the rest of its topic "
                                       "passes (a check of how code runs, e.g. on which device, not of what it computes)")
    if config.getoption("results"):
        _RESULTS = open(config.getoption("results"), "a")
    if config.getoption("results_fd") is not None:
        _GRADER = os.fdopen(config.getoption("results_fd"), "w")
        _not_dumpable()
    if config.getoption("queue_fd") is not None:
        global _QUEUE
        _QUEUE = os.fdopen(config.getoption("queue_fd"), "r")


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
        cases = [asdict(CaseResult(item.nodeid.split("[")[0], _params(item), gated=bool(item.get_closest_marker("gated"))))
                 for item in items]
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
    _write(CaseResult(report.nodeid.split("[")[0], getattr(report, "dlkata", {}), report.outcome, report.when,
                      message).line())


def _write(line: str):
    for out in (_RESULTS, _GRADER):
        if out is not None:
            out.write(line)
            out.flush()


# ---- Replaying examples -------------------------------------------------------------------------
# Derandomized, hypothesis draws the same examples for every submission: they depend on the test's
# source, never on the code under test. So a grading process draws each test's examples once
# (hypothesis runs with a recorder in place of the test's body) and then runs the body on those
# examples for each submission, without hypothesis' engine. A submission that fails an example is run
# again under hypothesis, which meets the same failure and shrinks it as always: the outcome and the
# message are those of a plain hypothesis run, and only failing tests pay for it. A ``SubmissionError``
# (a BaseException: hypothesis neither shrinks nor annotates it) is raised as it is.

_EXAMPLES: dict = {}  # the test function -> its examples, as keyword arguments, in hypothesis' order


def _digest_of_original(digest):
    """Derandomized draws are seeded from a digest of the test function: the recorder that stands
    in for the test must seed them as the test itself does."""
    def function_digest(f):
        return digest(getattr(f, "__dlkata_recorded__", f))
    return function_digest


hypothesis.core.function_digest = _digest_of_original(hypothesis.core.function_digest)


def _examples(test, funcargs: dict) -> list[dict]:
    """Every example hypothesis runs for ``test`` when no example fails: explicit ones first."""
    if test not in _EXAMPLES:
        h = test.hypothesis
        inner, seen = h.inner_test, []

        def record(*args, **kwargs):
            seen.append({k: v for k, v in kwargs.items() if k not in funcargs})

        record.__dlkata_recorded__ = inner
        h.inner_test = record
        try:
            test(**funcargs)
        finally:
            h.inner_test = inner
        _EXAMPLES[test] = seen
    return _EXAMPLES[test]


_SEEDED = random.Random(0).getstate()  # the state of Python's global generator in each example of hypothesis


def replaying() -> bool:
    return settings.default.derandomize and os.environ.get("DLKATA_REPLAY", "1") != "0"


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    test = pyfuncitem.obj
    if getattr(test, "hypothesis", None) is None or not replaying():
        return None
    funcargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    inner = test.hypothesis.inner_test
    for example in _examples(test, funcargs):
        try:
            random.setstate(_SEEDED)  # what hypothesis' deterministic_PRNG() gives a test's body, at a
            inner(**funcargs, **example)  # fraction of its cost (the suites use no other global generator)
        except (KeyboardInterrupt, SubmissionError):  # hypothesis would not search further either
            raise
        except BaseException:  # noqa: BLE001 - hypothesis runs it again, finds it, and shrinks it
            return None
    return True
