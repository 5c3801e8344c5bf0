"""``grader feedback OUT``: static HTML pages from a grading report, to open from disk.

- ``OUT/index.html``: the class dashboard (for the instructor): the score distribution per topic, the
  share of the class that reached each topic, a submissions x tests matrix with the most-failed tests
  first, and the most common failure messages of each test, grouped;
- ``OUT/students/<file>.html``: one page per submission (for its student): per topic and per test,
  the status, the message and the points, and a link to the topic's guide where there is one;
- ``OUT/pages.json``: which file belongs to which submission (names are made safe, and may collide).

The pages show only what the report holds (never the hidden suite), escape all of it, and carry
no script: they need no server and no network. The report is read by ``load``, by file type.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import urllib.parse

from grader import report as report_mod
from grader.grade import ROOT

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
EXERCISES = os.path.join(ROOT, "exercises")
GUIDE = "GUIDE.md"
BINS = 10

# score.py puts the failing case's parameters first ("[cpu, float64] ..."): not part of the mistake.
_CASE = re.compile(r"^\[[^\]\n]*\]\s*")
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
# Messages that say the student has not started a topic (a stub, a missing file, folder or function).
_NOT_STARTED = [re.compile(p) for p in (r"not implemented yet\s*$", r"^no (?:folder|file) \S+ in the submission",
                                        r"has no function \w+\s*$")]


# ---------------------------------------------------------------------------------------------- input

def _read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


# How each kind of grading record is read (by file suffix); each returns report.json's shape:
# the run's fields (topics, note, suite_sha256, ...) and ``submissions``, as written by grader/report.py.
READERS = {".json": _read_json}


def load(path: str) -> dict:
    """The grading report at ``path``, whatever kind of file holds it (see ``READERS``)."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in READERS:
        raise ValueError(f"cannot read {path}: known kinds are {', '.join(READERS)}")
    data = READERS[suffix](path)
    if not isinstance(data, dict) or not isinstance(data.get("submissions"), list):
        raise ValueError(f"{path} is not a grading report (no 'submissions')")
    return data


# ------------------------------------------------------------------------------------------ analysis

def normalise(message: str) -> str:
    """The pattern of a failure message: its first line without the case, numbers as ``#``, so that
    "max abs error 0.31" and "max abs error 0.27" group together."""
    first = _CASE.sub("", message.strip()).split("\n", 1)[0]
    return re.sub(r"\s+", " ", _NUMBER.sub("#", first)).strip()


def reached(sub: dict, topic: dict) -> bool:
    """Whether a submission attempted a topic: some case passed, or some failure is not just "not
    implemented yet", a missing file, folder or function, or the submission's own problem."""
    counted = [t for t in topic["tests"] if t["passed"] + t["failed"]]
    if any(t["passed"] for t in counted):
        return True
    for t in counted:
        msg = _CASE.sub("", t["feedback"].strip())
        if msg and msg != (sub.get("problem") or "") and not any(p.search(msg) for p in _NOT_STARTED):
            return True
    return False


