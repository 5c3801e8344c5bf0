"""Running the hidden suites over submissions, several pytest processes at once.

Each pytest process is trusted code (the hidden suites and their comparisons); learner code only
ever runs in the sandboxed workers those processes start. A process grades one submission after
another, each taken from the grader's queue when it is done with the one before, so the interpreter,
torch and the suites load once per process, not per student, and a slow submission holds up one
process only.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import select
import subprocess
import sys
import tempfile
import time
import tomllib
import unicodedata
from dataclasses import dataclass, field

import torch

from grader import submission as sub
from grader.plugin import CaseResult
from grader.report import inert
from grader.wire import Limits

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SUITE = os.path.join(ROOT, "tests")


def load_config(suite: str = SUITE) -> dict:
    """``tests/grading.toml``: per topic its weight, forbidden APIs and test weights."""
    with open(os.path.join(suite, "grading.toml"), "rb") as f:
        return tomllib.load(f)


def topics_of(config: dict | None = None, suite: str = SUITE) -> list[str]:
    """Topics of ``tests/grading.toml`` that have a hidden suite ``tests/<topic>/test_<topic>.py``,
    in the order of that file."""
    listed = load_config(suite) if config is None else config
    return [t for t in listed if os.path.isfile(os.path.join(suite, t, f"test_{t}.py"))]


def chosen_topics(text: str | None, known: list[str]) -> list[str]:
    """The topics of a ``--topics a,b`` option (all of ``known`` when none); ValueError names the unknown."""
    if not text:
        return list(known)
    topics = [t.strip() for t in text.split(",") if t.strip()]
    unknown = sorted(set(topics) - set(known))
    if unknown:
        raise ValueError(f"unknown topic(s): {', '.join(unknown)} (known: {', '.join(known)})")
    return topics


@dataclass
class Submission:
    """One student's work: ``name`` (from the folder or zip name), ``root`` (the folder laid out like
    ``exercises/``, None when it could not be read) and ``problem`` (why not)."""
    name: str
    source: str
    root: str | None = None
    problem: str | None = None
    digest: str | None = None
    results: list[CaseResult] = field(default_factory=list)
    cases: list[CaseResult] = field(default_factory=list)  # the catalogue: every case its grading process collected
    graded_by: int | None = None  # which grading process took it from the queue


def collect(path: str, topics: list[str], workdir: str) -> list[Submission]:
    """One submission (a folder or zip laid out like ``exercises/``) or a class (a folder of them)."""
    path = os.path.abspath(path)
    if os.path.isfile(path) or sub.find_root(path, topics):
        return [_prepare(path, topics, workdir)]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no such folder or zip: {path}")
    entries = sorted(e for e in os.listdir(path) if not e.startswith("."))
    return _distinct([_prepare(os.path.join(path, e), topics, workdir) for e in entries
                      if os.path.isdir(os.path.join(path, e)) or _is_zip(e)])


def _is_zip(name: str) -> bool:
    return name.strip().lower().endswith(".zip")


def _same_student(name: str) -> str:
    """What two names that would be read as the same student have in common: compatibility forms
    (full-width letters, a separate accent), invisible characters, case, Cyrillic and Greek letters
    drawn like Latin ones, and spaces or dots around it set aside."""
    name = unicodedata.normalize("NFKC", name)
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cf", "Cc", "Zl", "Zp", "Mn")
                   and ch not in _BLANKS)
    return name.strip(" .\t").translate(_LOOK_ALIKES).casefold()


# Letters drawn as nothing at all: Hangul fillers, Khmer inherent vowels, the braille blank (marks
# that join nothing, variation selectors and the grapheme joiner are category Mn, left out above)
_BLANKS = set("\u115f\u1160\u17b4\u17b5\u3164\uffa0\u2800")


# Cyrillic and Greek letters drawn as a Latin one: "аlice" with a Cyrillic а, "ΑLICE" with a Greek Α
_LOOK_ALIKES = str.maketrans("аеорсухіјѕԁһԛԝүкαειкνορυχ" "АВЕКМНОРСТХУІЈЅҮ" "ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ" "ӏıɑ",
                             "aeopcyxijsdhqwykaeikvopux" "ABEKMHOPCTXYIJSY" "ABEZHIKMNOPTYX" "lia")


def _distinct(subs: list[Submission]) -> list[Submission]:
    """Entries of a class folder that would be one student (``alice/`` and ``alice.zip``, or names
    that differ only in case, in invisible characters, in spaces or dots around them, or in the
    Unicode form of the same letters: ``_same_student``) are graded under their entries' own names
    and flagged: which one is that student's cannot be told, so none of them is recorded as that
    student (a file named after a classmate must not take the classmate's grade, nor pass for it in
    a table or an LMS import that trims or normalizes names)."""
    # Two names are one student when they read the same (``_same_student``) or are shown the same
    # (``inert``: "bob\x01" with a control character, and "bob\\x01" typed out): the groups join.
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    reads = ["reads " + _same_student(s.name) for s in subs]
    for key, s in zip(reads, subs):
        a, b = root(key), root("shown " + inert(s.name))
        if a != b:
            parent[a] = b
    groups: dict[str, list[Submission]] = {}
    for key, s in zip(reads, subs):
        groups.setdefault(root(key), []).append(s)
    taken = {_same_student(g[0].name) for g in groups.values() if len(g) == 1}  # a flagged entry's name gives way
    given: set[str] = set()
    for same in (g for g in groups.values() if len(g) > 1):
        entries = sorted(os.path.basename(s.source) for s in same)
        for s in same:
            entry = os.path.basename(s.source)
            note = (f"{len(same)} submissions claim the student name {s.name!r} ({', '.join(entries)}): each is "
                    "graded under its own file's name, none as that student; rename them and grade again")
            name = entry if _is_zip(entry) else f"{entry} (folder)"
            s.name = next(n for n in (name if k == 1 else f"{name} ({k})" for k in itertools.count(1))
                          if _same_student(n) not in taken and n not in given)  # "alice (folder)" keeps its name
            given.add(s.name)
            s.problem = f"{s.problem}; {note}" if s.problem else note
    return subs


def _prepare(path: str, topics, workdir: str) -> Submission:
    """A submission ready to grade, or refused with its ``problem``: nothing in one submission (an
    archive or a folder however malformed) stops the others from being graded."""
    name = os.path.basename(path.rstrip("/"))
    name = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")  # names that are not text
    name = name.replace("\n", "\\n")  # one line, as every table shows it: no row of its own making
    s = Submission(name=name.rstrip()[:-4] if _is_zip(name) else name, source=path)
    try:
        _read(s, path, topics, workdir)
    except Exception as e:  # noqa: BLE001 - a bad submission costs only itself
        s.root, s.digest = None, None
        s.problem = f"the submission could not be read ({type(e).__name__}: {str(e)[:200]})"
    return s


def _read(s: Submission, path: str, topics, workdir: str) -> None:
    if os.path.islink(path):
        s.problem = "the submission is a symbolic link"
        return
    folder = path
    if os.path.isfile(path):
        folder = tempfile.mkdtemp(prefix="unzipped-", dir=workdir)
        try:
            sub.unpack(path, folder)
        except sub.BadArchive as e:
            s.problem = f"the archive was refused: {e}"
            return
    s.root = sub.find_root(folder, topics)
    if s.root is None:
        s.problem = "no topic folder found (expected folders such as " + ", ".join(f"{t}/" for t in topics[:3]) + ")"
        s.root = folder  # graded anyway: every topic reports what is missing
    try:
        s.root.encode("utf-8")
    except UnicodeEncodeError:
        s.root, s.problem = None, "the submission's folder name is not valid text (UTF-8): rename it"
        return
    s.digest = sub.digest(s.root, topics)


# pytest's plugins that the hidden suites do not use: each costs hook calls on every test case.
UNUSED_PLUGINS = ("cacheprovider", "logging", "warnings", "doctest", "junitxml", "pastebin", "unittest", "stepwise",
                  "setuponly", "setupplan", "threadexception", "unraisableexception", "debugging", "subtests",
                  "legacypath", "tmpdir", "monkeypatch", "recwarn", "anyio")


def _pytest(suites: list[str], impls: list[str], fd: int, extra=()) -> list[str]:
    return [sys.executable, "-m", "pytest", *suites, "-q", "--tb=no", "--assert=plain", "--capture=no",
            *[a for name in UNUSED_PLUGINS for a in ("-p", f"no:{name}")], "-o", "addopts=",
            f"--rootdir={ROOT}", f"--results-fd={fd}", *extra, *[f"--impl={p}" for p in impls]]


class _Pipe:
    """JSON lines from one grading process: its catalogue, its requests for the next submission, its
    results. A pipe, not a file: no other process can open it to add lines (the grading processes and
    we are not dumpable)."""

    def __init__(self):
        self.read, self.write = os.pipe()
        self.buffer = b""
        self.lines: list[dict] = []
        self.open = True

    def pump(self) -> list[dict]:
        data = os.read(self.read, 1 << 16)
        if not data:
            self.open = False
            os.close(self.read)
        self.buffer += data
        *done, self.buffer = self.buffer.split(b"\n")
        new = [json.loads(line) for line in done if line.strip()]
        self.lines.extend(new)
        return new


def _env() -> dict:
    return {**os.environ, "PYTHONHASHSEED": "0", "DLKATA_HYPOTHESIS_PROFILE": "grading", "OMP_NUM_THREADS": "1"}


@dataclass
class _Process:
    """One grading process: its results pipe, the write end of its queue, and the submissions it took
    (``slots``: slot name -> submission; ``current``: the one it grades now)."""
    proc: subprocess.Popen
    pipe: _Pipe
    queue: int
    log: object
    limit: float
    slots: dict = field(default_factory=dict)
    current: Submission | None = None


def run(submissions: list[Submission], topics: list[str], *, jobs: int, workdir: str,
        limits: Limits = Limits(), progress=None) -> list[str]:
    """Run the hidden suites of ``topics`` over ``submissions``; fill each one's ``cases`` (the catalogue
    of its grading process) and ``results`` (a ``CaseResult`` per test case, see ``grader/plugin.py``).
    Returns problems of the grading itself (empty when fine).

    ``jobs`` grading processes take the submissions from one queue, in order, each when it is done
    with the one before: a slow submission holds up one process, not a share of the class. A process
    that ends in the middle of a submission (stopped at its time limit, or crashed) costs that
    submission only: another process takes its place for the rest of the queue."""
    gradable = [s for s in submissions if s.root]
    queue = list(gradable)
    by_root = {s.root: s for s in gradable}
    suites = [os.path.join(SUITE, t) for t in topics]
    jobs = max(1, min(jobs, len(gradable)))
    # Slots per process: enough for the others to take over the whole class from one held up (a slot
    # that stays empty costs its collection only, about 40 ms of CPU).
    slots = -(-len(gradable) // max(1, jobs - 1))
    per_submission = limits.submission_s + 60 * len(topics)  # a process that takes longer is stopped
    procs: list[_Process] = []
    base = (os.getpid() * 16) % 3900

    def start() -> _Process:
        k = len(procs)  # a process of its own index, sandbox slot and log, replacements included
        pipe = _Pipe()
        queue_r, queue_w = os.pipe()
        log = open(os.path.join(workdir, f"pytest-{k}.log"), "w")
        cmd = _pytest(suites, [], pipe.write, [f"--slot={base + k}", f"--limits={json.dumps(limits.as_dict())}",
                                               f"--slots={slots}", f"--queue-fd={queue_r}"])
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=_env(),
                                pass_fds=(pipe.write, queue_r))
        os.close(pipe.write)
        os.close(queue_r)
        procs.append(_Process(proc, pipe, queue_w, log, time.monotonic() + 120 + per_submission))
        return procs[-1]

    for _ in range(jobs if gradable else 0):
        start()
    problems = []
    pending = list(procs)
    while pending:
        readable = select.select([p.pipe.read for p in pending if p.pipe.open], [], [], 0.2)[0]
        for p in pending:
            if p.pipe.open and p.pipe.read in readable:
                for line in p.pipe.pump():
                    if "next" in line:
                        p.current = queue.pop(0) if queue else None
                        if p.current is not None:
                            p.slots[str(line["next"])] = p.current
                            p.current.graded_by = procs.index(p)
                            p.limit = time.monotonic() + per_submission
                        _answer(p.queue, p.current.root if p.current else None)
        if progress:
            progress(len(gradable) - len(queue) - sum(p.current is not None for p in pending), len(gradable))
        for p in list(pending):
            if p.proc.poll() is None and time.monotonic() > p.limit:
                p.proc.kill()
                problems.append(f"grading process {procs.index(p)} ran past its time limit and was stopped")
            if p.proc.poll() is not None and not p.pipe.open:
                pending.remove(p)
                lost, p.current = p.current, None
                p.log.close()
                os.close(p.queue)
                if p.proc.returncode not in (0, 1):
                    problems.append(f"grading process {procs.index(p)} ended with code {p.proc.returncode} "
                                    f"(see {p.log.name})")
                if lost is not None and queue:  # it ended in the middle of a submission: the rest is not lost
                    pending.append(start())
    if queue:
        problems.append(f"{len(queue)} submission(s) were not graded: every grading process ended first")
    for p in procs:
        taken = {id(s) for s in p.slots.values()}  # a result counts only for a submission this process took
        for r in p.pipe.lines:
            for case in map(CaseResult.parse, r.get("catalogue", [])):
                s = p.slots.get(case.params.pop("submission", "").removeprefix("slot:"))
                if s is not None:
                    s.cases.append(case)
            if "params" in r and "catalogue" not in r:
                result = CaseResult.parse(r)
                s = by_root.get(result.params.pop("submission", None))
                if s is not None and id(s) in taken:
                    s.results.append(result)
    return problems


def _answer(fd: int, root: str | None) -> None:
    try:
        os.write(fd, (json.dumps(root) + "\n").encode())
    except OSError:  # the process has ended meanwhile: its exit is seen next
        pass


def catalogue(topics: list[str], workdir: str) -> list[dict]:
    """The cases of ``topics`` for one submission, from collecting the suites only (no learner code)."""
    pipe = _Pipe()
    empty = tempfile.mkdtemp(dir=workdir)
    cmd = _pytest([os.path.join(SUITE, t) for t in topics], [empty], pipe.write, ["--collect-only"])
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(),
                            pass_fds=(pipe.write,))
    os.close(pipe.write)
    while pipe.open:
        pipe.pump()
    proc.wait()
    cases = [CaseResult.parse(c) for r in pipe.lines for c in r.get("catalogue", [])]
    for c in cases:
        c.params.pop("submission", None)
    return cases


def suite_digest(topics) -> str:
    """sha256 of everything that decides a grade: the hidden suites of ``topics``, their harness
    (``tests/*.py``, the comparisons they share with the handout, the grading plugin, the scoring)
    and the weights."""
    h = hashlib.sha256()
    harness = [os.path.join(SUITE, n) for n in sorted(os.listdir(SUITE)) if n.endswith(".py")]
    shared = os.path.join(ROOT, "exercises", "dlkata")
    harness += [os.path.join(shared, n) for n in sorted(os.listdir(shared)) if n.endswith(".py")]
    files = [*harness, os.path.join(SUITE, "grading.toml"), os.path.join(HERE, "plugin.py"), os.path.join(HERE, "score.py")]
    for t in sorted(topics):
        folder = os.path.join(SUITE, t)
        files += [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith((".py", ".toml"))]
    for path in files:
        h.update(os.path.relpath(path, ROOT).encode() + b"\0")
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


@dataclass
class ClassReport:
    """A graded class: one report per submission (``score.score``'s dicts, in the order of the
    submissions) and the run's facts (``meta``: suite hash, topics, isolation, CUDA, cases not run, a
    note, problems of the grading itself, seconds)."""
    reports: list[dict]
    meta: dict


def grade_class(subs: list[Submission], topics: list[str], config: dict, *, limits: Limits, jobs: int,
                workdir: str, isolation: str, progress=None) -> ClassReport:
    """Run the hidden suites over ``subs`` (from ``collect``), score every submission against its
    catalogue of cases, and say what went wrong with the grading itself (``meta["problems"]``)."""
    from grader import score  # it reads Submission from here
    start = time.monotonic()
    problems = run(subs, topics, jobs=jobs, workdir=workdir, limits=limits, progress=progress)
    broken = [r for s in subs for r in s.results if r.when != "call" and r.outcome == "failed"]
    if broken:  # the harness itself failed (not learner code): the grades cannot be trusted
        problems.append(f"{len(broken)} test case(s) could not be set up, e.g.: {broken[0].message}")
    generic = next((s.cases for s in subs if s.cases), None)
    if generic is None or any(s.root and not s.cases for s in subs):  # from collecting the suites alone
        generic = catalogue(topics, workdir)
    reports = [score.score(s, topics, config, s.cases or generic) for s in subs]
    no_result = sum(r["no_result"] for r in reports)
    if no_result:
        problems.append(f"{no_result} case(s) have no result: the grading process was interrupted "
                        "(they count as failed)")
    cuda = torch.cuda.is_available()
    note = ("" if cuda else "CUDA cases were not run (no GPU on this machine): scores count the CPU cases only; "
            "a submission that fails only on CUDA would score lower on a machine with a GPU.")
    meta = {"suite_sha256": suite_digest(topics), "topics": topics, "isolation": isolation, "cuda": cuda,
            "not_run_cases": sum(t["not_run_cases"] for r in reports for t in r["topics"]), "note": note,
            "problems": problems, "seconds": round(time.monotonic() - start, 2)}
    return ClassReport(reports, meta)
