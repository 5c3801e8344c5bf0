"""The bundled example class: its zips match the solutions, stubs and mutants they are built from,
and grading it ranks the perfect, partial and hostile submissions as it should."""
import json
import os
import subprocess
import sys

import pytest

from grader.examples.make_class import CLASS, ROOT, plans, zip_bytes

PLANS = plans()


@pytest.mark.parametrize("student", sorted(PLANS))
def test_zipped_examples_are_up_to_date(student):
    with open(os.path.join(CLASS, f"{student}.zip"), "rb") as f:
        assert f.read() == zip_bytes(PLANS[student]), \
            f"{student}.zip is stale: run `python -m grader.examples.make_class`"


def test_grading_the_example_class(tmp_path):
    done = subprocess.run([sys.executable, "-m", "grader", CLASS, "--json", "--call-timeout=3",
                           f"--out={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    scores = {s["name"]: s for s in report["submissions"]}
    assert set(scores) == {"perfect", "partial", "hostile"}
    perfect, partial, hostile = (scores[n] for n in ("perfect", "partial", "hostile"))
    assert perfect["score"] == perfect["max"] > 0
    assert 0 < partial["score"] < perfect["score"]
    assert hostile["score"] < partial["score"]
    topics = {t["topic"]: t for t in partial["topics"]}
    plan = PLANS["partial"]
    for name, topic in topics.items():
        assert len(topic["tests"]) > 0
        if plan.get(name) == "solution":  # a correct topic beside broken ones keeps full marks
            assert topic["score"] == topic["max"] > 0, name
        elif name not in plan:  # a topic left out scores 0 with the reason
            assert topic["score"] == 0 and f"no folder {name}/" in topic["reason"], name
        else:  # a stub or a mutant loses points
            assert topic["score"] < topic["max"], name
