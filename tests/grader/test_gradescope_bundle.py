"""``grader gradescope-bundle``: the zip holds what Gradescope needs and what grading needs (no
solutions), and its ``run_autograder``, run against a temporary root laid out like ``/autograder``,
writes a ``results.json`` that follows Gradescope's specification for a perfect, a partial, a hostile
and an empty submission. ``setup.sh`` is not run here (it installs packages from the network)."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile

import pytest

from grader.examples.make_class import CLASS
from tests.grader import classroom as c

TOPIC = c.TOPIC

# Gradescope's results.json (https://gradescope-autograders.readthedocs.io/en/latest/specs/)
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}
FORMATS = {"text", "html", "simple_format", "md", "ansi"}
TOP = {"score": (int, float), "execution_time": (int, float), "output": str, "output_format": str,
       "test_output_format": str, "test_name_format": str, "visibility": str, "stdout_visibility": str,
       "extra_data": dict, "tests": list, "leaderboard": list}
TEST = {"score": (int, float), "max_score": (int, float), "status": str, "name": str, "name_format": str,
        "number": str, "output": str, "output_format": str, "tags": list, "visibility": str, "extra_data": dict}


def spec_problems(results: dict) -> list[str]:
    """What in ``results`` breaks Gradescope's results.json format (empty: nothing)."""
    out = [f"unknown key {k!r}" for k in results if k not in TOP]
    out += [f"{k} is {type(v).__name__}" for k, v in results.items()
            if k in TOP and (not isinstance(v, TOP[k]) or isinstance(v, bool))]
    for key in ("visibility", "stdout_visibility"):
        if key in results and results[key] not in VISIBILITY:
            out.append(f"{key} {results[key]!r}")
    for key in ("output_format", "test_output_format", "test_name_format"):
        if key in results and results[key] not in FORMATS:
            out.append(f"{key} {results[key]!r}")
    tests = results.get("tests", [])
    if "score" not in results and not all("score" in t for t in tests):
        out.append("no score: neither at the top nor on every test")
    for i, t in enumerate(tests):
        out += [f"test {i}: unknown key {k!r}" for k in t if k not in TEST]
        out += [f"test {i}: {k} is {type(v).__name__}" for k, v in t.items()
                if k in TEST and (not isinstance(v, TEST[k]) or isinstance(v, bool))]
        if t.get("status", "passed") not in ("passed", "failed"):
            out.append(f"test {i}: status {t['status']!r}")
        if t.get("visibility", "visible") not in VISIBILITY:
            out.append(f"test {i}: visibility {t['visibility']!r}")
        if "score" in t and "max_score" in t and not 0 <= t["score"] <= t["max_score"] + 1e-9:
            out.append(f"test {i}: score {t['score']} outside [0, {t['max_score']}]")
    return out


