"""Public tests' reports for students: a stub that still raises ``NotImplementedError`` reads as
"not implemented yet", and a value that differs reads as the comparison's message (which value, by
how much, where), without pytest's traceback of the test (which is not built at all: faster). The
``dlkata`` package next to this file holds those comparisons (pytest puts this folder on ``sys.path``)."""
import pytest


def _message(call):
    if call.excinfo.errisinstance(NotImplementedError):
        tb = call.excinfo.traceback
        where = tb[-1].name if len(tb) else "a function"
        return f"{where}: not implemented yet (fill in its body in the exercise file)"
    exc = call.excinfo.value
    if isinstance(exc, AssertionError) and exc.args and isinstance(exc.args[0], str):
        return exc.args[0]  # a comparison's message (dlkata.compare), or a public test's own
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item, call):
    if call.excinfo is None or call.when != "call":
        return None
    message = _message(call)
    if message is None:
        return None  # any other error: pytest's report, with the traceback into the learner's code
    sections = [(f"Captured {key} {when}", content) for when, key, content in item._report_sections]
    return pytest.TestReport(item.nodeid, item.location, dict(item.keywords), "failed", message, call.when,
                             sections, call.duration, call.start, call.stop, item.user_properties)
