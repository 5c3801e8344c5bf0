"""Fills /tmp: many small files and a few big ones, named __TAG__-*, at import and at every call,
hoping to exhaust the grading machine's /tmp for those graded after it; leaves one file in each of the
other world-writable folders too (/var/tmp, /run/lock). Its values are wrong; the files must be gone
when its run ends."""
_right_nll, _right_from = token_nll, perplexity_from_nll
TAG = "__TAG__"
_round = [0]


def _fill(files=3000, big=4):
    _round[0] += 1
    try:
        for i in range(files):
            with open(f"/tmp/{TAG}-{_round[0]}-{i}", "w") as f:
                f.write("x" * 100)
        for i in range(big):
            with open(f"/tmp/{TAG}-{_round[0]}-big-{i}", "wb") as f:
                f.write(b"x" * (8 << 20))
    except OSError:
        pass


_fill()
for _folder in ("/var/tmp", "/run/lock"):
    try:
        with open(f"{_folder}/{TAG}-left", "w") as _f:
            _f.write("left behind")
    except OSError:
        pass


def token_nll(logits, targets):
    _fill(500, 1)
    return _right_nll(logits, targets) + 1.0


def perplexity_from_nll(total_nll, n_tokens):
    return 2.0 * _right_from(total_nll, n_tokens)