def test_the_spec_check_catches_broken_results():
    good = {"score": 1.0, "execution_time": 3, "tests": [{"name": "a", "score": 1, "max_score": 1,
                                                          "status": "passed", "visibility": "visible"}]}
    assert spec_problems(good) == []
    assert spec_problems({"tests": [{"name": "a"}]}) == ["no score: neither at the top nor on every test"]
    assert spec_problems({**good, "execution_time": "3 s", "visibility": "public", "points": 1}) == [
        "unknown key 'points'", "execution_time is str", "visibility 'public'"]
    bad_test = {"name": 1, "number": 2, "score": 3, "max_score": 1, "status": "ok"}
    assert spec_problems({"score": 3, "tests": [bad_test]}) == [
        "test 0: name is int", "test 0: number is int", "test 0: status 'ok'", "test 0: score 3 outside [0, 1]"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    base = tmp_path_factory.mktemp("bundle")
    out = base / "autograder.zip"
    done = subprocess.run([sys.executable, "-m", "grader", "gradescope-bundle", str(out), "--topics", TOPIC,
                           "--call-timeout", "3", "--submission-timeout", "30", "--memory-mb", "700"],
                          cwd=c.ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}" in done.stdout
    return out


def autograder_root(base, bundle_zip) -> str:
    """A folder laid out like Gradescope's ``/autograder``: ``source/`` (the bundle unpacked, as Gradescope
    does), ``run_autograder`` copied beside it, an empty ``submission/``."""
    root = base / "autograder"
    (root / "submission").mkdir(parents=True)
    with zipfile.ZipFile(bundle_zip) as zf:
        zf.extractall(root / "source")
        for info in zf.infolist():  # extractall drops the modes: set them as Gradescope's unzip does
            os.chmod(root / "source" / info.filename, (info.external_attr >> 16) & 0o777)
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    return str(root)


def run_autograder(root: str) -> tuple[dict, str]:
    env = {**os.environ, "AUTOGRADER_ROOT": root, "DLKATA_PYTHON": sys.executable}
    done = subprocess.run([os.path.join(root, "run_autograder")], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with open(os.path.join(root, "results", "results.json")) as f:
        return json.load(f), done.stdout


def test_the_bundle_holds_what_grading_needs_and_no_solution(bundle):
    with zipfile.ZipFile(bundle) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        requirements = zf.read("requirements.txt").decode().split()
        config = json.loads(zf.read("autograder.json"))
        setup = zf.read("setup.sh").decode()
    for script in ("setup.sh", "run_autograder"):
        mode = infos[script].external_attr >> 16
        assert mode & stat.S_IXUSR, f"{script} is not executable"
    for needed in ("pyproject.toml", "grader/cli.py", "grader/worker.py", "tests/conftest.py", "tests/compare.py",
                   "tests/grading.toml", f"tests/{TOPIC}/test_{TOPIC}.py"):
        assert needed in infos, needed
    assert "exercises/dlkata/compare.py" in infos  # the comparisons the hidden suites share with the handout
    assert f"exercises/{TOPIC}/{TOPIC}.py" in infos  # the stub: its signature's defaults are graded
    assert not [n for n in infos if n.startswith(("solutions/", "tests/kata/", "tests/grader/", "grader/examples/"))
                or (n.startswith("exercises/") and not n.startswith("exercises/dlkata/")
                    and n != f"exercises/{TOPIC}/{TOPIC}.py") or "__pycache__" in n]
    assert "torch==2.13.0" in requirements and all("==" in r for r in requirements)
    assert config == {"topics": [TOPIC], "call_timeout": 3.0, "submission_timeout": 30.0, "memory_mb": 700}
    assert "apt-get install -y -qq bubblewrap" in setup and "-r requirements.txt" in setup
    assert subprocess.run(["bash", "-n", "-c", setup]).returncode == 0


def test_a_perfect_submission_with_metadata(bundle, tmp_path):
    root = autograder_root(tmp_path, bundle)
    with zipfile.ZipFile(os.path.join(CLASS, "perfect.zip")) as zf:  # Gradescope unpacks uploaded zips
        zf.extractall(os.path.join(root, "submission"))
    with open(os.path.join(root, "submission_metadata.json"), "w") as f:
        json.dump({"id": 7, "users": [{"email": "ada@example.org", "id": 42, "name": "Ada Lovelace"}]}, f)
    results, stdout = run_autograder(root)
    assert spec_problems(results) == []
    assert results["score"] == 10.0 and len(results["tests"]) == len(c.TESTS)
    assert all(t["status"] == "passed" and t["score"] == t["max_score"] > 0 for t in results["tests"])
    assert results["output"].startswith("Graded for Ada Lovelace (id 42).")
    assert results["extra_data"]["students"] == [{"name": "Ada Lovelace", "id": 42, "email": "ada@example.org"}]
    assert len(results["extra_data"]["sha256"]) == len(results["extra_data"]["suite_sha256"]) == 64
    assert 0 < results["execution_time"] < 300
    assert "perplexity" in stdout and "10 / 10" in stdout  # the grader's table, for the course staff
    unsandboxed = "graded UNSANDBOXED" in results["output"]
    assert unsandboxed == (results["extra_data"]["isolation"] != "bwrap")


def test_a_partial_submission_uploaded_as_a_zip(bundle, tmp_path):
    root = autograder_root(tmp_path, bundle)
    shutil.copy(os.path.join(CLASS, "partial.zip"), os.path.join(root, "submission", "work.zip"))
    results, _ = run_autograder(root)
    assert spec_problems(results) == []
    assert 0 < results["score"] < 10
    assert sum(t["score"] for t in results["tests"]) == pytest.approx(results["score"], abs=1e-3)
    assert sum(t["max_score"] for t in results["tests"]) == pytest.approx(10.0, abs=1e-3)
    failed = [t for t in results["tests"] if t["status"] == "failed"]
    assert failed and all(" differs: " in t["output"] for t in failed)
    assert "Graded for" not in results["output"]  # no submission_metadata.json


def test_a_hostile_submission_cannot_forge_its_results(bundle, tmp_path):
    root = autograder_root(tmp_path, bundle)
    shutil.copytree(os.path.join(CLASS, "hostile", TOPIC), os.path.join(root, "submission", TOPIC))
    results, _ = run_autograder(root)
    assert spec_problems(results) == []
    assert results["score"] == 0 and all(t["score"] == 0 for t in results["tests"])
    assert os.listdir(os.path.join(root, "results")) == ["results.json"]


def test_a_submission_without_topic_folders(bundle, tmp_path):
    root = autograder_root(tmp_path, bundle)
    with open(os.path.join(root, "submission", "notes.txt"), "w") as f:
        f.write("forgot the code")
    results, _ = run_autograder(root)
    assert spec_problems(results) == []
    assert results["score"] == 0
    assert f"No topic folder found in the submission: upload the folders {TOPIC}/" in results["output"]
