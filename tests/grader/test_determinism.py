"""The same class graded twice gets the same grades, feedback included: hypothesis draws fixed
examples, nothing depends on timing, and the order of the class does not matter."""
from __future__ import annotations

import os

from tests.grader import classroom as c


def _class(folder: str) -> str:
    c.good(os.path.join(folder, "right"))
    for name in ("wrong_returns", "nan_result"):
        c.write_submission(os.path.join(folder, name), {"perplexity/perplexity.py": c.hostile_source(name)})
    # messages that name the learner's file: its folder in the sandbox has a random name
    c.write_submission(os.path.join(folder, "syntax_error"), {"perplexity/perplexity.py": "def perplexity(:\n"})
    c.write_submission(os.path.join(folder, "opens_a_file"), {"perplexity/perplexity.py": (
        "import os\n\ndef perplexity(*args, **kwargs):\n    open(os.path.join(os.getcwd(), 'nothing.txt'))\n")})
    return folder


def _grades(report: dict) -> dict:
    return {s["name"]: (s["score"], s["sha256"], s["problem"], s["topics"]) for s in report["submissions"]}


def test_two_runs_of_a_class_give_identical_grades(tmp_path):
    folder = _class(str(tmp_path / "class"))
    first = c.run_grader(folder, str(tmp_path / "out1"), jobs=2)
    second = c.run_grader(folder, str(tmp_path / "out2"), jobs=1)  # other chunks, other order of work
    assert first["suite_sha256"] == second["suite_sha256"]
    assert _grades(first) == _grades(second)
    scores = {name: g[0] for name, g in _grades(first).items()}
    assert scores["right"] == 10 and 0 < scores["wrong_returns"] < 10 and 0 < scores["nan_result"] < 10
    with open(tmp_path / "out1" / "class.csv") as f1, open(tmp_path / "out2" / "class.csv") as f2:
        assert f1.read() == f2.read()
