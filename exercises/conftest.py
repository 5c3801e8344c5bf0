"""Public tests' reports for students: a stub that still raises ``NotImplementedError`` reads as
"not implemented yet", and a value that differs reads as the comparison's message (which value, by
how much, where), without pytest's traceback of the test. The ``dlkata`` package next to this file
holds those comparisons (pytest puts this folder on ``sys.path``)."""
import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if call.excinfo is None or call.when != "call":
        return report
    if call.excinfo.errisinstance(NotImplementedError):
        tb = call.excinfo.traceback
        where = tb[-1].name if len(tb) else "a function"
        report.longrepr = f"{where}: not implemented yet (fill in its body in the exercise file)"
    elif call.excinfo.errisinstance(AssertionError) and call.excinfo.value.args \
            and isinstance(call.excinfo.value.args[0], str):  # a comparison's message (dlkata.compare)
        report.longrepr = call.excinfo.value.args[0]
    return report
