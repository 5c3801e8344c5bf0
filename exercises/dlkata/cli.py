"""``dlkata``: the student's command.

    dlkata list                 every topic: not started, in progress or done, and a progress bar
    dlkata check [TOPIC]        run a topic's public tests (default: the first topic not done yet)
                                and show the first failure's message
    dlkata hint TOPIC           one more hint each time (from the topic's GUIDE.md, "## Hints")
    dlkata watch                re-run the current topic whenever a file under exercises/ is saved,
                                and move on to the next topic when it passes

Run it from the handout (the folder holding ``exercises/``) or from ``exercises/`` itself. What it
remembers (hints shown, topics passed) is in ``.dlkata/state.json`` there.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import locale
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from dlkata import TOPICS

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- where things are ---------------------------------------------------------------------------

def find_exercises(start: str) -> str | None:
    """The folder holding the topic folders: ``start`` or an ancestor, or its ``exercises/``."""
    here = os.path.abspath(start)
    while True:
        for candidate in (os.path.join(here, "exercises"), here):
            if any(os.path.isfile(os.path.join(candidate, t, f"{t}.py")) for t in TOPICS):
                return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def topics(exercises: str) -> list[str]:
    """The topics present, in the order of ``TOPICS`` (then any other topic folder, by name)."""
    present = [t for t in TOPICS if os.path.isfile(os.path.join(exercises, t, f"{t}.py"))]
    extra = sorted(n for n in os.listdir(exercises) if n not in TOPICS and not n.startswith((".", "_"))
                   and os.path.isfile(os.path.join(exercises, n, f"{n}.py")))
    return present + extra


class State:
    """``.dlkata/state.json`` in the handout: hints shown per topic, and the source digest of each
    topic when its public tests last passed."""

    def __init__(self, exercises: str):
        root = os.path.dirname(exercises) if os.path.basename(exercises) == "exercises" else exercises
        self.path = os.path.join(root, ".dlkata", "state.json")
        try:
            with open(self.path) as f:
                self.data = json.load(f)
        except (OSError, ValueError):
            self.data = {}
        self.data.setdefault("hints", {})
        self.data.setdefault("passed", {})
        self.data.setdefault("first_seen", {})

    def save(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "w") as f:
            json.dump(self.data, f, indent=1, sort_keys=True)


def source_digest(exercises: str, topic: str) -> str:
    h = hashlib.sha256()
    folder = os.path.join(exercises, topic)
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            with open(os.path.join(folder, name), "rb") as f:
                h.update(name.encode() + b"\0" + f.read() + b"\0")
    return h.hexdigest()


def _is_stub(fn) -> bool:
    body = fn.body[1:] if fn.body and isinstance(fn.body[0], ast.Expr) and isinstance(
        getattr(fn.body[0], "value", None), ast.Constant) else fn.body
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def status(exercises: str, topic: str, state: State) -> str:
    """"done" (its public tests passed on the current source), "not started" (every function still
    raises NotImplementedError, or the source is as dlkata first saw it and some still do) or
    "in progress"."""
    digest = source_digest(exercises, topic)
    if state.data["passed"].get(topic) == digest:
        return "done"
    first = state.data["first_seen"].setdefault(topic, digest)
    try:
        with open(os.path.join(exercises, topic, f"{topic}.py")) as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return "in progress"
    stubs = [_is_stub(n) for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if stubs and (all(stubs) or (any(stubs) and digest == first)):
        return "not started"
    return "in progress"


# --- running the public tests -------------------------------------------------------------------

@dataclass
class Result:
    topic: str
    passed: int
    total: int
    failures: list  # [(test, message)]

    @property
    def ok(self) -> bool:
        return self.total > 0 and self.passed == self.total and not self.failures


def run_public(exercises: str, topic: str) -> Result:
    """The topic's public tests in a fresh Python (so that a changed file is re-imported)."""
    with tempfile.TemporaryDirectory(prefix="dlkata-") as tmp:
        out = os.path.join(tmp, "report.jsonl")
        env = {**os.environ, "DLKATA_REPORT": out,
               "PYTHONPATH": os.pathsep.join(p for p in (PACKAGE_PARENT, os.environ.get("PYTHONPATH")) if p)}
        cmd = [sys.executable, "-m", "pytest", os.path.join(exercises, topic), "-q", "-p", "dlkata.report",
               "-p", "no:hypothesispytest", "-p", "no:anyio", "-p", "no:cacheprovider", "--rootdir", exercises]
        proc = subprocess.run(cmd, cwd=exercises, env=env, capture_output=True, text=True)
        rows = []
        if os.path.exists(out):
            with open(out) as f:
                rows = [json.loads(line) for line in f if line.strip()]
    tests = [r for r in rows if r["test"] != "(importing the tests)"]
    failures = [(r["test"], r["message"]) for r in rows if r["outcome"] == "failed"]
    if not rows and proc.returncode not in (0, 1):
        failures = [("pytest", (proc.stdout + proc.stderr).strip()[-2000:] or f"exit status {proc.returncode}")]
    return Result(topic, sum(r["outcome"] == "passed" for r in tests), len(tests), failures)


