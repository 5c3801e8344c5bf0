"""The guides (``exercises/<topic>/GUIDE.md`` and ``GUIDE.zh.md``): their worked numbers agree with the
reference solutions, both languages carry the same numbers, the glossary names every parameter of the
stub's public functions, and each guide ends with its hints (what ``dlkata hint`` shows)."""
from __future__ import annotations

import ast
import re

import pytest

from grader.grade import topics_of
from tests.kata.guide_numbers import EXAMPLES, MARKER, ROOT, compute, guide_paths

TOPICS = topics_of()
HINTS = {"GUIDE.md": "## Hints", "GUIDE.zh.md": "## 提示"}
GLOSSARY = {"GUIDE.md": "## Glossary", "GUIDE.zh.md": "## 术语表"}
# The notation of each stub's docstring, beyond its parameter names (which are read from the stub).
NOTATION = {
    "value": ["Value", "data", "grad", "_prev", "_op", "_backward", "backward", "other", "relu", "tanh", "exp", "log",
              "Module", "zero_grad", "parameters"],
    "bigram": ["itos", "stoi", "V", "N", "P", "k", "nll", "X", "Y", "W", "logits", "probs", "reg", "n"],
    "cross_entropy": ["z", "p", "q", "y", "m", "C", "N", "eps", "dim", "reduction", "ignore_index", "label_smoothing"],
    "perplexity": ["NLL_t", "N", "V", "logits", "targets", "ignore_index", "mask", "total_nll", "n_tokens"],
    "rnn": ["h_t", "x_t", "h_prev", "W_ih", "W_hh", "b_ih", "b_hh", "T", "B", "I", "H", "h0", "h_n", "output",
            "batch_first", "num_layers"],
    "bptt": ["a_t", "h_t", "d_output", "d_h_n", "dh_next", "da_t", "total_norm", "max_norm", "eps", "k",
             "T", "B", "I", "H"],
    "lstm": ["z", "i", "f", "g", "o", "c", "h", "c'", "h'", "sigmoid", "tanh", "dz", "hc0", "h_n", "c_n", "d_h_next",
             "d_c_next", "T", "B", "I", "H"],
    "embedding": ["V", "D", "B", "L", "out", "d_weight", "embedding_dim"],
    "gru": ["gi", "gh", "i_r", "i_z", "i_n", "h_r", "h_z", "h_n", "r", "z", "n", "h'", "sigmoid", "tanh", "output",
            "T", "B", "I", "H", "L"],
    "norms": ["normalized_shape", "N", "mean", "var", "x_hat", "eps", "weight", "bias", "g", "d_out", "dweight",
              "dbias", "D", "W", "b"],
}
FIX = "run `python -m tests.kata.guide_numbers --write` after checking that the change is intended"


def _read(topic: str) -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in guide_paths(topic)}


def _section(text: str, heading: str) -> str:
    """The text under ``heading`` (a ``## `` line), up to the next ``## `` heading."""
    lines = text.splitlines()
    assert heading in lines, f"no {heading!r} section"
    start = lines.index(heading) + 1
    end = next((k for k in range(start, len(lines)) if lines[k].startswith("## ")), len(lines))
    return "\n".join(lines[start:end])


def _stub_parameters(topic: str) -> set[str]:
    """Every parameter name of the stub's public functions, methods and constructors."""
    tree = ast.parse((ROOT / "exercises" / topic / f"{topic}.py").read_text(encoding="utf-8"))
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and not n.name.startswith("_")):
        functions += [n for n in cls.body if isinstance(n, ast.FunctionDef)
                      and (not n.name.startswith("_") or n.name in ("__init__", "__call__"))]
    names = set()
    for fn in functions:
        a = fn.args
        for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
            if arg is not None and arg.arg != "self" and not arg.arg.startswith("_"):
                names.add(arg.arg)
    return names


def test_every_topic_has_a_worked_example():
    assert sorted(EXAMPLES) == sorted(TOPICS)


