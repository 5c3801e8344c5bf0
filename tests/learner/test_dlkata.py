"""The ``dlkata`` command on a copy of the handout: list, check, hint, watch."""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time

import pytest

from dlkata import cli
from grader.mutants import ROOT, implementation
from grader.release import write

PACKAGE_PARENT = os.path.join(ROOT, "exercises")


@pytest.fixture
def handout(tmp_path):
    root = tmp_path / "handout"
    write(str(root))
    return root


def _dlkata(capsys, handout, *args) -> tuple[int, str]:
    code = cli.main(["--dir", str(handout), *args])
    return code, capsys.readouterr().out


def _solve(handout, topic, what="solution"):
    for name, text in implementation(topic, what).items():
        (handout / "exercises" / topic / name).write_text(text)


def test_list_shows_progress(capsys, handout):
    code, out = _dlkata(capsys, handout, "list")
    assert code == 0
    n = len(cli.topics(str(handout / "exercises")))
    assert out.count("not started") == n
    assert f"0 of {n} topics done" in out and "next: value" in out
    order = [out.index(f" {t} ") for t in cli.TOPICS]
    assert order == sorted(order), "topics listed in the order of dlkata.TOPICS"
    _solve(handout, "rnn")
    code, out = _dlkata(capsys, handout, "list")
    assert "in progress" in out and out.count("not started") == n - 1


def test_check_runs_the_next_topic_and_shows_the_first_failure(capsys, handout):
    n = len(cli.topics(str(handout / "exercises")))
    code, out = _dlkata(capsys, handout, "check")
    assert code == 1
    assert "value: 0 of " in out and "not implemented yet" in out
    assert "Traceback" not in out and "====" not in out and "def test_" not in out
    _solve(handout, "value")
    code, out = _dlkata(capsys, handout, "check")
    assert code == 0 and "value: all" in out and "public tests pass" in out
    state = json.loads((handout / ".dlkata" / "state.json").read_text())
    assert "value" in state["passed"]
    code, out = _dlkata(capsys, handout, "list")
    assert f"1 of {n} topics done" in out and "next: bigram" in out
    (handout / "exercises" / "value" / "value.py").write_text(
        (handout / "exercises" / "value" / "value.py").read_text() + "\n# edited\n")
    code, out = _dlkata(capsys, handout, "list")
    assert f"0 of {n} topics done" in out, "an edit after a pass makes the topic 'in progress' again"


def test_check_shows_the_comparison_message_of_a_wrong_value(capsys, handout):
    _solve(handout, "rnn", "batch_first_output_time_major")
    code, out = _dlkata(capsys, handout, "check", "rnn")
    assert code == 1
    assert "rnn_forward(batch_first=True): output (B, T, H) has shape (5, 2, 4), expected (2, 5, 4)" in out, out


def test_check_points_at_the_learner_line_of_an_error(capsys, handout):
    path = handout / "exercises" / "perplexity" / "perplexity.py"
    path.write_text(path.read_text().replace(
        'def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:',
        'def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:\n    return 1 / 0'))
    code, out = _dlkata(capsys, handout, "check", "perplexity")
    assert "ZeroDivisionError" in out and "at perplexity.py:" in out, out


def test_check_shows_a_public_test_message_without_pytest_explanation(capsys, handout):
    _solve(handout, "value")
    path = handout / "exercises" / "value" / "value.py"
    solved = path.read_text()
    path.write_text(solved.replace("nonlin=i != len(nouts) - 1", "nonlin=True"))
    code, out = _dlkata(capsys, handout, "check", "value")
    assert code == 1 and "the last layer of an MLP is linear (no relu)" in out, out
    assert "assert False" not in out and "+  where" not in out, out
    path.write_text(solved.replace("self.grad += other.data * out.grad", "self.grad = other.data * out.grad"))
    code, out = _dlkata(capsys, handout, "check", "value")
    assert code == 1 and "Use -v" not in out, out


def test_not_implemented_names_the_class_of_a_method(capsys, handout):
    _solve(handout, "value")
    path = handout / "exercises" / "value" / "value.py"
    text = path.read_text()
    start = text.index("    def __init__(self, nin, nouts):")
    end = text.index("    def __call__", start)
    path.write_text(text[:start] + "    def __init__(self, nin, nouts):\n        raise NotImplementedError\n\n"
                    + text[end:])
    code, out = _dlkata(capsys, handout, "check", "value")
    assert code == 1 and "MLP.__init__: not implemented yet" in out, out


