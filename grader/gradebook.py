"""The gradebook: every grading run, kept in a database (SQLAlchemy: a SQLite file by default, any
SQLAlchemy URL for a shared server, e.g. ``postgresql+psycopg://grader@db.example.org/course``).

    students      one row per student (the submission's folder or zip name)
    submissions   what a student handed in: its sha256 (of the graded source files), the archive or
                  folder it came from, when it was handed in (the archive's time) and first graded
    runs          one per ``grader`` invocation: when, the hidden suite's sha256, the grader's version,
                  the isolation mode, the machine, the topics
    grades        one per (run, submission): score, max, the submission's problem
    topic_scores  per grade and topic: score, max, the common reason
    test_results  per grade and test: weight, cases passed / failed / not run, credit, status, feedback

Grading the same files again (after a change of the hidden suite, say) adds a run and a grade: the
history is never rewritten. ``grader history STUDENT`` shows a student's grades over time and what
changed between consecutive ones; ``grader export --csv FILE`` writes them for a spreadsheet, or one
row per student (``--pick latest`` or ``best``) for an LMS.

Migrations: a ``schema_version`` table holds the schema's version; ``MIGRATIONS[n]`` upgrades a
gradebook from version ``n`` to ``n + 1`` (plain SQL through SQLAlchemy, no Alembic), applied in one
transaction when a gradebook is opened. A gradebook newer than this grader is refused.

The gradebook reads the reports ``grader/score.py`` produces and the run's ``meta``; grading itself
does not know it exists.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import os
import platform
import sys
import tomllib

from sqlalchemy import (Float, ForeignKey, Integer, String, Text, UniqueConstraint, create_engine, inspect,
                        select, text)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, selectinload

from grader.report import csv_cell

SCHEMA_VERSION = 1
MIGRATIONS: dict[int, list[str]] = {}  # n -> SQL statements taking a version-n gradebook to n + 1


class Base(DeclarativeBase):
    pass


class SchemaVersion(Base):
    __tablename__ = "schema_version"
    version: Mapped[int] = mapped_column(Integer, primary_key=True)


class Student(Base):
    __tablename__ = "students"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    submissions: Mapped[list[Submission]] = relationship(back_populates="student")


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (UniqueConstraint("student_id", "sha256"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id"), index=True)
    sha256: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)  # the archive or folder name it was graded from
    submitted_at: Mapped[dt.datetime] = mapped_column()  # the archive's (or folder's) modification time,
    # never later than its first grading (a date in the future would stay "latest" for good)
    first_graded_at: Mapped[dt.datetime] = mapped_column()
    student: Mapped[Student] = relationship(back_populates="submissions")


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(index=True)
    suite_sha256: Mapped[str] = mapped_column(String(64))
    grader_version: Mapped[str] = mapped_column(String(64))
    isolation: Mapped[str] = mapped_column(String(32))
    machine: Mapped[str] = mapped_column(String(255))
    topics: Mapped[str] = mapped_column(Text)  # comma-separated
    cuda: Mapped[bool] = mapped_column()
    seconds: Mapped[float] = mapped_column(Float)
    problems: Mapped[str] = mapped_column(Text)  # JSON list


class Grade(Base):
    __tablename__ = "grades"
    __table_args__ = (UniqueConstraint("run_id", "submission_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    score: Mapped[float] = mapped_column(Float)
    max: Mapped[float] = mapped_column(Float)
    problem: Mapped[str | None] = mapped_column(Text)
    run: Mapped[Run] = relationship()
    submission: Mapped[Submission] = relationship()
    topics: Mapped[list[TopicScore]] = relationship(order_by="TopicScore.id", back_populates="grade")
    tests: Mapped[list[TestResult]] = relationship(order_by="TestResult.id", back_populates="grade")


class TopicScore(Base):
    __tablename__ = "topic_scores"
    id: Mapped[int] = mapped_column(primary_key=True)
    grade_id: Mapped[int] = mapped_column(ForeignKey("grades.id"), index=True)
    topic: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    max: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    grade: Mapped[Grade] = relationship(back_populates="topics")


class TestResult(Base):
    __tablename__ = "test_results"
    __test__ = False  # not a pytest class
    id: Mapped[int] = mapped_column(primary_key=True)
    grade_id: Mapped[int] = mapped_column(ForeignKey("grades.id"), index=True)
    topic: Mapped[str] = mapped_column(String(64))
    test: Mapped[str] = mapped_column(String(255))
    weight: Mapped[float] = mapped_column(Float)
    passed: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    not_run: Mapped[int] = mapped_column(Integer)
    credit: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    feedback: Mapped[str] = mapped_column(Text)
    grade: Mapped[Grade] = relationship(back_populates="tests")


# ----------------------------------------------------------------------------- opening, migrating

def url_of(db: str) -> str:
    """A SQLAlchemy URL as is; anything else is a SQLite file path."""
    return db if "://" in db else "sqlite:///" + os.path.abspath(db)


def default_db(out: str) -> str:
    """``gradebook.sqlite`` beside the reports folder (``out/gradebook.sqlite`` for ``--out out/grading``)."""
    return os.path.join(os.path.dirname(os.path.normpath(out)), "gradebook.sqlite")


def open_db(db: str) -> Engine:
    """An engine on the gradebook, created or migrated to ``SCHEMA_VERSION`` when needed."""
    url = url_of(db)
    if url.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(url.removeprefix("sqlite:///")) or ".", exist_ok=True)
    engine = create_engine(url)
    with engine.begin() as conn:
        if not inspect(conn).has_table("schema_version"):
            Base.metadata.create_all(conn)
            conn.execute(SchemaVersion.__table__.insert().values(version=SCHEMA_VERSION))
            return engine
        version = conn.execute(select(SchemaVersion.version)).scalar_one()
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"the gradebook has schema version {version}, newer than this grader's "
                               f"{SCHEMA_VERSION}: update the grader")
        for v in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[v]:
                conn.execute(text(statement))
        if version != SCHEMA_VERSION:
            conn.execute(SchemaVersion.__table__.update().values(version=SCHEMA_VERSION))
    return engine


def grader_version() -> str:
    from grader.grade import ROOT
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]["version"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def _mtime(path: str) -> dt.datetime | None:
    try:
        stamp = os.stat(path).st_mtime
        return dt.datetime.fromtimestamp(stamp, dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    except (OSError, ValueError, OverflowError):  # a date that no datetime holds (a tar's year 36812)
        return None


NAME_CHARS = 255  # the students table's names


def _stored(name: str) -> str:
    """A student's name as the gradebook stores it: a longer one (a name of 70 no-break spaces,
    written out) is cut, and a digest of the whole name keeps it apart from every other."""
    if len(name) <= NAME_CHARS:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{name[:NAME_CHARS - 18]}…{digest}"


# ----------------------------------------------------------------------------- recording

def record(db: str, reports: list[dict], meta: dict, *, when: dt.datetime | None = None) -> int:
    """Record one grading run (``reports`` of ``grader.score.score``, ``meta`` of the grade command);
    returns the run's id."""
    engine = open_db(db)
    now = when or _now()
    with Session(engine) as session, session.begin():
        run = Run(started_at=now, suite_sha256=meta["suite_sha256"], grader_version=grader_version(),
                  isolation=meta["isolation"], machine=platform.node(), topics=",".join(meta["topics"]),
                  cuda=bool(meta.get("cuda")), seconds=float(meta.get("seconds", 0)),
                  problems=json.dumps(meta.get("problems", [])))
        session.add(run)
        reports = [{**r, "name": _stored(r["name"])} for r in reports]
        names = sorted({r["name"] for r in reports})
        students = {x.name: x for x in session.scalars(select(Student).where(Student.name.in_(names)))}
        subs = {(x.student.name, x.sha256): x for x in session.scalars(
            select(Submission).join(Submission.student).where(Student.name.in_(names)))}
        for r in reports:
            student = students.get(r["name"])
            if student is None:
                student = students[r["name"]] = Student(name=r["name"])
                session.add(student)
            sub = subs.get((r["name"], r["sha256"]))
            if sub is None:
                sub = subs[r["name"], r["sha256"]] = Submission(
                    student=student, sha256=r["sha256"], source=os.path.basename(r["source"]),
                    submitted_at=min(_mtime(r["source"]) or now, now), first_graded_at=now)
                session.add(sub)
            grade = Grade(run=run, submission=sub, score=r["score"], max=r["max"], problem=r["problem"])
            session.add(grade)
            for t in r["topics"]:
                grade.topics.append(TopicScore(topic=t["topic"], score=t["score"], max=t["max"], reason=t["reason"]))
                for x in t["tests"]:
                    grade.tests.append(TestResult(topic=t["topic"], test=x["test"], weight=x["weight"],
                                                  passed=x["passed"], failed=x["failed"], not_run=x["not_run"],
                                                  credit=x["credit"], status=x["status"], feedback=x["feedback"]))
        session.flush()
        run_id = run.id
    engine.dispose()
    return run_id


