"""Every topic is registered everywhere, and nowhere else: a topic is a stub with public tests in
``exercises/<t>/``, a solution in ``solutions/<t>/``, a hidden suite and mutants in ``tests/<t>/`` and a
table in ``tests/grading.toml``. A topic missing from one of them, a weighted test that does not exist,
or the grader naming a topic fails here, with what to fix."""
from __future__ import annotations

import ast
import importlib
import os
import tomllib

import pytest

from grader.mutants import ROOT

with open(os.path.join(ROOT, "tests", "grading.toml"), "rb") as _f:
    GRADING = tomllib.load(_f)


def _topic_folders(tree: str, module: str = "{t}.py") -> set[str]:
    """Folders ``<tree>/<t>/`` that hold ``module`` (a topic; other folders, e.g. packages, are not)."""
    base = os.path.join(ROOT, tree)
    return {t for t in os.listdir(base)
            if os.path.isfile(os.path.join(base, t, module.format(t=t)))}


def _functions(path: str, prefix: str = "") -> list[str]:
    with open(path) as f:
        tree = ast.parse(f.read())
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith(prefix)
            and not n.name.startswith("_")]


TOPICS = sorted(GRADING)
OWN_TESTS = {"kata", "grader"}  # tests/ folders of the project's own tests, not hidden suites


def test_the_four_places_name_the_same_topics():
    places = {"tests/grading.toml": set(GRADING),
              "exercises/<t>/<t>.py": _topic_folders("exercises"),
              "solutions/<t>/<t>.py": _topic_folders("solutions"),
              "tests/<t>/test_<t>.py": _topic_folders("tests", "test_{t}.py") - OWN_TESTS}
    every = set().union(*places.values())
    missing = {place: sorted(every - found) for place, found in places.items() if every - found}
    assert not missing, f"topics not registered everywhere (place: missing topics): {missing}"


@pytest.mark.parametrize("topic", TOPICS)
def test_topic_files_are_complete(topic):
    need = [f"exercises/{topic}/test_{topic}.py", f"tests/{topic}/__init__.py", f"tests/{topic}/mutants.toml"]
    absent = [p for p in need if not os.path.isfile(os.path.join(ROOT, p))]
    assert not absent, f"{topic}: missing {', '.join(absent)}"
    importlib.import_module(f"tests.{topic}.test_{topic}")  # the hidden suite imports as a package


@pytest.mark.parametrize("topic", TOPICS)
def test_weighted_tests_exist(topic):
    suite = set(_functions(os.path.join(ROOT, "tests", topic, f"test_{topic}.py"), "test_"))
    unknown = sorted(set(GRADING[topic].get("tests", {})) - suite)
    assert not unknown, (f"tests/grading.toml [{topic}.tests] weighs tests that tests/{topic}/test_{topic}.py "
                         f"does not have: {unknown} (renamed?)")
    assert isinstance(GRADING[topic].get("weight"), (int, float)), f"[{topic}] needs a weight"


@pytest.mark.parametrize("topic", TOPICS)
def test_stub_and_solution_define_the_same_functions(topic):
    stub = _functions(os.path.join(ROOT, "exercises", topic, f"{topic}.py"))
    solution = _functions(os.path.join(ROOT, "solutions", topic, f"{topic}.py"))
    assert sorted(stub) == sorted(solution), f"{topic}: stub defines {stub}, solution {solution}"


def test_the_students_order_names_every_topic():
    """``dlkata.TOPICS`` (the handout's suggested order) lists each topic once."""
    from dlkata import TOPICS as ORDER
    assert sorted(ORDER) == sorted(GRADING), (f"exercises/dlkata/__init__.py TOPICS {list(ORDER)} should "
                                              f"list every topic of tests/grading.toml once: {sorted(GRADING)}")


def test_the_grader_names_no_topic():
    """A new topic needs no change in ``grader/``: no topic name appears there as a string."""
    hits = []
    submissions = os.path.join(ROOT, "grader", "examples", "class")  # example learner code, not the grader
    for folder, _, files in os.walk(os.path.join(ROOT, "grader")):
        if folder.startswith(submissions):
            continue
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            with open(path) as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and node.value in GRADING:
                    hits.append(f"{os.path.relpath(path, ROOT)}:{node.lineno} {node.value!r}")
    assert not hits, f"topic names in the grader: {hits}"
