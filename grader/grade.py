"""Running the hidden suites over submissions, several pytest processes at once.

Each pytest process is trusted code (the hidden suites and their comparisons); learner code only
ever runs in the sandboxed workers those processes start. A process grades a chunk of submissions
(``--impl`` repeated), so the interpreter, torch and the suites load once per chunk, not per student.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field

from grader import submission as sub

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


@dataclass
class Submission:
    """One student's work: ``name`` (from the folder or zip name), ``root`` (the folder laid out like
    ``exercises/``, None when it could not be read) and ``problem`` (why not)."""
    name: str
    source: str
    root: str | None = None
    problem: str | None = None
    digest: str | None = None
    results: list = field(default_factory=list)


def collect(path: str, topics: list[str], workdir: str) -> list[Submission]:
    """One submission (a folder or zip laid out like ``exercises/``) or a class (a folder of them)."""
    path = os.path.abspath(path)
    if os.path.isfile(path) or sub.find_root(path, topics):
        return [_prepare(path, topics, workdir)]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no such folder or zip: {path}")
    entries = sorted(e for e in os.listdir(path) if not e.startswith("."))
    return [_prepare(os.path.join(path, e), topics, workdir) for e in entries
            if os.path.isdir(os.path.join(path, e)) or e.endswith(".zip")]


def _prepare(path: str, topics, workdir: str) -> Submission:
    name = os.path.basename(path.rstrip("/"))
    s = Submission(name=name.removesuffix(".zip"), source=path)
    folder = path
    if os.path.isfile(path):
        folder = tempfile.mkdtemp(prefix="unzipped-", dir=workdir)
        try:
            sub.unpack(path, folder)
        except sub.BadArchive as e:
            s.problem = f"the archive was refused: {e}"
            return s
    if os.path.islink(path):
        s.problem = "the submission is a symbolic link"
        return s
    s.root = sub.find_root(folder, topics)
    if s.root is None:
        s.problem = "no topic folder found (expected folders such as " + ", ".join(f"{t}/" for t in topics[:3]) + ")"
        s.root = folder  # graded anyway: every topic reports what is missing
    s.digest = sub.digest(s.root, topics)
    return s


def _chunks(items: list, n: int) -> list[list]:
    """``n`` chunks of similar size, dealt in an order that spreads neighbours (who may share a
    problem, e.g. a class whose hostile submissions sort together) over different chunks."""
    n = max(1, min(n, len(items)))
    dealt = sorted(items, key=lambda s: hashlib.sha256(s.name.encode()).hexdigest())
    return [dealt[i::n] for i in range(n)]


def run(submissions: list[Submission], topics: list[str], *, jobs: int, workdir: str,
        call_timeout: float = 10.0, submission_timeout: float = 120.0, progress=None) -> list[str]:
    """Run the hidden suites of ``topics`` over ``submissions``; fill each one's ``results`` (one dict
    per test case, see ``tests/conftest.py``). Returns problems of the grading itself (empty when fine)."""
    gradable = [s for s in submissions if s.root]
    by_root = {s.root: s for s in gradable}
    suites = [os.path.join(SUITE, t) for t in topics]
    procs = []
    base = (os.getpid() * 16) % 3900
    for k, chunk in enumerate(_chunks(gradable, jobs)):
        results = os.path.join(workdir, f"results-{k}.jsonl")
        log = open(os.path.join(workdir, f"pytest-{k}.log"), "w")
        cmd = [sys.executable, "-m", "pytest", *suites, "-q", "--tb=no", "--assert=plain", "--capture=no",
               "-p", "no:cacheprovider", "-p", "no:logging", "-p", "no:warnings", "-o", "addopts=",
               f"--rootdir={ROOT}", f"--results={results}", f"--slot={base + k}",
               f"--call-timeout={call_timeout}", f"--submission-timeout={submission_timeout}",
               *[f"--impl={s.root}" for s in chunk]]
        env = {**os.environ, "PYTHONHASHSEED": "0", "DLKATA_HYPOTHESIS_PROFILE": "grading", "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        limit = time.monotonic() + 120 + len(chunk) * (submission_timeout + 60 * len(topics))
        procs.append((proc, results, chunk, log, limit))
    problems = []
    pending = list(procs)
    while pending:
        time.sleep(0.2)
        if progress:
            progress(sum(_done(r, c, p.poll() is not None) for p, r, c, _, _ in procs), len(gradable))
        for item in list(pending):
            proc, results, chunk, log, limit = item
            if proc.poll() is None and time.monotonic() > limit:
                proc.kill()
                problems.append(f"grading process {procs.index(item)} ran past its time limit and was stopped")
            if proc.poll() is not None:
                pending.remove(item)
                log.close()
                if proc.returncode not in (0, 1):
                    problems.append(f"grading process {procs.index(item)} ended with code {proc.returncode} "
                                    f"(see {log.name})")
    for _, results, _, _, _ in procs:
        if os.path.exists(results):
            with open(results) as f:
                for line in f:
                    r = json.loads(line)
                    s = by_root.get(r["params"].pop("submission", None))
                    if s is not None:
                        s.results.append(r)
    return problems


def _done(results: str, chunk: list, finished: bool) -> int:
    """Submissions of a chunk already graded: those before the one being graded now."""
    if finished:
        return len(chunk)
    try:
        with open(results, "rb") as f:
            f.seek(max(0, os.path.getsize(results) - 4096))
            tail = f.read().decode(errors="replace").splitlines()
        current = json.loads(tail[-1])["params"]["submission"]
    except (OSError, IndexError, ValueError, KeyError):
        return 0
    roots = [s.root for s in chunk]
    return roots.index(current) if current in roots else 0
