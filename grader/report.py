"""What instructors and students read: a terminal table, JSON, Gradescope's results.json, a class CSV.

Every text here may come from a student (names, messages of their exceptions): ``inert`` makes control
characters and escape sequences visible instead of acted upon, CSV cells never start a formula, and
each student's Gradescope file gets a name of its own.
"""
from __future__ import annotations

import collections
import csv
import hashlib
import json
import os


def _visible(ch: str) -> str:
    return ch if ch.isprintable() else ch.encode("unicode_escape", "backslashreplace").decode("ascii")


def inert(value):
    """``value`` (a report, a list, a string) with every string's control characters, escape
    sequences, direction overrides and other invisible characters written out (``\\x1b``); line
    breaks stay."""
    if isinstance(value, str):
        if value.isprintable():
            return value
        return "\n".join("".join(map(_visible, line)) for line in value.split("\n"))
    if isinstance(value, dict):
        return {inert(k): inert(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [inert(v) for v in value]
    return value


def csv_cell(value):
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    if isinstance(value, str):
        value = inert(value).replace("\n", " ")
        if value.startswith(("=", "+", "-", "@", "\t", "\r")):
            return "'" + value
    return value


def file_names(reports: list[dict]) -> list[str]:
    """One safe file name per report: ``gradescope/<name>.json`` (see ``distinct_file_names``)."""
    def safe(name: str) -> str:
        return "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)[:80].strip(".")
    return distinct_file_names([r["name"] for r in reports], safe, ".json")


def distinct_file_names(names: list[str], safe, ext: str) -> list[str]:
    """A file name per student name, all different, also where the file system ignores case. A name
    is its own file name only when ``safe`` leaves it as it is (case aside) and no other name of the
    class becomes the same file: otherwise it gets a suffix from its exact name, the same in every
    run and whatever the order of the class. So no student's file can be taken by a name that only
    becomes it ("bob smith" and "bob_smith" are bob_smith-1e2f....json and bob_smith-9a0c....json,
    neither bob_smith.json), nor given to a classmate who did not submit."""
    bases = [safe(n) or "submission" for n in names]
    count = collections.Counter(b.lower() for b in bases)
    out, taken = [], set()
    for name, base in zip(names, bases):
        if base.lower() != name.lower() or count[base.lower()] > 1:
            base = f"{base}-{hashlib.sha256(name.encode('utf-8', 'surrogateescape')).hexdigest()[:10]}"
        candidate, k = base, 1
        while candidate.lower() in taken:  # the same exact name twice: the class folder flags it
            k += 1
            candidate = f"{base}-{k}"
        taken.add(candidate.lower())
        out.append(candidate + ext)
    return out


def _pts(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def table(report: dict, detail: bool = True) -> str:
    """One submission: per topic and per test, then the total."""
    report = inert(report)
    lines = [f"{report['name']}  (sha256 {report['sha256'][:12] if report['sha256'] else '-'})"]
    if report["problem"]:
        lines.append(f"  ! {report['problem']}")
    width = max([len(t["test"]) for topic in report["topics"] for t in topic["tests"]] + [20])
    for topic in report["topics"]:
        lines.append(f"  {topic['topic']:<{width + 2}} {_pts(topic['score']):>6} / {_pts(topic['max'])}")
        if topic["reason"]:
            lines.append(f"      {topic['reason'].splitlines()[0][:160]}")
            continue
        if not detail:
            continue
        for t in topic["tests"]:
            cases = t["passed"] + t["failed"]
            mark = {"passed": "ok", "failed": "FAIL", "not run": "not run"}[t["status"]]
            lines.append(f"    {t['test']:<{width}} {mark:>7}  {t['passed']}/{cases} cases")
            if t["feedback"]:
                for fl in t["feedback"].splitlines()[:3]:
                    lines.append(f"        {fl[:160]}")
    lines.append(f"  {'total':<{width + 2}} {_pts(report['score']):>6} / {_pts(report['max'])}")
    return "\n".join(lines)


def class_table(reports: list[dict], topics: list[str]) -> str:
    reports = inert(reports)
    w = max([len(r["name"]) for r in reports] + [7])
    cols = [t[:13] for t in topics]
    head = f"{'student':<{w}}  " + "  ".join(f"{c:>13}" for c in cols) + f"  {'total':>9}"
    rows = [head, "-" * len(head)]
    for r in reports:
        by = {t["topic"]: t for t in r["topics"]}
        rows.append(f"{r['name']:<{w}}  " + "  ".join(f"{_pts(by[t]['score']) + '/' + _pts(by[t]['max']):>13}"
                                                      for t in topics)
                    + f"  {_pts(r['score']) + '/' + _pts(r['max']):>9}")
    return "\n".join(rows)


def gradescope(report: dict, meta: dict) -> dict:
    """Gradescope's ``results.json`` for one submission: one entry per test, CUDA-not-run noted."""
    report = inert(report)
    tests, number = [], 0
    for topic in report["topics"]:
        weight_sum = sum(t["weight"] for t in topic["tests"] if t["credit"] is not None) or 1.0
        for t in topic["tests"]:
            number += 1
            share = topic["max"] * t["weight"] / weight_sum if t["credit"] is not None else 0.0
            out = t["feedback"] or ("all cases passed" if t["status"] == "passed" else "")
            if t["not_run"]:
                out += f"\n({t['not_run']} CUDA case(s) not run: no GPU on the grading machine; not counted)"
            if topic["reason"]:
                out = topic["reason"]
            tests.append({"name": f"{topic['topic']}: {t['test']}", "number": str(number),
                          "score": round(share * (t["credit"] or 0.0), 4), "max_score": round(share, 4),
                          "status": "passed" if t["status"] == "passed" else "failed",
                          "output": out.strip(), "visibility": "visible"})
    return {"score": report["score"], "execution_time": meta.get("seconds", 0), "tests": tests, "visibility": "visible",
            "output": meta.get("note", ""), "extra_data": {"sha256": report["sha256"], "suite_sha256": meta.get("suite_sha256")}}


def write_all(reports: list[dict], topics: list[str], meta: dict, out: str) -> list[dict]:
    """``report.json`` (each submission with its ``gradescope_file``), ``class.csv`` and
    ``gradescope/<file>.json`` per submission. Returns the reports as written (inert, with their file)."""
    os.makedirs(os.path.join(out, "gradescope"), exist_ok=True)
    reports = [{**inert(r), "gradescope_file": f"gradescope/{n}"} for r, n in zip(reports, file_names(reports))]
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump({**inert(meta), "submissions": reports}, f, indent=1)
    with open(os.path.join(out, "class.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", *topics, "total", "max", "sha256", "problem"])
        for r in reports:
            by = {t["topic"]: t["score"] for t in r["topics"]}
            w.writerow([csv_cell(v) for v in [r["name"], *[by[t] for t in topics], r["score"], r["max"], r["sha256"],
                                            r["problem"] or ""]])
    for r in reports:
        with open(os.path.join(out, r["gradescope_file"]), "w") as f:
            json.dump(gradescope(r, meta), f, indent=1)
    return reports
