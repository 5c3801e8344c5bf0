"""Tries to read the hidden suite and the solution from disk and raises with what it read in the
message (the grader shows learners their error messages). The read must fail: no feedback may hold
the files' text."""
ROOT = "__ROOT__"
PATHS = [ROOT + "/tests/perplexity/test_perplexity.py", ROOT + "/solutions/perplexity/perplexity.py",
         ROOT + "/tests/conftest.py", "/proc/1/root" + ROOT + "/tests/perplexity/test_perplexity.py"]


def _loot():
    found = []
    for path in PATHS:
        try:
            with open(path) as f:
                found.append(f.read())
        except OSError as e:
            found.append(f"({type(e).__name__} on {path})")
    return "\n".join(found)


def token_nll(logits, targets):
    raise RuntimeError(_loot())


def perplexity(logits, targets, ignore_index=None, mask=None):
    raise RuntimeError(_loot())
