"""Wrong values, plus conftest.py files (next to this file and at the submission's root, see
CONFTEST below) whose pytest hooks turn every report into "passed". A grader that ran pytest inside
the submission folder would load them."""
_right_nll, _right_from = token_nll, perplexity_from_nll

CONFTEST = '''
import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    report.outcome, report.longrepr = "passed", None
    return report


def pytest_runtest_logreport(report):
    report.outcome, report.longrepr = "passed", None
'''


def token_nll(logits, targets):
    return _right_nll(logits, targets) + 1.0


def perplexity_from_nll(total_nll, n_tokens):
    return 2.0 * _right_from(total_nll, n_tokens)
