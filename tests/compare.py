"""The hidden suites' comparisons: the same code, and so the same messages, as the students' public
tests (``exercises/dlkata/compare.py``, shipped in the handout)."""
from dlkata.compare import TIGHT, Mismatch, check, tolerances, unpack  # noqa: F401
