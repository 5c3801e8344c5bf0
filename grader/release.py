"""``grader release OUT``: write the students' repository into ``OUT``.

What it holds, and nothing else (the hidden suites, the solutions and the mutants stay here)::

    README.md          the topics and the README's section for students
    pyproject.toml     torch pinned as in this project, pytest, rich, watchfiles; the dlkata command
    .gitignore
    exercises/         conftest.py, pytest.ini, the student package dlkata/ (the public tests'
                       comparisons, the forward-or-backward diagnosis, the dlkata command), and per
                       topic its stub, its public tests and its guides (GUIDE.md, GUIDE.<lang>.md)

Two commands install it and run a topic::

    python3 -m venv .venv && .venv/bin/pip install -e .
    .venv/bin/dlkata check
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import tomllib

from grader.grade import topics_of
from grader.mutants import ROOT

EXERCISES = os.path.join(ROOT, "exercises")
STUDENT_DEPS = ("torch", "pytest", "rich", "watchfiles")  # of the project's dependencies, what students need
GITIGNORE = ".venv/\n__pycache__/\n*.egg-info/\n.dlkata/\n.pytest_cache/\n"


def topic_files(topic: str) -> list[str]:
    """The files of ``exercises/<topic>/`` that students get: the stub, the public tests, the guides."""
    folder = os.path.join(EXERCISES, topic)
    return sorted(n for n in os.listdir(folder)
                  if n == f"{topic}.py" or re.fullmatch(r"test_\w+\.py", n) or re.fullmatch(r"GUIDE(\.\w+)?\.md", n))


def package_files() -> list[str]:
    """The student package's modules (``exercises/dlkata/*.py``)."""
    return sorted(n for n in os.listdir(os.path.join(EXERCISES, "dlkata")) if n.endswith(".py"))


def pyproject() -> str:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    deps = [d for d in project["dependencies"] if re.split(r"[<>=!~ \[;]", d, maxsplit=1)[0] in STUDENT_DEPS]
    return f'''[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "dlkata-exercises"
version = "{project["version"]}"
description = "Test-driven katas for the fundamentals of deep learning: the exercises"
readme = "README.md"
requires-python = "{project["requires-python"]}"
dependencies = [
{"".join(f'    "{d}",{chr(10)}' for d in deps)}]

[project.scripts]
dlkata = "dlkata.cli:main"

[tool.setuptools]
packages = ["dlkata"]
package-dir = {{"dlkata" = "exercises/dlkata"}}

[tool.pytest.ini_options]
testpaths = ["exercises"]
addopts = "-p no:hypothesispytest -p no:anyio -p no:cacheprovider"
'''


def readme() -> str:
    """The project README's topic table and its section for students."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    table = "\n".join(line for line in text.split("\n## ", 1)[0].splitlines() if line.startswith("|"))
    m = re.search(r"^## For students\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if m is None:
        raise SystemExit("README.md has no '## For students' section")
    return f"# dlkata: the exercises\n\n{table}\n\n{m.group(1).strip()}\n"


def write(out: str) -> list[str]:
    """Write the release into ``out`` (which must not exist or be empty); the files written."""
    if os.path.exists(out) and os.listdir(out):
        raise FileExistsError(f"{out} is not empty")
    files: dict[str, str | None] = {"README.md": readme(), "pyproject.toml": pyproject(), ".gitignore": GITIGNORE,
                                    "exercises/conftest.py": None, "exercises/pytest.ini": None}
    files.update({f"exercises/dlkata/{n}": None for n in package_files()})
    for topic in topics_of():
        if os.path.isdir(os.path.join(EXERCISES, topic)):
            files.update({f"exercises/{topic}/{n}": None for n in topic_files(topic)})
    for rel, text in files.items():
        dest = os.path.join(out, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if text is None:
            shutil.copyfile(os.path.join(ROOT, rel), dest)
        else:
            with open(dest, "w", encoding="utf-8") as f:
                f.write(text)
    return sorted(files)


def main(argv) -> int:
    p = argparse.ArgumentParser(prog="grader release", description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="folder to write the students' repository into (new or empty)")
    args = p.parse_args(argv)
    try:
        files = write(args.out)
    except FileExistsError as e:
        p.error(str(e))
    print(f"wrote {len(files)} files to {args.out}/; students: "
          "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/dlkata check")
    return 0
