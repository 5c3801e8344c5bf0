"""Implementations of a topic for the kata's checks, the example class and the benchmark: the
reference solution, the stub, or a mutant (the solution with one realistic student bug).

``tests/<topic>/mutants.toml`` lists the mutants: a name, a one-line description of the bug, and text
replacements applied to the files of ``solutions/<topic>/`` (each ``old`` must occur exactly once).
``materialize(mutant, dest)`` writes one as a folder laid out like ``exercises/``, so that the hidden
suite grades it like any submission (``--impl``).
"""
from __future__ import annotations

import os
import shutil
import tomllib
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sources(folder: str) -> dict[str, str]:
    return {n: open(os.path.join(folder, n)).read() for n in sorted(os.listdir(folder))
            if n.endswith(".py") and not n.startswith("test_")}


@dataclass
class Mutant:
    topic: str
    name: str
    bug: str
    replace: list

    def files(self) -> dict[str, str]:
        files = _sources(os.path.join(ROOT, "solutions", self.topic))
        for old, new in self.replace:
            where = [n for n, text in files.items() if text.count(old) == 1]
            total = sum(text.count(old) for text in files.values())
            if total != 1 or len(where) != 1:
                raise ValueError(f"{self.topic}/{self.name}: {old!r} occurs {total} times in the solution")
            files[where[0]] = files[where[0]].replace(old, new)
        return files


def load(topic: str) -> list[Mutant]:
    path = os.path.join(ROOT, "tests", topic, "mutants.toml")
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        entries = tomllib.load(f).get("mutant", [])
    return [Mutant(topic, e["name"], e["bug"], e["replace"]) for e in entries]


def implementation(topic: str, what: str) -> dict[str, str]:
    """The learner files of ``topic``: ``what`` is "solution", "stub", or the name of a mutant."""
    if what in ("solution", "stub"):
        return _sources(os.path.join(ROOT, "exercises" if what == "stub" else "solutions", topic))
    return next(m for m in load(topic) if m.name == what).files()


def materialize(mutant: Mutant, dest: str) -> str:
    """Write ``mutant`` to ``dest/<topic>-<name>/<topic>/`` and return the submission folder."""
    root = os.path.join(dest, f"{mutant.topic}-{mutant.name}")
    folder = os.path.join(root, mutant.topic)
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(folder)
    for name, text in mutant.files().items():
        with open(os.path.join(folder, name), "w") as f:
            f.write(text)
    return root
