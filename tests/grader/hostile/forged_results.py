"""Forges the grade: at import, at every call and at exit (atexit) it appends "passed" lines to the
grader's results files (/tmp/dlkata-grading-*/results-*.jsonl) and to every descriptor of every
process it can open through /proc/<pid>/fd (the grader's results pipes among them), overwrites report.json, class.csv and a
Gradescope results.json in the grader's out folder, and drops a marker in a folder the test watches.
Its values are wrong, so only a forged score could save it."""
import atexit
import glob
import json
import os

_right_nll, _right_from = token_nll, perplexity_from_nll
OUT = "__OUT__"
MARKERS = ["__MARKERS__", "__OPEN_MARKERS__"]
SUBMISSION = "__SUBMISSION__"
TESTS = ["test_token_nll", "test_perplexity_and_gradient", "test_ignore_index_leaves_padding_out",
         "test_mask_leaves_padding_out", "test_perplexity_from_nll",
         "test_uniform_logits_give_the_vocabulary_size", "test_perfect_predictions_give_one_even_with_huge_logits"]


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def _forge():
    lines = "".join(json.dumps({"test": f"tests/perplexity/test_perplexity.py::{t}",
                                "params": {"submission": SUBMISSION, "device": "cpu", "dtype": d},
                                "outcome": "passed", "when": "call", "message": ""}) + "\n"
                    for t in TESTS for d in ("float64", "float32"))
    targets = glob.glob("/tmp/dlkata-grading-*/results-*.jsonl") + glob.glob("/tmp/*/results-*.jsonl")
    targets += [f"/proc/{p}/fd/{fd}" for p in _listdir("/proc") if p.isdigit() and p != str(os.getpid())
                for fd in _listdir(f"/proc/{p}/fd")]
    for path in targets:
        try:
            with open(path, "a") as f:
                f.write(lines)
        except OSError:
            pass
    forged = {"score": 10.0, "tests": [], "submissions": []}
    for path in [os.path.join(OUT, n) for n in ("report.json", "results.json", "class.csv")] + \
            [os.path.join(m, "forged") for m in MARKERS]:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                json.dump(forged, f)
        except OSError:
            pass


atexit.register(_forge)
_forge()


def token_nll(logits, targets):
    _forge()
    return _right_nll(logits, targets) + 1.0


def perplexity_from_nll(total_nll, n_tokens):
    _forge()
    return 2.0 * _right_from(total_nll, n_tokens)
