"""Makes a stub that still raises ``NotImplementedError`` read as "not implemented yet"."""
import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(NotImplementedError):
        tb = call.excinfo.traceback
        where = tb[-1].name if len(tb) else "a function"
        report.longrepr = f"{where}: not implemented yet (fill in its body in the exercise file)"
    return report