def test_hints_come_one_more_each_time_from_the_guide(capsys, handout, monkeypatch):
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    (handout / "exercises" / "rnn" / "GUIDE.md").write_text(
        "# Guide\n\n## Hints\n\n1. First hint,\n   on two lines.\n2. Second hint.\n\n## Glossary\n\n1. not a hint\n")
    (handout / "exercises" / "rnn" / "GUIDE.zh.md").write_text(
        "# 指南\n\n## 提示\n\n1. 第一条。\n2. 第二条。\n")
    _, out = _dlkata(capsys, handout, "hint", "rnn")
    assert "hint 1/2: First hint, on two lines." in out and "Second" not in out
    _, out = _dlkata(capsys, handout, "hint", "rnn")
    assert "hint 2/2: Second hint." in out and "last hint" in out
    _, out = _dlkata(capsys, handout, "hint", "rnn")
    assert "hint 2/2" in out and "not a hint" not in out
    _, out = _dlkata(capsys, handout, "hint", "rnn", "--lang", "zh")
    assert "第一条" in out and "第二条" in out  # the count is per topic, whatever the language
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert cli.default_lang() == "zh"
    state = json.loads((handout / ".dlkata" / "state.json").read_text())
    assert state["hints"] == {"rnn": 2}


def test_without_a_guide_hints_are_the_docstring_pitfalls(capsys, handout):
    for name in os.listdir(handout / "exercises" / "lstm"):
        if name.startswith("GUIDE"):
            os.remove(handout / "exercises" / "lstm" / name)
    _, out = _dlkata(capsys, handout, "hint", "lstm")
    assert "hint 1/" in out and "i, f, g, o" in out


def test_watch_reruns_on_save_and_moves_on(handout):
    """A real file change while ``dlkata watch`` runs: the topic passes and the next one starts."""
    env = {**os.environ, "PYTHONPATH": PACKAGE_PARENT}
    proc = subprocess.Popen([sys.executable, "-u", "-m", "dlkata.cli", "--dir", str(handout), "watch"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    seen: list[str] = []

    def wait_for(text, timeout=240):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                continue
            if text in seen[-1]:
                return
        raise AssertionError(f"no {text!r} within {timeout} s; output:\n{''.join(seen)}")

    try:
        wait_for("Watching exercises/")
        assert any("value: 0 of" in line for line in seen)
        time.sleep(0.5)
        _solve(handout, "value")
        wait_for("value: all")
        wait_for("Next topic: bigram")
        wait_for("bigram: 0 of")
        wait_for("Watching exercises/")
        time.sleep(0.5)
        _solve(handout, "rnn")  # a save in another topic's folder: watch follows it
        wait_for("rnn: all")
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_watch_follows_the_topic_of_the_saved_file(handout):
    ex = str(handout / "exercises")
    assert cli.saved_topic(ex, {(2, os.path.join(ex, "rnn", "rnn.py"))}) == "rnn"
    assert cli.saved_topic(ex, {(2, os.path.join(ex, "conftest.py"))}) is None
    assert cli.saved_topic(ex, set()) is None


def test_check_shows_a_syntax_error_without_the_import_machinery(capsys, handout):
    path = handout / "exercises" / "rnn" / "rnn.py"
    path.write_text(path.read_text() + "\ndef broken(:\n")
    code, out = _dlkata(capsys, handout, "check", "rnn")
    assert code == 1 and "(importing the tests)" in out and "SyntaxError" in out, out
    assert "importlib" not in out and "_pytest" not in out, out
    assert "0 of 0" not in out and "rnn: no public test ran: importing exercises/rnn/ failed" in out, out


def test_read_only_fails_a_call_that_changes_an_argument_in_place():
    import torch

    from dlkata.compare import Mismatch, read_only

    def good(x, pair):
        return x - pair[0]

    def bad(x, pair):
        pair[1].mul_(2)
        return x

    x, pair = torch.ones(3), [torch.zeros(3), torch.ones(2)]
    assert torch.equal(read_only(good, x, pair), torch.ones(3))
    with pytest.raises(Mismatch, match=r"`bad` changed its argument `pair\[1\]` in place \(its values changed\)"):
        read_only(bad, x, pair)

    def time_major(x):
        return x.transpose_(0, 1)

    with pytest.raises(Mismatch, match=r"`time_major` changed its argument `x` in place \(its shape changed\)"):
        read_only(time_major, torch.ones(2, 3))
