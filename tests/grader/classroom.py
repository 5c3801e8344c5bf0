"""Building classes of submissions from ``hostile/`` sources, and running the grader over them.

A hostile source is appended to the reference solution of ``perplexity`` (so that it can wrap or replace
the right functions); ``__ROOT__``, ``__PORT__``, ... in it are replaced by paths of the test run.
"""
from __future__ import annotations

import ast
import io
import json
import os
import stat
import subprocess
import sys
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
HOSTILE = os.path.join(HERE, "hostile")
SOLUTION = os.path.join(ROOT, "solutions", "perplexity", "perplexity.py")
SUITE_FILE = os.path.join(ROOT, "tests", "perplexity", "test_perplexity.py")
PYTHON = sys.executable
TOPIC = "perplexity"
with open(SUITE_FILE) as _f:  # the suite's test functions, in order, and those that are gated
    _TESTS = [n for n in ast.parse(_f.read()).body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
TESTS = [n.name for n in _TESTS]
GATED = {n.name for n in _TESTS if any("gated" in ast.unparse(d) for d in n.decorator_list)}
DEVICES = "test_device_propagation"  # the device pass: devices, not values


def solution_source() -> str:
    with open(SOLUTION) as f:
        return f.read()


def hostile_source(name: str, **subst: str) -> str:
    with open(os.path.join(HOSTILE, f"{name}.py")) as f:
        text = f.read()
    text = text.replace("__ROOT__", ROOT)
    for key, value in subst.items():
        text = text.replace(f"__{key.upper()}__", str(value))
    return solution_source() + "\n\n# ---- hostile part: tests/grader/hostile/" + name + ".py ----\n" + text


def write_submission(folder: str, sources: dict[str, str]) -> str:
    """``folder/<topic>/<topic>.py`` (and any other files: ``{relative path: text}``)."""
    for rel, text in sources.items():
        path = os.path.join(folder, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    return folder


def good(folder: str) -> str:
    return write_submission(folder, {f"{TOPIC}/{TOPIC}.py": solution_source()})


def zip_bytes(entries: list[tuple[str, str | None, int]]) -> bytes:
    """A zip of ``(name, text or None for a folder, unix mode)`` entries (a mode with S_IFLNK makes a link)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text, mode in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            zf.writestr(info, text or "")
    return buf.getvalue()


def run_grader(path: str, out: str, *, topics: str = TOPIC, jobs: int = 2, call_timeout: float = 3,
               submission_timeout: float = 30, extra=(), env=None, timeout: float = 300, expect: int = 0) -> dict:
    """``grader PATH --json``'s report, plus ``_pid`` (the grader's pid: its sandboxes' uids derive from it).
    ``extra=["--unsandboxed"]`` with ``env={"DLKATA_SANDBOX": "rlimits"}`` grades without namespaces."""
    cmd = [PYTHON, "-m", "grader", path, "--topics", topics, "--json", "--call-timeout", str(call_timeout),
           "--submission-timeout", str(submission_timeout), "--out", out, "--jobs", str(jobs), *extra,
           *unsandboxed_if_needed({**os.environ, **(env or {})})]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
    assert proc.returncode == expect, f"grader exited with {proc.returncode}\n{stdout[-3000:]}\n{stderr[-3000:]}"
    report = json.loads(stdout)
    report["_pid"], report["_jobs"], report["_stderr"] = proc.pid, jobs, stderr
    return report


def run_text(path: str, out: str, *, topics: str = TOPIC, timeout: float = 300) -> str:
    """What ``grader PATH`` prints for the instructor (tables), stdout and stderr together."""
    cmd = [PYTHON, "-m", "grader", path, "--topics", topics, "--out", out, "--jobs", "2", "--call-timeout", "3",
           *unsandboxed_if_needed(os.environ)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          errors="surrogateescape")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def unsandboxed_if_needed(env) -> list[str]:
    """``["--unsandboxed"]`` where the grader would refuse (no bubblewrap, or DLKATA_SANDBOX=rlimits)."""
    from grader.sandbox import bwrap
    return ["--unsandboxed"] if env.get("DLKATA_SANDBOX") == "rlimits" or bwrap() is None else []


def sandbox_uids(report: dict) -> set[int]:
    """The uids that the grading processes of a ``run_grader`` report gave their sandboxes' children
    (see ``grader.grade.run``: slot ``(pid * 16) % 3900 + k`` for process k, and ``Sandbox.uids``: each
    slot's two servers, with and without autograd)."""
    from grader.sandbox import Sandbox
    base = (report["_pid"] * 16) % 3900
    return {u for k in range(report["_jobs"]) for autograd in (True, False)
            for u in Sandbox(slot=base + k, autograd=autograd).uids()}


def by_name(report: dict) -> dict[str, dict]:
    return {s["name"]: s for s in report["submissions"]}


def topic_of(sub: dict, topic: str = TOPIC) -> dict:
    return next(t for t in sub["topics"] if t["topic"] == topic)


def tests_of(sub: dict, topic: str = TOPIC) -> dict[str, dict]:
    return {t["test"]: t for t in topic_of(sub, topic)["tests"]}


def messages(sub: dict) -> list[str]:
    """Everything a student reads about a submission: problem, reasons, per-test feedback."""
    out = [sub["problem"] or ""]
    for t in sub["topics"]:
        out.append(t["reason"])
        out += [x["feedback"] for x in t["tests"]]
    return [m for m in out if m]


def source_lines(path: str) -> list[str]:
    """Lines of code of a hidden file that feedback must never quote (long enough to be telling;
    string literals and comments left out, since the suite's own messages come from them)."""
    out = []
    with open(path) as f:
        for line in f:
            s = line.strip()
            if len(s) >= 16 and not s.startswith(("#", '"', "'")):
                out.append(s)
    return out


def processes_of(uids) -> list[int]:
    """Pids of live (not zombie) processes running as one of ``uids``."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.stat(f"/proc/{pid}").st_uid not in uids:
                    continue
                with open(f"/proc/{pid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if state not in ("Z", "X"):
                found.append(int(pid))
    return found


def _is_fork_server(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"grader.worker import main" in f.read()
    except OSError:
        return False


def wait_until_gone(uids, seconds: float = 10.0, keep_server: bool = False) -> list[int]:
    """Processes of ``uids`` still alive after ``seconds`` (killed ones take a moment to go); with
    ``keep_server``, the sandbox's fork server (which is meant to live on) does not count."""
    deadline = time.monotonic() + seconds
    while True:
        left = [p for p in processes_of(uids) if not (keep_server and _is_fork_server(p))]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def make_world_writable(path: str) -> None:
    os.makedirs(path, exist_ok=True)
    os.chmod(path, stat.S_IRWXU | stat.S_IRWXG | stat.S_IRWXO)


HOSTILE_CASES = ["missing_function", "wrong_returns", "nan_result", "infinite_loop",
                 "memory_bomb", "fork_bomb", "sys_exit", "os_exit", "segfault", "output_flood", "channel_garbage",
                 "patch_allclose", "tensor_subclass", "caller_frames", "sys_modules_reference", "conftest_hook",
                 "forged_results", "read_solution", "read_hidden_suite", "network",
                 "proc_mem", "inherited_fds", "lingering", "classmate_files", "read_via_proc", "loopback_listener",
                 "fill_tmp"]
# Right solutions; the grader's queue hands submissions to the grading processes in the order of their
# names (``grader.grade.run``): these come first, between the hostile ones, and last of all.
GOOD = ["a_good", "k_good", "r_good", "zz_good", "zipped_good"]


def build_class(folder: str, *, out: str, markers: str, open_markers: str, port: int, listen_port: int = 0,
                tag: str = "dlkata-hostile") -> str:
    """A class of every hostile case, a syntax error, bad zips, and right solutions before, between and
    after them (``GOOD``). Returns the class folder. ``tag`` starts the names of the files that hostile
    cases leave in /tmp; ``listen_port`` is where ``loopback_listener`` listens."""
    os.makedirs(folder)
    for name in GOOD[:-1]:
        good(os.path.join(folder, name))
    subst = {"out": out, "markers": markers, "open_markers": open_markers, "port": port,
             "listen_port": listen_port, "tag": tag}
    for name in HOSTILE_CASES:
        sub = os.path.join(folder, name)
        subst["submission"] = sub
        write_submission(sub, {f"{TOPIC}/{TOPIC}.py": hostile_source(name, **subst)})
    conftest = _conftest_text()
    write_submission(os.path.join(folder, "conftest_hook"), {"conftest.py": conftest, f"{TOPIC}/conftest.py": conftest})
    write_submission(os.path.join(folder, "syntax_error"),
                     {f"{TOPIC}/{TOPIC}.py": solution_source().replace("def token_nll(", "def token_nll((", 1)})
    write_submission(os.path.join(folder, "no_topic_folder"), {"notes.txt": "forgot to copy the exercises"})
    sol = solution_source()
    zips = {
        "zipped_good": [("work/", None, 0o40755), ("work/perplexity/", None, 0o40755),
                        ("work/perplexity/perplexity.py", sol, 0o100644)],
        "zip_absolute": [("/tmp/perplexity/perplexity.py", sol, 0o100644)],
        "zip_dotdot": [("perplexity/../../escaped.py", sol, 0o100644), ("perplexity/perplexity.py", sol, 0o100644)],
        "zip_symlink": [("perplexity/perplexity.py", SOLUTION, 0o120777)],
        "zip_not_a_zip": None,
    }
    for name, entries in zips.items():
        with open(os.path.join(folder, f"{name}.zip"), "wb") as f:
            f.write(zip_bytes(entries) if entries else b"PK\x03\x04 this is not a zip")
    return folder


def _conftest_text() -> str:
    with open(os.path.join(HOSTILE, "conftest_hook.py")) as f:
        text = f.read()
    return text.split("CONFTEST = '''", 1)[1].split("'''", 1)[0]
