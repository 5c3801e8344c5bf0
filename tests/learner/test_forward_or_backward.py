"""The public tests' forward-or-backward diagnosis, on mutants of every topic with a manual backward:
a backward that is not the derivative of the learner's own forward is blamed, and a backward that is
the derivative of a wrong forward sends the learner to the forward."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from grader.mutants import ROOT
from tests.learner.handout import handout_root, run_public, variant, write_topic

BACKWARD = "Your backward does not match your own forward's finite differences"
FORWARD = "Your backward matches your own forward's finite differences, but your forward differs from PyTorch's"
GIVEN_FORWARD = "The forward is the docstring's, so the backward is at fault"

# (topic, mutant, extra replacements making the backward the derivative of the mutant's forward,
#  the public test to run, what the diagnosis must say)
CASES = [
    ("bptt", "tanh_derivative", [], "rnn_backward", GIVEN_FORWARD),
    ("lstm", "backward_tanh_derivative", [], "cell_backward", BACKWARD),
    ("lstm", "sigmoid_for_g", [("d_g * (1 - g * g)", "d_g * g * (1 - g)")], "cell_backward", FORWARD),
    ("norms", "layer_norm_backward_no_mean_terms", [], "test_layer_norm_backward_matches", BACKWARD),
    ("norms", "rms_default_eps_1e-5", [], "test_rms_norm_backward", FORWARD),
    ("cross_entropy", "grad_without_mean_scale", [], "test_gradient_matches_autograd", BACKWARD),
    ("cross_entropy", "smoothing_over_other_classes", [], "test_gradient_with_ignored", FORWARD),
    ("bigram", "grad_missing_mean", [], "neural_bigram_gradient", BACKWARD),
    ("bigram", "reg_summed", [("2 * reg * W / W.numel()", "2 * reg * W")], "neural_bigram_gradient", FORWARD),
]


@pytest.mark.parametrize("topic, mutant, replace, test, verdict", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_the_diagnosis_names_the_wrong_side(topic, mutant, replace, test, verdict, tmp_path):
    root = handout_root(tmp_path)
    write_topic(root, topic, variant(topic, mutant, replace))
    done = run_public(root, topic, "-k", test)
    assert done.returncode == 1, done.stdout[-3000:]
    assert verdict in done.stdout, done.stdout[-3000:]
    assert "Traceback" not in done.stdout and "def test_" not in done.stdout, done.stdout[-3000:]


def test_the_diagnosis_waits_for_a_forward_not_written_yet(tmp_path):
    """A backward written before its forward: the diagnosis says it cannot tell yet."""
    files = variant("lstm", "backward_tanh_derivative")
    start = files["lstm.py"].index("def lstm_cell(")
    body = files["lstm.py"].index("    i, f, g, o = lstm_gates", start)
    end = files["lstm.py"].index("\n\n\n", body)
    files["lstm.py"] = files["lstm.py"][:body] + "    raise NotImplementedError" + files["lstm.py"][end:]
    root = handout_root(tmp_path)
    write_topic(root, "lstm", files)
    done = run_public(root, "lstm", "-k", "cell_backward")
    assert "Cannot tell yet: your lstm_cell is not implemented" in done.stdout, done.stdout[-3000:]


# The graded suite's side: (topic, mutant, replacements, hidden test, verdict)
HIDDEN = [
    ("bptt", "tanh_derivative", [], "test_rnn_backward", GIVEN_FORWARD),
    ("lstm", "backward_tanh_derivative", [], "test_lstm_cell_backward", BACKWARD),
    ("lstm", "sigmoid_for_g", [("d_g * (1 - g * g)", "d_g * g * (1 - g)")], "test_lstm_cell_backward", FORWARD),
    ("norms", "rms_default_eps_1e-5", [], "test_rms_norm_backward", FORWARD),
    ("cross_entropy", "grad_without_mean_scale", [], "test_gradient_class_index_targets", BACKWARD),
    ("bigram", "reg_summed", [("2 * reg * W / W.numel()", "2 * reg * W")], "test_neural_bigram_grad", FORWARD),
]


@pytest.mark.parametrize("topic, mutant, replace, test, verdict", HIDDEN, ids=[f"{c[0]}-{c[1]}" for c in HIDDEN])
def test_the_graded_suite_gives_the_same_diagnosis(topic, mutant, replace, test, verdict, tmp_path):
    """The hidden suite differentiates the learner's forward in the sandbox (the topic's driver)."""
    folder = tmp_path / "submission" / topic
    folder.mkdir(parents=True)
    for name, text in variant(topic, mutant, replace).items():
        (folder / name).write_text(text)
    results = tmp_path / "results.jsonl"
    subprocess.run([sys.executable, "-m", "pytest", os.path.join(ROOT, "tests", topic), "-q", "-k", test,
                    f"--impl={folder.parent}", f"--results={results}", "-p", "no:cacheprovider"],
                   cwd=ROOT, capture_output=True, text=True, timeout=600)
    messages = [r["message"] for r in map(json.loads, results.read_text().splitlines()) if r["outcome"] == "failed"]
    assert messages, f"{topic}/{mutant}: {test} did not fail"
    assert all(verdict in m for m in messages), "\n\n".join(messages)
