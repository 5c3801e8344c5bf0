"""``grader release``: the students' repository holds the handout and nothing of the hidden suites, the
solutions or the mutants, and it installs and runs a topic in a fresh virtual environment."""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import sysconfig

import pytest

from grader.cli import main as grader_main
from grader.grade import topics_of
from grader.mutants import ROOT


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "dlkata-exercises"
    assert grader_main(["release", str(out)]) == 0
    return out


def _allowed(rel: str) -> bool:
    topic = r"(?P<t>[a-z_]+)"
    return bool(rel in ("README.md", "pyproject.toml", ".gitignore", "exercises/conftest.py", "exercises/pytest.ini")
                or re.fullmatch(r"exercises/dlkata/\w+\.py", rel)
                or (m := re.fullmatch(rf"exercises/{topic}/(?P<n>\w+\.py|GUIDE(\.\w+)?\.md)", rel))
                and m["t"] in topics_of() and (m["n"] == f"{m['t']}.py" or m["n"].startswith(("test_", "GUIDE"))))


def _files(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, n), root) for d, _, names in os.walk(root) for n in names)


def _bodies(source: str) -> dict[str, str]:
    """``{ast dump of a function's body (docstring left out): function name}``."""
    out = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                body = body[1:]
            out[ast.dump(ast.Module(body=body, type_ignores=[]))] = node.name
    return out


def test_release_holds_the_handout_and_nothing_else(release):
    files = _files(release)
    assert not [f for f in files if not _allowed(f)], "files that are not part of the handout"
    for t in topics_of():
        assert f"exercises/{t}/{t}.py" in files and f"exercises/{t}/test_{t}.py" in files
    assert {"exercises/dlkata/compare.py", "exercises/dlkata/cli.py"} <= set(files)
    text = "\n".join(open(os.path.join(release, f), encoding="utf-8").read() for f in files)
    for secret in ("mutants.toml", "solutions/", "tests/compare", "grading.toml", "[[mutant]]"):
        assert secret not in text, f"the release mentions {secret}"


def test_no_reference_function_body_is_in_the_release(release):
    """Every function body of solutions/ is absent from the release, except the scaffold the stub itself
    gives (a function of the stub whose body is the reference's, such as a constructor)."""
    given, reference = set(), {}
    for t in topics_of():
        folder = os.path.join(ROOT, "solutions", t)
        for name in os.listdir(folder):
            if name.endswith(".py"):
                source = open(os.path.join(folder, name)).read()
                reference.update({k: f"{t}/{name}:{fn}" for k, fn in _bodies(source).items()})
        stub = os.path.join(ROOT, "exercises", t, f"{t}.py")
        given |= set(_bodies(open(stub).read()))
    leaked = []
    for f in _files(release):
        if f.endswith(".py"):
            for body in _bodies(open(os.path.join(release, f)).read()).keys() & reference.keys() - given:
                leaked.append(f"{reference[body]} in {f}")
    assert not leaked, f"reference code in the release: {leaked}"
    # The check itself can fail: a solution file dropped into a copy is caught.
    sol = open(os.path.join(ROOT, "solutions", "rnn", "rnn.py")).read()
    assert _bodies(sol).keys() & reference.keys() - given


def test_release_readme_starts_from_the_handout(release):
    readme = (release / "README.md").read_text()
    assert "pip install -e ." in readme and "dlkata check" in readme
    for word in ("dlkata list", "dlkata hint", "dlkata watch"):
        assert word in readme


def test_release_installs_in_a_fresh_venv_and_runs_a_topic(release, tmp_path):
    """``pip install -e .`` (offline: torch and the rest come from this environment through a .pth file),
    then ``dlkata check rnn`` and ``pytest exercises/rnn`` on the stubs."""
    pytest.importorskip("setuptools", reason="installing offline builds with this environment's setuptools")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(site, "outer.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                              "--no-index", "-e", str(release)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    check = subprocess.run([str(venv / "bin" / "dlkata"), "check", "rnn"], cwd=release, capture_output=True,
                           text=True, timeout=600, env=env)
    assert check.returncode == 1, check.stdout + check.stderr
    assert "rnn: 0 of" in check.stdout and "not implemented yet" in check.stdout, check.stdout + check.stderr
    tests = subprocess.run([str(py), "-m", "pytest", "exercises/rnn"], cwd=release, capture_output=True,
                           text=True, timeout=600, env=env)
    assert tests.returncode == 1 and "not implemented yet" in tests.stdout, tests.stdout + tests.stderr
    assert "hypothesis" not in tests.stdout, "the public tests should not load hypothesis' plugin"


def test_release_refuses_a_folder_that_is_not_empty(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit):
        grader_main(["release", str(tmp_path)])
    assert "not empty" in capsys.readouterr().err


def test_one_implementation_of_the_comparisons():
    """The hidden suites' comparisons are the student package's: the same messages on both sides."""
    import dlkata.compare
    import tests.compare
    assert tests.compare.check is dlkata.compare.check and tests.compare.Mismatch is dlkata.compare.Mismatch