def page_names(names: list[str]) -> list[str]:
    """A file name per submission, in order: lower-case letters, digits, ``-``, ``_``; never one that
    another student's name only becomes (``report.distinct_file_names``)."""
    return report_mod.distinct_file_names(
        names, lambda name: re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")[:60], ".html")


def guide_links(topics: list[str], exercises: str, handout: str) -> dict[str, str]:
    """``{topic: link}`` for the topics whose ``exercises/<topic>/GUIDE.md`` exists, relative to ``handout``."""
    scheme = urllib.parse.urlsplit(handout).scheme.lower()
    if scheme not in ("", "http", "https", "file"):
        raise ValueError(f"the handout must be a path or an http(s)/file URL, not {handout!r}")
    base = handout.rstrip("/")
    return {t: f"{base}/{urllib.parse.quote(t)}/{GUIDE}" for t in topics
            if os.path.isfile(os.path.join(exercises, t, GUIDE))}


def _headline(message: str) -> str:
    """The first line of a message without its case (and the next line when the first only announces it)."""
    lines = [x.strip() for x in _CASE.sub("", message.strip()).splitlines() if x.strip()] or [""]
    return " ".join(lines[:2]) if lines[0].endswith(":") else lines[0]


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def histogram(fractions: list[float], width: int = 300, height: int = 120) -> dict:
    """Bars of an SVG histogram of scores as fractions of the maximum, ``BINS`` bins over 0..100%."""
    counts = [0] * BINS
    for f in fractions:
        counts[min(max(int(f * BINS), 0), BINS - 1)] += 1
    top = max(counts + [1])
    left, bottom, plot_h = 24, 18, height - 18 - 14
    bw = (width - left - 4) / BINS
    bars = []
    for i, c in enumerate(counts):
        h = plot_h * c / top
        lo, hi = 100 * i // BINS, 100 * (i + 1) // BINS
        bars.append({"x": round(left + i * bw + 1, 1), "w": round(bw - 2, 1), "y": round(height - bottom - h, 1),
                     "h": round(h, 1), "count": c, "label": f"{lo}–{hi}%",
                     "title": f"{c} submission{'s' if c != 1 else ''} scored {lo}–{hi}%"
                              f"{'' if i < BINS - 1 else ' (inclusive)'}"})
    return {"bars": bars, "width": width, "height": height, "left": left, "top_count": top,
            "base_y": height - bottom, "top_y": height - bottom - plot_h, "right": width - 4,
            "mid_x": round(left + (width - left - 4) / 2, 1)}


def _test_points(sub: dict, meta: dict) -> list[tuple[float, float]]:
    """(points, max points) of every test, in report order: the share Gradescope's export gives it."""
    return [(t["score"], t["max_score"]) for t in report_mod.gradescope(sub, meta)["tests"]]


def _cell(name: str, topic: str, test: str, t: dict | None, reached_topic: bool) -> dict:
    """One cell of the matrix: a state (its colour) and what hovering it says."""
    if t is None or not reached_topic:
        state, label = "unreached", "topic not reached"
    elif t["status"] in ("passed", "not run"):
        state, label = ("pass" if t["status"] == "passed" else "notrun"), t["status"]
    else:
        state = "partial" if t["passed"] else "fail"
        label = f"failed ({t['passed']} of {t['passed'] + t['failed']} cases passed)"
    return {"state": state, "title": f"{name} · {topic} · {test}: {label}"}


def analyse(data: dict) -> dict:
    """Everything the dashboard shows, computed from the report."""
    subs = data["submissions"]
    topics = data.get("topics") or ([t["topic"] for t in subs[0]["topics"]] if subs else [])
    files = page_names([s["name"] for s in subs])
    by_topic = [{t["topic"]: t for t in s["topics"]} for s in subs]
    reach = [{t: reached(s, bt[t]) for t in bt} for s, bt in zip(subs, by_topic)]

    topic_rows = []
    for topic in topics:
        present = [(s, bt[topic], r[topic]) for s, bt, r in zip(subs, by_topic, reach) if topic in bt]
        scores = [t["score"] for _, t, _ in present]
        mx = max([t["max"] for _, t, _ in present] + [0.0])
        n_reached = sum(1 for *_, r in present if r)
        topic_rows.append({
            "topic": topic, "max": mx, "n": len(present), "reached": n_reached,
            "reached_share": n_reached / len(present) if present else 0.0,
            "mean": statistics.fmean(scores) if scores else 0.0,
            "median": statistics.median(scores) if scores else 0.0,
            "hist": histogram([t["score"] / t["max"] if t["max"] else 0.0 for _, t, _ in present])})

    # (topic, test) -> that test's entry in each submission's report (None where it has none)
    grid: dict[tuple[str, str], list] = {}
    for i, bt in enumerate(by_topic):
        for topic in topics:
            for t in bt.get(topic, {"tests": []})["tests"]:
                grid.setdefault((topic, t["test"]), [None] * len(subs))[i] = t
    tests, order = [], {t: i for i, t in enumerate(topics)}
    for k, ((topic, name), entries) in enumerate(grid.items()):
        counted = [(s, t) for s, t, r in zip(subs, entries, reach) if t and r[topic] and t["status"] != "not run"]
        failures = [(s, t) for s, t in counted if t["status"] != "passed"]
        groups: dict[str, dict] = {}
        for s, t in failures:
            g = groups.setdefault(normalise(t["feedback"]), {"count": 0, "example": t["feedback"], "who": []})
            g["count"] += 1
            g["who"].append(s["name"])
        ranked = sorted(groups.values(), key=lambda g: -g["count"])
        n, passed = len(counted), len(counted) - len(failures)
        tests.append({"topic": topic, "test": name, "n": n, "passed": passed, "failed": len(failures),
                      "partial": sum(1 for _, t in failures if t["passed"]), "rate": passed / n if n else None,
                      "groups": ranked[:3], "other_groups": max(len(ranked) - 3, 0),
                      "cells": [_cell(s["name"], topic, name, t, r.get(topic, False))
                                for s, t, r in zip(subs, entries, reach)],
                      "sort": (n == 0, passed / n if n else 0.0, order[topic], k)})
    tests.sort(key=lambda t: t["sort"])  # the matrix: a row per test, most-failed first

    students = []
    for s, bt, r, f in zip(subs, by_topic, reach, files):
        students.append({"name": s["name"], "href": f"students/{f}", "score": s["score"], "max": s["max"],
                         "problem": s.get("problem") or "",
                         "topics": [{"topic": t, "score": bt[t]["score"] if t in bt else None,
                                     "max": bt[t]["max"] if t in bt else None, "reached": r.get(t, False)}
                                    for t in topics]})

    totals = [s["score"] / s["max"] if s["max"] else 0.0 for s in subs]
    return {"topics": topic_rows, "tests": tests, "students": students, "files": files,
            "total_hist": histogram(totals), "n": len(subs),
            "mean_total": statistics.fmean([s["score"] for s in subs]) if subs else 0.0,
            "max_total": max([s["max"] for s in subs] + [0.0])}


# ------------------------------------------------------------------------------------------- output

def _env():
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pts"] = report_mod._pts
    env.filters["pct"] = _pct
    env.filters["firstline"] = _headline
    env.filters["message"] = lambda text: re.sub(r"^\[\]\s*", "", text)  # a test without cases: no "[]"
    return env


def build(data: dict, out: str, *, exercises: str = EXERCISES, handout: str | None = None) -> dict[str, str]:
    """Write the dashboard and the submission pages into ``out``; returns ``{name: page}`` (relative to out).

    ``handout``: where students find ``<topic>/GUIDE.md`` (a URL, or a path relative to the student
    pages); by default the local ``exercises`` folder. A guide is linked only when it exists there."""
    students_dir = os.path.join(out, "students")
    os.makedirs(students_dir, exist_ok=True)
    for old in os.listdir(students_dir):  # pages of an earlier run (a submission may have gone)
        if old.endswith(".html"):
            os.remove(os.path.join(students_dir, old))
    if handout is None:
        handout = urllib.parse.quote(os.path.relpath(os.path.abspath(exercises), os.path.abspath(students_dir))
                                     .replace(os.sep, "/"))
    an = analyse(data)
    meta = {k: v for k, v in data.items() if k != "submissions"}
    topics = [t["topic"] for t in an["topics"]]
    guides = guide_links(topics, exercises, handout)
    env = _env()
    common = {"note": data.get("note") or "", "suite": (data.get("suite_sha256") or "")[:12],
              "isolation": data.get("isolation") or ""}

    student_tpl = env.get_template("student.html.j2")
    mapping = {}
    for sub, f in zip(data["submissions"], an["files"]):
        points = iter(_test_points(sub, meta))
        topics_view = []
        for t in sub["topics"]:
            rows = []
            for x in t["tests"]:
                got, mx = next(points)
                rows.append({**x, "points": got, "max_points": mx, "cases": x["passed"] + x["failed"]})
            topics_view.append({**t, "rows": rows, "guide": guides.get(t["topic"]),
                                "share": t["score"] / t["max"] if t["max"] else 0.0})
        html = student_tpl.render(sub=sub, topics=topics_view, share=sub["score"] / sub["max"] if sub["max"] else 0.0,
                                  **common)
        _write(os.path.join(students_dir, f), html)
        mapping[sub["name"]] = f"students/{f}"

    dash = env.get_template("dashboard.html.j2").render(an=an, problems=data.get("problems") or [], **common)
    _write(os.path.join(out, "index.html"), dash)
    with open(os.path.join(out, "pages.json"), "w") as fh:
        json.dump(mapping, fh, indent=1, ensure_ascii=False)
    return mapping


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="grader feedback", description=__doc__.strip().split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="folder for index.html (the class dashboard) and students/*.html")
    p.add_argument("--report", default="out/grading/report.json",
                   help="the grading report to read (default: out/grading/report.json)")
    p.add_argument("--exercises", default=EXERCISES,
                   help="the handout folder where <topic>/GUIDE.md is looked for (default: exercises/)")
    p.add_argument("--handout", help="where students find the handout, to link the guides: a URL or a path "
                                     "relative to OUT/students (default: the --exercises folder)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        data = load(args.report)
    except FileNotFoundError:
        p.error(f"no report at {args.report}: grade first (grader PATH --out FOLDER writes FOLDER/report.json)")
    except (OSError, ValueError) as e:
        p.error(str(e))
    try:
        mapping = build(data, args.out, exercises=args.exercises, handout=args.handout)
    except ValueError as e:
        p.error(str(e))
    print(f"{len(mapping)} submission page(s) in {os.path.join(args.out, 'students')}/; "
          f"class dashboard: {os.path.join(args.out, 'index.html')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
