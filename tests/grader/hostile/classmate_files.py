"""Looks for a classmate's perplexity.py: leftovers of earlier children (learner-* folders in /tmp and
in scratch folders under it), the submission folders named on the grading processes' command lines (/proc/*/cmdline), and
the folders of other processes (/proc/*/cwd, /proc/*/root/tmp). Runs the first it can read (full marks
if the read works), wrong values if none. (Other classes being graded on the same machine at the same
time are not its classmates: without namespaces their world-readable folders are readable, as the
README says.)"""
import glob
import os

_right_nll, _right_from = token_nll, perplexity_from_nll
CLASS = os.path.dirname("__SUBMISSION__")  # its classmates are graded from folders in here


def _proc():
    """The entries of /proc, or none where this process may not list it."""
    try:
        return os.listdir("/proc")
    except OSError:
        return []


def _candidates():
    paths = glob.glob("/tmp/learner-*/perplexity.py") + glob.glob("/tmp/*/learner-*/perplexity.py")
    paths += glob.glob("/tmp/*/*/learner-*/perplexity.py")
    for pid in [p for p in _proc() if p.isdigit()]:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            args = []
        paths += [a.split("=", 1)[1] + "/perplexity/perplexity.py" for a in args
                  if a.startswith("--impl=" + CLASS)]
        paths += [f"/proc/{pid}/cwd/perplexity.py"] + glob.glob(f"/proc/{pid}/root/tmp/learner-*/perplexity.py")
    mine = os.path.realpath("perplexity.py")
    return [p for p in paths if _real(p) != mine]


def _real(path):
    try:
        return os.path.realpath(path)
    except OSError:
        return path


def _classmate():
    for path in _candidates():
        try:
            with open(path) as f:
                source = f.read()
        except OSError:
            continue
        if "hostile part" in source:
            continue
        namespace = {}
        exec(compile(source, "classmate", "exec"), namespace)
        return namespace
    return None


def token_nll(logits, targets):
    other = _classmate()
    return other["token_nll"](logits, targets) if other else _right_nll(logits, targets) + 1.0


def perplexity_from_nll(total_nll, n_tokens):
    other = _classmate()
    return other["perplexity_from_nll"](total_nll, n_tokens) if other else 2.0 * _right_from(total_nll, n_tokens)
