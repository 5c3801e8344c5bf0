"""A class where some submissions are malformed or hostile in what they are, not in what they run:
broken zips, a file that crashes the parser, escape sequences in messages and names, names that are
spreadsheet formulas or that map to the same file name, and forbidden kernels reached by routes that
no name check sees. Graded once by ``grader CLASS --json``; each bad submission costs only itself and
the run exits 0 (``classroom.run_grader`` checks it)."""
from __future__ import annotations

import csv
import json
import os

import pytest

from tests.grader import classroom as c

FILE, DIR = 0o100644, 0o40755
CE = "cross_entropy"
CE_SOLUTION = os.path.join(c.ROOT, "solutions", CE, f"{CE}.py")
ESC_NAME = "esc\x1b[2J\x1b[31mname"
FORMULAS = ["=HYPERLINK(\"http:evil\",\"x\")", "+1+2", "-3", "@SUM(1)"]
# Three students whose names map to the same file name (Ann_Lee.json); names that only differ in case,
# such as "ann lee", would be one student (flagged: tests/grader/test_submission.py)
COLLIDING = ["Ann Lee", "Ann_Lee", "Ann?Lee"]


def _ce_source() -> str:
    with open(CE_SOLUTION) as f:
        return f.read()


def _both(folder: str, perplexity: str | None = None, cross_entropy: str | None = None) -> None:
    c.write_submission(folder, {f"{c.TOPIC}/{c.TOPIC}.py": perplexity or c.solution_source(),
                                f"{CE}/{CE}.py": cross_entropy or _ce_source()})


def _bad_zips(folder: str) -> None:
    sol = c.solution_source()
    plain = {
        "zip_file_and_folder": [("perplexity", "x", FILE), ("perplexity/perplexity.py", sol, FILE)],
        "zip_dot_entry": [(".", "x", FILE), ("perplexity/perplexity.py", sol, FILE)],
        "zip_too_deep": [("/".join(["d"] * 40) + "/perplexity.py", sol, FILE)],
        "zip_too_many": [(f"perplexity/f{i}.py", "", FILE) for i in range(1200)],
    }
    for name, entries in plain.items():
        with open(os.path.join(folder, f"{name}.zip"), "wb") as f:
            f.write(c.zip_bytes(entries))
    data = c.zip_bytes([("perplexity/perplexity.py", sol, FILE)])  # stored, not compressed
    raw = bytearray(data)  # the content changed after the CRC was computed
    at = raw.index(b"def ")
    raw[at:at + 4] = b"DEF "
    with open(os.path.join(folder, "zip_bad_crc.zip"), "wb") as f:
        f.write(raw)
    raw = bytearray(data)  # the encrypted flag set on the entry (local and central headers)
    raw[6] |= 1
    central = raw.index(b"PK\x01\x02")
    raw[central + 8] |= 1
    with open(os.path.join(folder, "zip_encrypted.zip"), "wb") as f:
        f.write(raw)


BAD_ZIPS = ["zip_file_and_folder", "zip_dot_entry", "zip_too_deep", "zip_too_many", "zip_bad_crc", "zip_encrypted"]
GOOD = ["good_1", "good_2", "zz_good"]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("bad-class")
    folder = str(base / "class")
    os.makedirs(folder)
    for name in GOOD + FORMULAS + COLLIDING:
        _both(os.path.join(folder, name))
    _bad_zips(folder)
    _both(os.path.join(folder, "parser_crash"), perplexity="x = " + "(" * 100000 + ")" * 100000 + "\n")
    _both(os.path.join(folder, "parser_crash_deep"), perplexity="x = " + "-" * 300000 + "1\n")
    _both(os.path.join(folder, "parser_crash_long"), perplexity="x = 1" + "+1" * 300000 + "\n")
    _both(os.path.join(folder, ESC_NAME), perplexity=c.hostile_source("escape_sequences"))
    with open(os.path.join(c.HOSTILE, "forbidden", "full_marks_cross_entropy.py")) as f:
        _both(os.path.join(folder, "forbidden_routes"), cross_entropy=_ce_source() + "\n\n" + f.read())
    out = base / "out"
    text = c.run_text(folder, str(out), topics=f"{c.TOPIC},{CE}")
    with open(out / "report.json") as f:
        report = json.load(f)
    yield {"report": report, "subs": c.by_name(report), "out": out, "text": text}


