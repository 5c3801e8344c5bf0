"""``grader history STUDENT``: a student's grades over time, from the gradebook (see grader/gradebook.py)."""
from grader.gradebook import history_main as main  # noqa: F401
