"""The gradebook: a grading run recorded by ``grader PATH --db``, a regrade after a real change of the
hidden suite (a copy of the project with another test weight), ``grader history`` and ``grader export``,
and the schema's migrations; against a real SQLite file and a real PostgreSQL server (a throwaway
cluster started here; the test says why it is skipped when none can be started). No mocks."""
from __future__ import annotations

import csv
import datetime as dt
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import uuid

import pytest
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.orm import Session

from grader import gradebook as gb
from grader.examples.make_class import CLASS
from tests.grader import classroom as c

TOPIC = c.TOPIC


# ----------------------------------------------------------------------------- a PostgreSQL server

def _pg_bin() -> str | None:
    found = [os.environ.get("DLKATA_PG_BIN", ""), *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True),
             os.path.dirname(shutil.which("pg_ctl") or "")]
    return next((d for d in found if d and os.path.isfile(os.path.join(d, "pg_ctl"))), None)


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL cluster in a temporary folder, listening on a unix socket only; yields the socket's
    folder. The server refuses to run as root: as root it runs as the ``postgres`` system user."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("no PostgreSQL driver: pip install 'psycopg[binary]' (the 'postgresql' extra)")
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server here (initdb/pg_ctl not found; apt-get install postgresql)")
    as_user: list[str] = []
    folder = tempfile.mkdtemp(prefix="dlkata-pg-")
    if os.geteuid() == 0:
        import pwd
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(folder)
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        os.chown(folder, pw.pw_uid, pw.pw_gid)
        as_user = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", "--"]
    data = os.path.join(folder, "data")

    def pg(*cmd, check=True):
        return subprocess.run([*as_user, os.path.join(bin_dir, cmd[0]), *cmd[1:]], capture_output=True, text=True,
                              timeout=120, check=check)
    try:
        pg("initdb", "-D", data, "-U", "dlkata", "--auth=trust", "-E", "UTF8")
        pg("pg_ctl", "-D", data, "-l", os.path.join(folder, "log"), "-w", "-o",
           f"-k {folder} -c listen_addresses='' -c fsync=off", "start")
    except (subprocess.CalledProcessError, OSError) as e:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"a PostgreSQL server could not be started: {getattr(e, 'stderr', '') or e}")
    yield folder
    pg("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop", check=False)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    """A fresh, empty gradebook: a SQLite file, or a new database on the PostgreSQL server."""
    if request.param == "sqlite":
        yield str(tmp_path / "gradebook.sqlite")
        return
    import psycopg
    socket_dir = request.getfixturevalue("pg_server")
    name = "gb_" + uuid.uuid4().hex[:12]
    with psycopg.connect(host=socket_dir, user="dlkata", dbname="postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield f"postgresql+psycopg://dlkata@/{name}?host={socket_dir}"


# ----------------------------------------------------------------------------- grading runs

@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The example class graded on one topic, recorded into a SQLite gradebook by the grade command."""
    base = tmp_path_factory.mktemp("gradebook")
    path = str(base / "gradebook.sqlite")
    report = c.run_grader(CLASS, str(base / "out"), extra=["--db", path])
    return {"report": report, "db": path, "subs": c.by_name(report)}


@pytest.fixture(scope="module")
def regraded(tmp_path_factory):
    """``partial.zip`` regraded after a change of the hidden suite: a copy of the project whose
    ``tests/grading.toml`` weighs one test three times (its digest changes, so does the score)."""
    copy = tmp_path_factory.mktemp("changed-suite") / "project"
    ignore = shutil.ignore_patterns("__pycache__", "examples", "kata", "grader")
    shutil.copytree(os.path.join(c.ROOT, "grader"), copy / "grader", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(os.path.join(c.ROOT, "tests"), copy / "tests", ignore=ignore)
    shutil.copytree(os.path.join(c.ROOT, "exercises"), copy / "exercises", ignore=ignore)  # the stubs' defaults too
    shutil.copy(os.path.join(c.ROOT, "pyproject.toml"), copy / "pyproject.toml")
    toml = copy / "tests" / "grading.toml"
    toml.write_text(toml.read_text().replace(f"[{TOPIC}.tests]\n", f"[{TOPIC}.tests]\ntest_mask_leaves_padding_out = 3\n"))
    done = subprocess.run([sys.executable, "-m", "grader", os.path.join(CLASS, "partial.zip"), "--topics", TOPIC,
                           "--json", "--call-timeout", "3", "--db", "none", "--out", str(copy / "out")],
                          cwd=copy, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (copy / "gradebook.sqlite").exists() and not (copy / "out" / "gradebook.sqlite").exists()
    return json.loads(done.stdout)


def _meta(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("submissions", "_pid", "_jobs")}


def test_the_grade_command_records_its_run(graded):
    report = graded["report"]
    engine = create_engine(gb.url_of(graded["db"]))
    with Session(engine) as s:
        assert s.scalar(select(gb.SchemaVersion.version)) == gb.SCHEMA_VERSION
        assert sorted(s.scalars(select(gb.Student.name))) == ["hostile", "partial", "perfect"]
        (run,) = s.scalars(select(gb.Run)).all()
        assert (run.suite_sha256, run.isolation, run.topics) == (report["suite_sha256"], report["isolation"], TOPIC)
        assert run.machine == platform.node() and run.grader_version == gb.grader_version()
        assert json.loads(run.problems) == report["problems"] == []
        subs = {x.student.name: x for x in s.scalars(select(gb.Submission))}
        assert {n: x.source for n, x in subs.items()} == {"hostile": "hostile", "partial": "partial.zip",
                                                           "perfect": "perfect.zip"}
        for name, sub in graded["subs"].items():
            (grade,) = s.scalars(select(gb.Grade).where(gb.Grade.submission_id == subs[name].id)).all()
            assert subs[name].sha256 == sub["sha256"] and len(sub["sha256"]) == 64
            assert (grade.score, grade.max) == (sub["score"], sub["max"])
            assert [(t.topic, t.score) for t in grade.topics] == [(TOPIC, c.topic_of(sub)["score"])]
            assert [(t.test, t.status, t.passed, t.failed, t.feedback) for t in grade.tests] == [
                (t["test"], t["status"], t["passed"], t["failed"], t["feedback"]) for t in c.topic_of(sub)["tests"]]
    engine.dispose()
    assert 0 < graded["subs"]["partial"]["score"] < 10 == graded["subs"]["perfect"]["score"]


def test_the_default_gradebook_sits_beside_the_reports():
    assert gb.default_db("out/grading") == gb.default_db("out/grading/") == os.path.join("out", "gradebook.sqlite")
    assert gb.default_db("/srv/course/reports") == "/srv/course/gradebook.sqlite"
    assert gb.url_of("out/x.sqlite") == "sqlite:///" + os.path.abspath("out/x.sqlite")
    assert gb.url_of("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"


def test_a_regrade_keeps_the_history_and_says_what_changed(db, graded, regraded, capsys, tmp_path):
    first = graded["report"]
    gb.record(db, first["submissions"], _meta(first))
    gb.record(db, regraded["submissions"], _meta(regraded))
    old, new = graded["subs"]["partial"], regraded["submissions"][0]
    assert new["sha256"] == old["sha256"] and regraded["suite_sha256"] != first["suite_sha256"]
    assert new["score"] < old["score"]  # the failed test weighs more now

    assert gb.history_main(["partial", "--db", db]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "partial: 2 grade(s), 1 submission(s)"
    assert [line.split()[2:4] for line in out[2:4]] == [["1", old["sha256"][:12]], ["2", new["sha256"][:12]]]
    assert out[3].endswith(f"{gb._pts(new['score'])} / 10") and out[2].endswith(f"{gb._pts(old['score'])} / 10")
    assert out[4].strip() == (f"hidden suite changed ({first['suite_sha256'][:12]} -> "
                              f"{regraded['suite_sha256'][:12]})")
    assert out[5].strip() == f"{TOPIC}: {gb._pts(old['score'])} / 10 -> {gb._pts(new['score'])} / 10"
    assert out[6].strip() == f"{TOPIC}: test_mask_leaves_padding_out: weight 1 -> 3"
    assert len(out) == 7, "\n".join(out)  # no test changed its outcome
    assert gb.history_main(["nobody", "--db", db]) == 1

    assert gb.export_main(["--csv", str(tmp_path / "all.csv"), "--db", db]) == 0
    with open(tmp_path / "all.csv", newline="") as f:
        every = list(csv.DictReader(f))
    assert [(r["student"], r["run"]) for r in every] == [("hostile", "1"), ("partial", "1"), ("perfect", "1"),
                                                          ("partial", "2")]
    assert list(every[0])[:5] == ["student", TOPIC, "total", "max", "percent"]
    assert gb.export_main(["--csv", str(tmp_path / "lms.csv"), "--pick", "latest", "--db", db]) == 0
    with open(tmp_path / "lms.csv", newline="") as f:
        lms = {r["student"]: r for r in csv.DictReader(f)}
    assert sorted(lms) == ["hostile", "partial", "perfect"]
    assert float(lms["partial"]["total"]) == pytest.approx(new["score"])  # the current suite's verdict
    assert lms["partial"]["run"] == "2" and float(lms["perfect"]["percent"]) == 100.0


def test_latest_and_best_submission(db, graded, tmp_path):
    """A student who handed in a perfect solution, then a worse one: latest picks the second, best the first;
    handing in new files adds a submission, with the change named in the history."""
    meta = _meta(graded["report"])
    for k, (name, when) in enumerate([("perfect", 1_700_000_000), ("partial", 1_700_003_600)]):
        archive = tmp_path / f"carol-{k}.zip"
        archive.write_bytes(b"")
        os.utime(archive, (when, when))
        gb.record(db, [{**graded["subs"][name], "name": "carol", "source": str(archive)}], meta)
    picked = {pick: {r[0]: r for r in gb.rows(db, pick)[1]} for pick in ("latest", "best")}
    head = gb.rows(db)[0]
    total, sha, submitted = head.index("total"), head.index("submission_sha256"), head.index("submitted_at")
    assert picked["latest"]["carol"][total] == graded["subs"]["partial"]["score"]
    assert picked["latest"]["carol"][submitted] == "2023-11-14 23:13:20"
    assert picked["best"]["carol"][total] == 10.0
    assert picked["best"]["carol"][sha] == graded["subs"]["perfect"]["sha256"]
    history = gb.history_text(db, "carol").splitlines()
    assert history[0] == "carol: 2 grade(s), 2 submission(s)"
    assert history[4].strip() == "new submission"
    assert history[5].strip() == f"{TOPIC}: 10 / 10 -> {gb._pts(graded['subs']['partial']['score'])} / 10"
    n = c.tests_of(graded["subs"]["partial"])["test_mask_leaves_padding_out"]["failed"]
    assert f"{TOPIC}: test_mask_leaves_padding_out: passed {n}/{n} -> failed 0/{n}" in [x.strip() for x in history]


def test_a_submission_dated_in_the_future_is_not_latest_for_good(db, graded, tmp_path):
    """The date of a submission is its file's, which whoever wrote the file can set: never later than
    its first grading, so that a date in the future cannot keep it "latest" over later work."""
    meta = _meta(graded["report"])
    future = tmp_path / "dave-0.zip"
    future.write_bytes(b"")
    os.utime(future, (4_000_000_000, 4_000_000_000))  # 2096
    gb.record(db, [{**graded["subs"]["partial"], "name": "dave", "source": str(future)}], meta,
              when=dt.datetime(2026, 1, 1))
    later = tmp_path / "dave-1.zip"
    later.write_bytes(b"")
    os.utime(later, (1_780_000_000, 1_780_000_000))  # 2026-05-28
    gb.record(db, [{**graded["subs"]["perfect"], "name": "dave", "source": str(later)}], meta,
              when=dt.datetime(2026, 6, 1))
    head, rows = gb.rows(db, "latest")
    dave = next(r for r in rows if r[0] == "dave")
    assert dave[head.index("submission_sha256")] == graded["subs"]["perfect"]["sha256"]


def test_migrations_are_applied_in_order_and_a_newer_gradebook_is_refused(db, monkeypatch):
    engine = gb.open_db(db)
    with engine.connect() as conn:
        assert conn.execute(select(gb.SchemaVersion.version)).scalar_one() == gb.SCHEMA_VERSION
        assert "email" not in {col["name"] for col in inspect(conn).get_columns("students")}
    engine.dispose()
    monkeypatch.setattr(gb, "SCHEMA_VERSION", gb.SCHEMA_VERSION + 1)
    monkeypatch.setitem(gb.MIGRATIONS, gb.SCHEMA_VERSION - 1, ["ALTER TABLE students ADD COLUMN email VARCHAR(255)"])
    engine = gb.open_db(db)
    with engine.connect() as conn:
        assert conn.execute(select(gb.SchemaVersion.version)).scalar_one() == gb.SCHEMA_VERSION
        assert "email" in {col["name"] for col in inspect(conn).get_columns("students")}
        conn.execute(text("UPDATE schema_version SET version = :v"), {"v": gb.SCHEMA_VERSION + 5})
        conn.commit()
    engine.dispose()
    with pytest.raises(RuntimeError, match="newer than this grader"):
        gb.open_db(db)


def test_the_commands_run_from_the_command_line(graded, tmp_path):
    history = subprocess.run([sys.executable, "-m", "grader", "history", "perfect", "--db", graded["db"]],
                             cwd=c.ROOT, capture_output=True, text=True, timeout=120)
    assert history.returncode == 0, history.stderr
    assert history.stdout.startswith("perfect: 1 grade(s), 1 submission(s)\n")
    assert history.stdout.rstrip().endswith("10 / 10")
    export = subprocess.run([sys.executable, "-m", "grader", "export", "--csv", "-", "--pick", "best",
                             "--db", graded["db"]], cwd=c.ROOT, capture_output=True, text=True, timeout=120)
    assert export.returncode == 0, export.stderr
    rows = list(csv.DictReader(export.stdout.splitlines()))
    assert {r["student"]: float(r["total"]) for r in rows} == {
        name: sub["score"] for name, sub in graded["subs"].items()}


def test_a_long_name_and_an_impossible_date_cost_no_ones_grade(db, graded, tmp_path, monkeypatch):
    """A name longer than the students table holds (70 no-break spaces, written out, are 280
    characters) is stored cut, with a digest that keeps it apart; a file dated in the year 36812 (a
    tar's pax header) counts as submitted when graded. Everyone's grade is recorded."""
    meta = _meta(graded["report"])
    archive = tmp_path / "mallory.zip"
    archive.write_bytes(b"")
    long_names = ["bob" + "\\xa0" * 70, "bob" + "\\xa0" * 71]
    reports = [{**graded["subs"]["perfect"], "name": n, "source": str(archive)} for n in long_names]
    reports.append({**graded["subs"]["perfect"], "name": "victim", "source": str(archive)})
    real_stat = os.stat

    def far_future(path, *a, **k):
        st = real_stat(path, *a, **k)
        return os.stat_result((*st[:8], 2 ** 40, st[9])) if str(path) == str(archive) else st
    monkeypatch.setattr(gb.os, "stat", far_future)
    gb.record(db, reports, meta)
    monkeypatch.undo()
    names = {r[0] for r in gb.rows(db)[1]}
    assert "victim" in names and len(names) == 3, names
    assert all(len(n) <= gb.NAME_CHARS for n in names)
