"""Mutants: the reference solution of a topic with one realistic student bug each.

``tests/<topic>/mutants.toml`` lists them: a name, a one-line description of the bug, and text
replacements applied to the files of ``solutions/<topic>/`` (each ``old`` must occur exactly once).
``materialize(topics, dest)`` writes every mutant as a folder laid out like ``exercises/``, so that
the hidden suite grades it like any submission (``--impl``).
"""
from __future__ import annotations

import os
import shutil
import tomllib
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOPICS = ["value", "bigram", "cross_entropy", "perplexity", "rnn", "bptt", "lstm", "norms"]


@dataclass
class Mutant:
    topic: str
    name: str
    bug: str
    replace: list

    def files(self) -> dict[str, str]:
        folder = os.path.join(ROOT, "solutions", self.topic)
        files = {n: open(os.path.join(folder, n)).read() for n in sorted(os.listdir(folder)) if n.endswith(".py")}
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
