"""Builds the example class's zipped submissions from the reference solutions, the stubs and the
mutants, so that they never drift from them:

    python -m grader.examples.make_class      # rewrites perfect.zip and partial.zip

``hostile/`` is written by hand. ``tests/grader/test_examples.py`` checks the zips are up to date.
"""
from __future__ import annotations

import io
import os
import zipfile

from grader.grade import topics_of
from grader.mutants import ROOT, implementation, load

CLASS = os.path.join(ROOT, "grader", "examples", "class")

# A partial submission cycles through these, topic by topic in the order of tests/grading.toml:
# "mutant" is the topic's first mutant in tests/<topic>/mutants.toml, "absent" leaves its folder out.
PARTIAL = ("solution", "stub", "mutant", "solution", "mutant", "absent")


def plans(topics: list[str] | None = None) -> dict[str, dict[str, str]]:
    """student -> (topic -> "solution", "stub" or a mutant's name; a topic left out has no folder)."""
    topics = topics_of() if topics is None else topics
    partial = {}
    for topic, what in zip(topics, PARTIAL * len(topics)):
        if what == "mutant":
            what = next((m.name for m in load(topic)), "stub")
        if what != "absent":
            partial[topic] = what
    return {"perfect": {t: "solution" for t in topics}, "partial": partial}


def write_folder(dest: str, plan: dict[str, str]) -> None:
    """Write a submission laid out like ``exercises/`` into ``dest``."""
    for topic, what in plan.items():
        os.makedirs(os.path.join(dest, topic), exist_ok=True)
        for name, text in implementation(topic, what).items():
            with open(os.path.join(dest, topic, name), "w") as f:
                f.write(text)


def zip_bytes(plan: dict[str, str]) -> bytes:
    """The submission as a zip, byte for byte the same on every build (fixed dates and order)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for topic, what in sorted(plan.items()):
            for name, text in implementation(topic, what).items():
                info = zipfile.ZipInfo(f"{topic}/{name}", date_time=(2026, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                zf.writestr(info, text, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def main() -> None:
    for student, plan in plans().items():
        with open(os.path.join(CLASS, f"{student}.zip"), "wb") as f:
            f.write(zip_bytes(plan))
        print(f"wrote {os.path.relpath(os.path.join(CLASS, student + '.zip'), ROOT)}")


if __name__ == "__main__":
    main()
