"""A pytest plugin for ``dlkata check``: one JSON line per public test, with the message a student
needs (the comparison's message, or the error and where in the learner's file it happened), written to
the file named by ``DLKATA_REPORT``."""
from __future__ import annotations

import json
import os


def _message(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, str):  # set by exercises/conftest.py: "not implemented yet", a comparison
        return longrepr
    crash = getattr(longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(longrepr)
    entries = getattr(getattr(longrepr, "reprtraceback", None), "reprentries", [])
    for entry in reversed(entries):  # the innermost line of the learner's own file, when there is one
        loc = getattr(entry, "reprfileloc", None)
        if loc is not None and not os.path.basename(loc.path).startswith(("test_", "conftest")) \
                and "site-packages" not in loc.path and os.sep + "dlkata" + os.sep not in loc.path:
            return f"{text}\n  at {os.path.basename(loc.path)}:{loc.lineno}"
    return text


def pytest_runtest_logreport(report):
    path = os.environ.get("DLKATA_REPORT")
    if not path or not (report.when == "call" or report.failed):
        return
    with open(path, "a") as f:
        f.write(json.dumps({"test": report.nodeid.split("::")[-1], "outcome": report.outcome,
                            "message": _message(report) if report.failed else ""}) + "\n")


def _collect_message(report) -> str:
    """An import error or a syntax error in the learner's module: pytest's "E" lines, without the
    frames of the import machinery."""
    lines = str(report.longrepr).splitlines()
    errors = [line[2:].rstrip() for line in lines if line.startswith("E ")]
    return "\n".join(errors or lines[-15:])


def pytest_collectreport(report):
    path = os.environ.get("DLKATA_REPORT")
    if path and report.failed:  # an import error in the learner's module, a syntax error
        with open(path, "a") as f:
            f.write(json.dumps({"test": "(importing the tests)", "outcome": "failed",
                                "message": _collect_message(report)}) + "\n")