def _console():
    from rich.console import Console
    return Console(highlight=False, soft_wrap=True)


def check(exercises: str, topic: str, state: State, console) -> Result:
    console.print(f"[bold]{topic}[/bold]: running the public tests ...")
    result = run_public(exercises, topic)
    if result.ok:
        state.data["passed"][topic] = source_digest(exercises, topic)
        console.print(f"[green]{topic}: all {result.total} public tests pass.[/green] The graded suite "
                      "checks more (random shapes, float32 and float64, edge cases).")
    else:
        state.data["passed"].pop(topic, None)
        console.print(f"[yellow]{topic}: {result.passed} of {result.total} public tests pass.[/yellow]")
        test, message = result.failures[0] if result.failures else ("(no test ran)", "")
        console.print(f"[red]x {test}[/red]")
        for line in message.splitlines():
            console.print(f"  {line}", markup=False)
        if len(result.failures) > 1:
            console.print(f"({len(result.failures) - 1} more failing; fix this one first)")
    state.save()
    return result


def next_topic(exercises: str, state: State) -> str | None:
    return next((t for t in topics(exercises) if status(exercises, t, state) != "done"), None)


# --- hints --------------------------------------------------------------------------------------

HEADINGS = {"en": ("GUIDE.md", "Hints"), "zh": ("GUIDE.zh.md", "提示")}


def _numbered_items(section: str) -> list[str]:
    items: list[str] = []
    for line in section.splitlines():
        m = re.match(r"\s{0,3}\d+[.)]\s+(.*)", line)
        if m:
            items.append(m.group(1).strip())
        elif items and line.strip() and line[:1].isspace():
            items[-1] += " " + line.strip()
    return items


def hints(exercises: str, topic: str, lang: str = "en") -> list[str]:
    """The topic's hints, in order: the numbered list under "## Hints" of its GUIDE.md ("## 提示" of
    GUIDE.zh.md for ``lang="zh"``, falling back to English); without a guide, the "Pitfalls" of the
    exercise's docstring."""
    for code in dict.fromkeys([lang, "en"]):
        name, heading = HEADINGS.get(code, HEADINGS["en"])
        path = os.path.join(exercises, topic, name)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                text = f.read()
            m = re.search(rf"^##\s+{re.escape(heading)}\s*$(.*?)(?=^#{{1,2}}\s|\Z)", text, re.M | re.S)
            if m and _numbered_items(m.group(1)):
                return _numbered_items(m.group(1))
    try:
        with open(os.path.join(exercises, topic, f"{topic}.py"), encoding="utf-8") as f:
            doc = ast.get_docstring(ast.parse(f.read())) or ""
    except (OSError, SyntaxError, ValueError):
        return []
    m = re.search(r"^Pitfalls[^\n]*:\n(.*?)(?=\n\S|\Z)", doc, re.M | re.S)
    items: list[str] = []
    for line in (m.group(1).splitlines() if m else []):
        if line.strip().startswith("* "):
            items.append(line.strip()[2:].strip())
        elif items and line.strip():
            items[-1] += " " + line.strip()
    return [re.sub(r"``(.*?)``", r"`\1`", i).rstrip(";") for i in items]