# ----------------------------------------------------------------------------- reading

def grades_of(session: Session, student: str) -> list[Grade]:
    """A student's grades, oldest run first."""
    return list(session.scalars(select(Grade).join(Grade.submission).join(Submission.student).join(Grade.run)
                                .where(Student.name == student).order_by(Run.started_at, Run.id)))


def _pts(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def changes(before: Grade, after: Grade) -> list[str]:
    """What differs between two grades of a student: why (a new submission, a changed suite), each
    topic whose score moved, each test whose status changed."""
    why = []
    if before.submission_id != after.submission_id:
        why.append("new submission")
    if before.run.suite_sha256 != after.run.suite_sha256:
        why.append(f"hidden suite changed ({before.run.suite_sha256[:12]} -> {after.run.suite_sha256[:12]})")
    lines = ["; ".join(why) or "same submission, same suite"]
    old = {t.topic: t for t in before.topics}
    for t in after.topics:
        o = old.get(t.topic)
        if o is None:
            lines.append(f"{t.topic}: newly graded, {_pts(t.score)} / {_pts(t.max)}")
        elif (o.score, o.max) != (t.score, t.max):
            lines.append(f"{t.topic}: {_pts(o.score)} / {_pts(o.max)} -> {_pts(t.score)} / {_pts(t.max)}")
    old_tests = {(x.topic, x.test): x for x in before.tests}
    for x in after.tests:
        o = old_tests.get((x.topic, x.test))
        if o is None:
            lines.append(f"  {x.topic}: {x.test}: new test, {x.status}")
            continue
        if o.weight != x.weight:
            lines.append(f"  {x.topic}: {x.test}: weight {_pts(o.weight)} -> {_pts(x.weight)}")
        if o.status != x.status or (o.passed, o.failed) != (x.passed, x.failed):
            lines.append(f"  {x.topic}: {x.test}: {o.status} {o.passed}/{o.passed + o.failed} -> "
                         f"{x.status} {x.passed}/{x.passed + x.failed}")
    gone = set(old_tests) - {(x.topic, x.test) for x in after.tests}
    lines += [f"  {topic}: {test}: no longer in the suite" for topic, test in sorted(gone)]
    return lines


def history_text(db: str, student: str) -> str | None:
    engine = open_db(db)
    try:
        with Session(engine) as session:
            grades = grades_of(session, student)
            if not grades:
                return None
            lines = [f"{student}: {len(grades)} grade(s), {len({g.submission_id for g in grades})} submission(s)",
                     f"  {'graded (UTC)':<19}  {'run':>4}  {'submission':<12}  {'suite':<12}  score"]
            prev = None
            for g in grades:
                lines.append(f"  {g.run.started_at:%Y-%m-%d %H:%M:%S}  {g.run_id:>4}  {(g.submission.sha256 or '-')[:12]:<12}"
                             f"  {g.run.suite_sha256[:12]:<12}  {_pts(g.score)} / {_pts(g.max)}")
                if prev is not None:
                    lines += [f"      {c}" for c in changes(prev, g)]
                prev = g
            return "\n".join(lines)
    finally:
        engine.dispose()


def rows(db: str, pick: str | None = None) -> tuple[list[str], list[list]]:
    """Header and rows of the export: every grade (``pick`` None), or one per student: the latest
    grade of their latest (``"latest"``) or best-scoring (``"best"``) submission."""
    engine = open_db(db)
    try:
        with Session(engine) as session:
            grades = list(session.scalars(
                select(Grade).join(Grade.run).order_by(Run.started_at, Run.id, Grade.id)
                .options(selectinload(Grade.topics), selectinload(Grade.run),
                         selectinload(Grade.submission).selectinload(Submission.student))))
            topics = list(dict.fromkeys(t.topic for g in grades for t in g.topics))
            if pick:
                current: dict[int, Grade] = {}  # submission -> its latest grade (the current suite's verdict)
                for g in grades:
                    current[g.submission_id] = g
                per_student: dict[int, Grade] = {}
                for g in current.values():
                    s = g.submission
                    held = per_student.get(s.student_id)
                    key = ((s.submitted_at, s.id) if pick == "latest" else (g.score, s.submitted_at, s.id))
                    if held is None or key > ((held.submission.submitted_at, held.submission.id) if pick == "latest"
                                              else (held.score, held.submission.submitted_at, held.submission.id)):
                        per_student[s.student_id] = g
                grades = sorted(per_student.values(), key=lambda g: g.submission.student.name)
            head = ["student", *topics, "total", "max", "percent", "submission_sha256", "submitted_at",
                    "source", "graded_at", "run", "suite_sha256"]
            out = []
            for g in grades:
                by = {t.topic: t.score for t in g.topics}
                out.append([g.submission.student.name, *[by.get(t, "") for t in topics], g.score, g.max,
                            round(100 * g.score / g.max, 2) if g.max else 0.0, g.submission.sha256 or "",
                            f"{g.submission.submitted_at:%Y-%m-%d %H:%M:%S}", g.submission.source,
                            f"{g.run.started_at:%Y-%m-%d %H:%M:%S}", g.run_id, g.run.suite_sha256])
            return head, out
    finally:
        engine.dispose()


# ----------------------------------------------------------------------------- commands

DB_HELP = ("the gradebook: a SQLite file or any SQLAlchemy URL, e.g. postgresql+psycopg://user@host/course "
           "(default: out/gradebook.sqlite)")


def history_main(argv) -> int:
    """``grader history STUDENT``."""
    p = argparse.ArgumentParser(prog="grader history", description="A student's grades over time, and what "
                                "changed between consecutive ones (a new submission, a changed hidden suite).")
    p.add_argument("student", help="the student's name (their submission's folder or zip name)")
    p.add_argument("--db", default=default_db("out/grading"), help=DB_HELP)
    args = p.parse_args(argv)
    found = history_text(args.db, args.student)
    if found is None:
        print(f"no grades for {args.student!r} in {args.db}", file=sys.stderr)
        return 1
    print(found)
    return 0


def export_main(argv) -> int:
    """``grader export --csv FILE [--pick latest|best]``."""
    p = argparse.ArgumentParser(prog="grader export", description="Grades from the gradebook as CSV: every "
                                "grade, or one row per student with --pick (for an LMS).")
    p.add_argument("--csv", required=True, metavar="FILE", help="the CSV file to write ('-': standard output)")
    p.add_argument("--pick", choices=["latest", "best"],
                   help="one row per student: the current grade of their latest or of their best submission")
    p.add_argument("--db", default=default_db("out/grading"), help=DB_HELP)
    args = p.parse_args(argv)
    head, body = rows(args.db, args.pick)
    f = sys.stdout if args.csv == "-" else open(args.csv, "w", newline="")
    try:
        w = csv.writer(f)
        w.writerow(head)
        w.writerows([csv_cell(v) for v in row] for row in body)  # a student's name is never run as a formula
    finally:
        if f is not sys.stdout:
            f.close()
    if args.csv != "-":
        print(f"wrote {args.csv}: {len(body)} row(s)")
    return 0