@pytest.mark.parametrize("topic", TOPICS)
def test_guide_numbers_are_those_of_the_solution(topic):
    values = compute(topic)
    for name, text in _read(topic).items():
        found = MARKER.findall(text)
        assert found, f"{topic}/{name}: no worked numbers"
        unknown = sorted({key for key, _ in found if key not in values})
        assert not unknown, f"{topic}/{name}: markers with no computed value: {unknown}"
        stale = [f"{key}: guide says {shown}, the solution gives {values[key]}" for key, shown in found
                 if values[key] != shown]
        assert not stale, f"{topic}/{name}: stale numbers ({FIX}):\n" + "\n".join(stale)
        unused = sorted(set(values) - {key for key, _ in found})
        assert not unused, f"{topic}/{name}: computed values the guide never shows: {unused}"


@pytest.mark.parametrize("topic", TOPICS)
def test_numbers_are_not_in_code(topic):
    """Markdown shows code verbatim: a marker there would show as an HTML comment."""
    for name, text in _read(topic).items():
        fenced = False
        for number, line in enumerate(text.splitlines(), 1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
            for m in MARKER.finditer(line):
                in_code = fenced or line.startswith(("    ", "\t")) or line[:m.start()].count("`") % 2
                assert not in_code, f"{topic}/{name}:{number}: a number marker inside code: {line.strip()}"


@pytest.mark.parametrize("topic", TOPICS)
def test_both_languages_carry_the_same_numbers(topic):
    guides = _read(topic)
    en, zh = (sorted(set(MARKER.findall(guides[name]))) for name in ("GUIDE.md", "GUIDE.zh.md"))
    assert en == zh, f"{topic}: GUIDE.md and GUIDE.zh.md show different numbers: " \
                     f"only English {sorted(set(en) - set(zh))}, only Chinese {sorted(set(zh) - set(en))}"


@pytest.mark.parametrize("topic", TOPICS)
def test_hints_close_each_guide(topic):
    for name, text in _read(topic).items():
        hints = _section(text, HINTS[name])
        lines = [line for line in hints.splitlines() if line.strip()]
        assert lines[-1] == text.rstrip().splitlines()[-1], f"{topic}/{name}: the hints must be the last section"
        numbers = [re.match(r"(\d+)\. \S", line) for line in lines]
        assert all(numbers), f"{topic}/{name}: hints must be a numbered list, one line per hint"
        assert [int(m.group(1)) for m in numbers] == list(range(1, len(lines) + 1)), f"{topic}/{name}: numbering"
        assert 3 <= len(lines) <= 5, f"{topic}/{name}: 3 to 5 hints, found {len(lines)}"
        assert not MARKER.search(hints), f"{topic}/{name}: hints are shown as plain text: no number markers"


@pytest.mark.parametrize("topic", TOPICS)
def test_glossary_covers_every_symbol_of_the_stub(topic):
    parameters = _stub_parameters(topic)
    assert parameters, f"{topic}: the stub has no public function"
    symbols = parameters | set(NOTATION.get(topic, ()))
    for name, text in _read(topic).items():
        glossary = _section(text, GLOSSARY[name])
        code = "\n".join(re.findall(r"`([^`\n]+)`", glossary))  # the inline code spans, one per line
        # a symbol counts inside code, not as part of a longer name (``h`` is not found in ``h_n``)
        missing = sorted(p for p in symbols if not re.search(rf"(?<![\w']){re.escape(p)}(?![\w'])", code))
        assert not missing, f"{topic}/{name}: glossary does not name {missing}"


@pytest.mark.parametrize("topic", TOPICS)
def test_stub_points_to_its_guide(topic):
    tree = ast.parse((ROOT / "exercises" / topic / f"{topic}.py").read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree)
    assert "Guide: GUIDE.md (English), GUIDE.zh.md (中文)." in doc.splitlines(), f"{topic}: the stub's docstring " \
        "does not point to its guide"
