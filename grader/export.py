"""``grader export --csv FILE [--pick latest|best]``: grades from the gradebook (see grader/gradebook.py)."""
from grader.gradebook import export_main as main  # noqa: F401