def _sub(graded, name):
    return graded["subs"][name]


@pytest.mark.parametrize("name", GOOD + FORMULAS + COLLIDING)
def test_right_solutions_get_full_marks_beside_bad_submissions(graded, name):
    sub = _sub(graded, name)
    assert sub["problem"] is None and sub["score"] == sub["max"] == 20.0, c.messages(sub)


def test_the_run_has_no_grading_problem_and_every_submission_is_reported(graded):
    assert graded["report"]["problems"] == []
    names = set(graded["subs"])
    assert names >= set(GOOD + FORMULAS + COLLIDING + BAD_ZIPS) | {"parser_crash", "forbidden_routes"}
    assert any(n.startswith("esc") for n in names)


@pytest.mark.parametrize("name", BAD_ZIPS)
def test_a_malformed_zip_is_refused_with_a_message(graded, name):
    sub = _sub(graded, name)
    assert sub["score"] == 0
    assert sub["problem"] and ("refused" in sub["problem"] or "could not be read" in sub["problem"]), sub["problem"]


@pytest.mark.parametrize("name", ["parser_crash", "parser_crash_deep", "parser_crash_long"])
def test_a_file_that_crashes_the_parser_scores_that_topic_zero(graded, name):
    sub = _sub(graded, name)
    assert c.topic_of(sub)["score"] == 0 and c.topic_of(sub)["reason"]
    assert c.topic_of(sub, CE)["score"] == 10.0, c.messages(sub)


def test_forbidden_kernels_reached_by_computed_names_score_zero(graded):
    sub = _sub(graded, "forbidden_routes")
    assert c.topic_of(sub)["score"] == 10.0
    ce = c.topic_of(sub, CE)
    assert ce["score"] == 0, c.messages(sub)
    feedback = " ".join(t["feedback"] for t in ce["tests"])
    assert "aten._log_softmax" in feedback and "autograd" in feedback


def test_escape_sequences_are_shown_not_acted_upon(graded):
    sub = next(s for n, s in graded["subs"].items() if n.startswith("esc"))
    assert "\x1b" not in json.dumps(sub, ensure_ascii=False) and "\\x1b" in sub["name"]
    feedback = " ".join(c.messages(sub))
    assert "\\x1b[2J" in feedback and "\x1b" not in feedback and "\x07" not in feedback
    assert "\u202e" not in feedback and c.topic_of(sub)["score"] < 10
    assert "\x1b" not in graded["text"] and "\x07" not in graded["text"] and "\\x1b[2J" in graded["text"]
    with open(graded["out"] / "report.json") as f:
        assert "\\u001b" not in f.read()  # not even as a JSON escape that a viewer would decode back


def test_csv_cells_never_start_a_formula(graded):
    with open(graded["out"] / "class.csv", newline="") as f:
        rows = list(csv.reader(f))
    names = [r[0] for r in rows[1:]]
    for formula in FORMULAS:
        assert "'" + formula in names
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for cell in r)


@pytest.mark.parametrize("pick", [[], ["--pick", "latest"]], ids=["every grade", "one row per student"])
def test_gradebook_export_cells_never_start_a_formula(graded, pick, tmp_path):
    from grader import gradebook
    db = gradebook.default_db(str(graded["out"]))
    assert gradebook.export_main(["--csv", str(tmp_path / "export.csv"), "--db", db, *pick]) == 0
    with open(tmp_path / "export.csv", newline="") as f:
        rows = list(csv.reader(f))
    students = [r[0] for r in rows[1:]]
    for formula in FORMULAS:
        assert "'" + formula in students
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for cell in r)


def test_every_student_gets_a_gradescope_file_of_their_own(graded):
    subs = graded["report"]["submissions"]
    files = [s["gradescope_file"] for s in subs]
    assert len(set(f.lower() for f in files)) == len(files)
    folder = graded["out"]
    for s in subs:
        path = folder / s["gradescope_file"]
        assert os.path.dirname(os.path.normpath(path)) == str(folder / "gradescope")
        with open(path) as f:
            assert json.load(f)["score"] == s["score"]
    colliding = [s for s in subs if s["name"] in COLLIDING]
    assert len({s["gradescope_file"] for s in colliding}) == 3
