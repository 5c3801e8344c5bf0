"""Helpers for the learner-side tests: a topic's public tests run against any implementation."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from grader.mutants import ROOT, implementation

EXERCISES = os.path.join(ROOT, "exercises")


def handout_root(dest) -> str:
    """``dest`` with what every topic's public tests need: conftest.py, pytest.ini and dlkata/."""
    os.makedirs(dest, exist_ok=True)
    for name in ("conftest.py", "pytest.ini"):
        shutil.copy(os.path.join(EXERCISES, name), os.path.join(dest, name))
    if not os.path.exists(os.path.join(dest, "dlkata")):
        shutil.copytree(os.path.join(EXERCISES, "dlkata"), os.path.join(dest, "dlkata"),
                        ignore=shutil.ignore_patterns("__pycache__"))
    return str(dest)


def write_topic(root, topic: str, files: dict[str, str]) -> None:
    """``root/<topic>/``: the learner ``files`` and the topic's public tests."""
    folder = os.path.join(root, topic)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for name, text in files.items():
        with open(os.path.join(folder, name), "w") as f:
            f.write(text)
    for name in os.listdir(os.path.join(EXERCISES, topic)):
        if name.startswith("test_"):
            shutil.copy(os.path.join(EXERCISES, topic, name), os.path.join(folder, name))


def variant(topic: str, what: str, replace=()) -> dict[str, str]:
    """The files of ``implementation(topic, what)`` with further ``(old, new)`` replacements."""
    files = implementation(topic, what)
    for old, new in replace:
        hits = [n for n, text in files.items() if old in text]
        assert len(hits) == 1 and files[hits[0]].count(old) == 1, f"{topic}/{what}: {old!r} not found once"
        files[hits[0]] = files[hits[0]].replace(old, new)
    return files


def run_public(root, topic: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", topic, "-q", *args], cwd=root, capture_output=True,
                          text=True, timeout=600)