def default_lang() -> str:
    for value in (os.environ.get("LC_ALL"), os.environ.get("LC_MESSAGES"), os.environ.get("LANG"),
                  locale.getlocale()[0]):
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


# --- commands -----------------------------------------------------------------------------------

def cmd_list(exercises: str, state: State, console) -> int:
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    names = topics(exercises)
    table = Table(title="dlkata", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("topic")
    table.add_column("status")
    table.add_column("hints seen", justify="right")
    style = {"done": "green", "in progress": "yellow", "not started": "dim"}
    done = 0
    for k, t in enumerate(names, 1):
        s = status(exercises, t, state)
        done += s == "done"
        table.add_row(str(k), t, f"[{style[s]}]{s}[/{style[s]}]", str(state.data["hints"].get(t, 0)))
    console.print(table)
    progress = Table.grid(padding=(0, 1))
    progress.add_row(ProgressBar(total=max(len(names), 1), completed=done, width=30),
                     f"{done} of {len(names)} topics done")
    console.print(progress)
    if done < len(names):
        console.print(f"next: {next_topic(exercises, state)} (dlkata check)")
    state.save()
    return 0


def cmd_check(exercises: str, topic: str | None, state: State, console) -> int:
    topic = topic or next_topic(exercises, state)
    if topic is None:
        console.print("[green]Every topic is done.[/green] Run `dlkata check TOPIC` to check one again.")
        return 0
    return 0 if check(exercises, topic, state, console).ok else 1


def cmd_hint(exercises: str, topic: str, lang: str, state: State, console) -> int:
    items = hints(exercises, topic, lang)
    if not items:
        console.print(f"No hints for {topic}.")
        return 0
    shown = min(state.data["hints"].get(topic, 0) + 1, len(items))
    state.data["hints"][topic] = shown
    state.save()
    for k, text in enumerate(items[:shown], 1):
        console.print(f"{'[bold]' if k == shown else ''}hint {k}/{len(items)}: ", end="")
        console.print(text, markup=False)
    if shown == len(items):
        console.print("(that was the last hint)")
    return 0


def cmd_watch(exercises: str, state: State, console, topic: str | None = None) -> int:
    from watchfiles import watch
    topic = topic or next_topic(exercises, state)
    changes = watch(exercises, watch_filter=lambda _, path: path.endswith((".py", ".md")), debounce=300,
                    step=100, yield_on_timeout=False)
    try:
        while topic is not None:
            result = check(exercises, topic, state, console)
            if result.ok:
                topic = next_topic(exercises, state)
                if topic is not None:
                    console.print(f"Next topic: [bold]{topic}[/bold] (exercises/{topic}/{topic}.py)")
                continue
            console.print(f"Watching exercises/ for changes (current topic: {topic}; Ctrl-C to stop) ...")
            next(changes)
    except (KeyboardInterrupt, StopIteration):
        return 0
    console.print("[green]Every topic is done.[/green]")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="dlkata", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--dir", default=".", help="the handout (default: the current folder)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="topics and progress")
    c = sub.add_parser("check", help="run a topic's public tests")
    c.add_argument("topic", nargs="?")
    h = sub.add_parser("hint", help="one more hint for a topic")
    h.add_argument("topic")
    h.add_argument("--lang", choices=sorted(HEADINGS), default=None, help="default: from the locale")
    w = sub.add_parser("watch", help="re-run the current topic on every save")
    w.add_argument("topic", nargs="?")
    args = p.parse_args(argv)
    exercises = find_exercises(args.dir)
    if exercises is None:
        p.error("no exercises here: run dlkata in the handout (the folder holding exercises/)")
    known = topics(exercises)
    topic = getattr(args, "topic", None)
    if topic is not None and topic not in known:
        p.error(f"unknown topic {topic!r} (topics: {', '.join(known)})")
    state, console = State(exercises), _console()
    if args.command == "list":
        return cmd_list(exercises, state, console)
    if args.command == "check":
        return cmd_check(exercises, topic, state, console)
    if args.command == "hint":
        return cmd_hint(exercises, topic, args.lang or default_lang(), state, console)
    return cmd_watch(exercises, state, console, topic)


if __name__ == "__main__":
    sys.exit(main())
