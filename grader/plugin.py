"""The pytest plugin that the hidden suites run under when grading.

Replaying examples. Derandomized, hypothesis draws the same examples for every submission: they
depend on the test's source, never on the code under test. So a grading process draws each test's
examples once (hypothesis runs with a recorder in place of the test's body) and then runs the body
on those examples for each submission, without hypothesis' engine. A submission that fails an
example is run again under hypothesis, which meets the same failure and shrinks it as always: the
outcome and the message are those of a plain hypothesis run, and only failing tests pay for it.
"""
from __future__ import annotations

import os

import hypothesis.core
import pytest
from hypothesis import settings
from hypothesis.internal.entropy import deterministic_PRNG

_EXAMPLES: dict = {}  # the test function -> its examples, as keyword arguments, in hypothesis' order


def _digest_of_original(digest):
    """Derandomized draws are seeded from a digest of the test function: the recorder that stands
    in for the test must seed them as the test itself does."""
    def function_digest(f):
        return digest(getattr(f, "__dlkata_recorded__", f))
    return function_digest


hypothesis.core.function_digest = _digest_of_original(hypothesis.core.function_digest)


def _examples(test, funcargs: dict) -> list[dict]:
    """Every example hypothesis runs for ``test`` when no example fails: explicit ones first."""
    if test not in _EXAMPLES:
        h = test.hypothesis
        inner, seen = h.inner_test, []

        def record(*args, **kwargs):
            seen.append({k: v for k, v in kwargs.items() if k not in funcargs})

        record.__dlkata_recorded__ = inner
        h.inner_test = record
        try:
            test(**funcargs)
        finally:
            h.inner_test = inner
        _EXAMPLES[test] = seen
    return _EXAMPLES[test]


def replaying() -> bool:
    return settings.default.derandomize and os.environ.get("DLKATA_REPLAY", "1") != "0"


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    test = pyfuncitem.obj
    if getattr(test, "hypothesis", None) is None or not replaying():
        return None
    funcargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    inner = test.hypothesis.inner_test
    for example in _examples(test, funcargs):
        try:
            with deterministic_PRNG():
                inner(**funcargs, **example)
        except KeyboardInterrupt:
            raise
        except BaseException:  # noqa: BLE001 - hypothesis runs it again, finds it, and shrinks it
            return None
    return True
