"""One class of hostile submissions graded by ``grader CLASS --topics perplexity --json --jobs 1`` (once
per isolation mode: under bubblewrap, and ``--unsandboxed``), then what each submission got. Each hostile
case is the reference solution with the change of ``tests/grader/hostile/<case>.py`` (see its
docstring); all share one grading process and one fork server, with right solutions graded before,
between and after them, so a hostile case that broke the grading of its classmates shows up as a loss
there."""
from __future__ import annotations

import csv
import inspect
import json
import os
import shutil
import socket
import subprocess
import threading

import pytest
import torch

from grader import grade
from tests.grader import classroom as c

ISOLATED = "the hidden files and the network are shut off only under bubblewrap (isolation 'bwrap')"
OWN_USER = ("without bubblewrap and without root, learner code runs as the grader's own user (the rlimits "
            "fallback) and can write the grader's files")


def _own_user(report) -> bool:
    return report["isolation"] != "bwrap" and os.geteuid() != 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MODES = {"bwrap": ({}, []), "unsandboxed": ({"DLKATA_SANDBOX": "rlimits"}, ["--unsandboxed"])}


class Listener:
    """A TCP listener on the grading machine's 127.0.0.1, counting who connects."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(1)
                try:
                    self.accepted.append(conn.recv(100) or b"(connected)")
                except OSError:
                    self.accepted.append(b"(connected)")


@pytest.fixture(scope="module", params=list(MODES))
def graded(request, tmp_path_factory):
    from grader.sandbox import bwrap
    if request.param == "bwrap" and (bwrap() is None or os.environ.get("DLKATA_SANDBOX") == "rlimits"):
        pytest.skip("bubblewrap cannot run here (or DLKATA_SANDBOX=rlimits)")
    env, extra = MODES[request.param]
    base = tmp_path_factory.mktemp("hostile-class")
    listener = Listener()
    markers, open_markers, out = base / "markers", base / "open-markers", base / "out"
    markers.mkdir()
    c.make_world_writable(str(open_markers))
    tag, listen_port = f"dlkata-hostile-{os.getpid()}-{request.param}", _free_port()
    folder = c.build_class(str(base / "class"), out=str(out), markers=str(markers),
                           open_markers=str(open_markers), port=listener.port, listen_port=listen_port, tag=tag)
    report = c.run_grader(folder, str(out), jobs=1, env=env, extra=[*extra, "--memory-mb", "600"], timeout=900)
    yield {"report": report, "subs": c.by_name(report), "out": out, "markers": [markers, open_markers],
           "listener": listener, "class": folder, "tag": tag, "listen_port": listen_port}
    listener.sock.close()


def _sub(graded, name):
    return graded["subs"][name]


def _failed(sub, test):
    t = c.tests_of(sub)[test]
    return t["passed"] == 0 and t["failed"] > 0


def test_the_class_is_graded_without_problems(graded):
    report = graded["report"]
    assert report["problems"] == []
    expected = set(c.GOOD) | set(c.HOSTILE_CASES) | {"syntax_error", "no_topic_folder", "zip_absolute",
                                                     "zip_dotdot", "zip_symlink", "zip_not_a_zip"}
    assert set(graded["subs"]) == expected
    for sub in report["submissions"]:
        tests = c.tests_of(sub)
        assert set(tests) == set(c.TESTS), sub["name"]
        # every test has an outcome; the device pass may be inconclusive ("not run") for code that fails
        assert all(t["passed"] + t["failed"] + t["not_run"] > 0 for t in tests.values()), sub["name"]


@pytest.mark.parametrize("name", c.GOOD + ["output_flood"])
def test_right_solutions_get_full_marks_wherever_they_sit(graded, name):
    """Before, between and after the hostile cases (the last of each grading process included), and a
    solution that floods stdout and stderr with bytes looking like the grader's own messages."""
    sub = _sub(graded, name)
    assert sub["problem"] is None
    assert sub["score"] == sub["max"] == 10.0, c.messages(sub)
    assert all(t["status"] == "passed" for t in c.tests_of(sub).values())


def test_syntax_error_scores_zero_with_the_error(graded):
    sub = _sub(graded, "syntax_error")
    assert sub["score"] == 0
    reason = c.topic_of(sub)["reason"]
    assert "does not import" in reason and "SyntaxError" in reason


def test_missing_topic_folder_scores_zero_with_the_reason(graded):
    sub = _sub(graded, "no_topic_folder")
    assert sub["score"] == 0
    assert "no topic folder" in sub["problem"]
    assert "no folder perplexity/" in c.topic_of(sub)["reason"]


def test_missing_function_costs_only_its_test(graded):
    sub = _sub(graded, "missing_function")
    tests = c.tests_of(sub)
    assert _failed(sub, "test_token_nll")
    assert "has no function token_nll" in tests["test_token_nll"]["feedback"]
    # the device pass has a case per function: token_nll's fails there too
    assert all(tests[t]["status"] == "passed" for t in c.TESTS if t not in ("test_token_nll", c.DEVICES))
    assert 10 * (len(c.TESTS) - 2) / len(c.TESTS) < sub["score"] < 10 * (len(c.TESTS) - 1) / len(c.TESTS)


def test_wrong_shape_device_and_dtype_are_named(graded):
    sub = _sub(graded, "wrong_returns")
    tests = c.tests_of(sub)
    assert _failed(sub, "test_token_nll")
    assert "token_nll(logits of shape (2, 4, 5), targets) with logits of scale 3 has shape (2), expected (2, 4)" \
        in tests["test_token_nll"]["feedback"]
    assert _failed(sub, "test_perplexity_from_nll")
    assert "is on meta, expected cpu" in tests["test_perplexity_from_nll"]["feedback"]
    for name in ("test_perplexity_and_gradient", "test_ignore_index_leaves_padding_out",
                 "test_mask_leaves_padding_out", "test_uniform_logits_give_the_vocabulary_size"):
        t = tests[name]  # float32 cases pass, float64 ones fail on the dtype
        assert (t["passed"], t["failed"]) == (1, 1), (name, t)
        assert "has dtype float32, expected float64" in t["feedback"]
    assert 0 < sub["score"] < 10


def test_nan_is_pointed_at(graded):
    sub = _sub(graded, "nan_result")
    tests = c.tests_of(sub)
    assert tests["test_token_nll"]["status"] == tests["test_perplexity_from_nll"]["status"] == "passed"
    for name in ("test_perplexity_and_gradient", "test_uniform_logits_give_the_vocabulary_size"):
        assert _failed(sub, name)
        assert "has nan at" in tests[name]["feedback"]


def test_infinite_loop_times_out_and_costs_only_what_it_broke(graded):
    sub = _sub(graded, "infinite_loop")
    tests = c.tests_of(sub)
    assert "token_nll: no answer within 3 s" in tests["test_token_nll"]["feedback"]
    assert _failed(sub, "test_perplexity_and_gradient")  # perplexity calls token_nll
    assert tests["test_perplexity_from_nll"]["status"] == "passed"  # does not: still graded


def test_memory_bomb_fails_fast_with_a_memory_message(graded):
    sub = _sub(graded, "memory_bomb")
    tests = c.tests_of(sub)
    assert sub["score"] == 0
    for name in ("test_token_nll", "test_perplexity_from_nll"):  # a bytearray, a torch tensor
        feedback = tests[name]["feedback"]
        assert "ran out of memory (the limit is 600 MiB)" in feedback, feedback  # the grader's --memory-mb


def test_fork_bomb_is_contained(graded):
    sub = _sub(graded, "fork_bomb")
    tests = c.tests_of(sub)
    assert tests["test_token_nll"]["status"] == "passed"  # graded before the bomb went off
    feedback = tests["test_perplexity_from_nll"]["feedback"]
    assert _failed(sub, "test_perplexity_from_nll")
    assert "no answer within" in feedback or "stopped" in feedback or "killed" in feedback, feedback
    assert sub["score"] < 10


@pytest.mark.parametrize("name, test, message", [
    ("sys_exit", "test_token_nll", "token_nll: called sys.exit(0)"),
    ("os_exit", "test_perplexity_and_gradient", "exited with code 0"),
    ("segfault", "test_perplexity_from_nll", "killed by signal 11"),
    ("channel_garbage", "test_token_nll", "broke its channel (message too large)"),
])
def test_exits_and_crashes_are_reported(graded, name, test, message):
    sub = _sub(graded, name)
    assert _failed(sub, test)
    assert message in c.tests_of(sub)[test]["feedback"]
    assert sub["score"] < 10  # the function that crashed scores 0; the others are still graded


EXPLOITS = ["patch_allclose", "tensor_subclass", "caller_frames", "sys_modules_reference", "conftest_hook",
            "forged_results", "read_solution", "network", "proc_mem", "classmate_files", "read_via_proc",
            "loopback_listener", "fill_tmp"]


@pytest.mark.parametrize("name", EXPLOITS)
def test_exploits_of_an_in_process_grader_score_zero(graded, name):
    """Each returns wrong values and counts on an exploit (a patched comparison, an always-equal tensor,
    the caller's frames, the suite in sys.modules, a conftest hook, forged result files, the solution
    read from disk, the network) to pass anyway: every test fails on the values (a tensor subclass is
    not even sent: its methods would run learner code on the way out)."""
    if name in ("read_solution", "network", "read_via_proc") and graded["report"]["isolation"] != "bwrap":
        pytest.skip(ISOLATED)
    if name in ("forged_results", "classmate_files", "proc_mem") and _own_user(graded["report"]):
        pytest.skip(OWN_USER)
    sub = _sub(graded, name)
    # The exploits start from the solution, whose device handling and signature are right: the
    # gated tests (the device pass, the defaults, nan for no token), which look at how code runs and
    # not at its values, are the ones they may pass; they count only as far as the values are right:
    # nothing.
    assert sub["score"] == 0, c.messages(sub)
    for test, t in c.tests_of(sub).items():
        if test in c.GATED:
            continue
        assert t["passed"] == 0, (test, t)
        expected = [" differs: "] + (["a tensor subclass (AlwaysClose): return plain tensors"] if name == "tensor_subclass" else [])
        assert any(e in t["feedback"] for e in expected), (test, t["feedback"])


@pytest.mark.parametrize("name", ["inherited_fds", "lingering"])
def test_forged_answers_on_its_own_channel_earn_nothing(graded, name):
    """Forged answers written into every descriptor, during and after its calls (a thread, a setsid'd
    grandchild): they can only reach its own channel, and its own values are wrong."""
    sub = _sub(graded, name)
    assert sub["score"] == 0, c.messages(sub)


WORLD_WRITABLE = ["/tmp", "/var/tmp", "/run/lock"]


def test_nothing_is_left_in_the_host_tmp(graded):
    left = [n for n in os.listdir("/tmp") if n.startswith(graded["tag"])]
    assert left == [], left[:5]
    if os.geteuid() == 0:
        uids = c.sandbox_uids(graded["report"])
        for top in [d for d in WORLD_WRITABLE if os.path.isdir(d)]:
            owned = [n for n in os.listdir(top) if n.startswith(graded["tag"])
                     or os.lstat(os.path.join(top, n)).st_uid in uids]
            assert owned == [], (top, owned[:5])


def test_nothing_listens_on_the_grading_machine_after_the_run(graded):
    with socket.socket() as s:
        s.settimeout(1)
        assert s.connect_ex(("127.0.0.1", graded["listen_port"])) != 0


def test_forged_results_leave_no_trace(graded):
    if _own_user(graded["report"]):
        pytest.skip(OWN_USER)
    for folder in graded["markers"]:
        assert os.listdir(folder) == [], f"the submission wrote into {folder}"
    out = graded["out"]
    with open(out / "report.json") as f:
        written = json.load(f)
    by = {s["name"]: s for s in written["submissions"]}
    assert by["forged_results"]["score"] == 0 and by["a_good"]["score"] == 10
    assert not (out / "results.json").exists()
    with open(out / "class.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert float(rows["forged_results"]["perplexity"]) == 0 == float(rows["forged_results"]["total"])
    with open(out / "gradescope" / "forged_results.json") as f:
        assert json.load(f)["score"] == 0


def test_network_is_unreachable(graded):
    if graded["report"]["isolation"] != "bwrap":
        pytest.skip(ISOLATED)
    assert graded["listener"].accepted == []


def test_hidden_suite_and_solution_cannot_be_read(graded):
    if graded["report"]["isolation"] != "bwrap":
        pytest.skip(ISOLATED)
    sub = _sub(graded, "read_hidden_suite")
    tests = c.tests_of(sub)
    assert _failed(sub, "test_token_nll") and _failed(sub, "test_perplexity_and_gradient")
    assert "FileNotFoundError on " + c.SUITE_FILE in tests["test_token_nll"]["feedback"]
    text = "\n".join(c.messages(sub))
    for marker in ("Hidden suite for perplexity", "def test_", "_reference(", "Reference solution",
                   "def pytest_addoption", "import torch.nn.functional as F"):
        assert marker not in text


def test_no_feedback_quotes_the_hidden_suite(graded):
    hidden = c.source_lines(c.SUITE_FILE) + c.source_lines(os.path.join(c.ROOT, "tests", "conftest.py"))
    assert len(hidden) > 20
    for sub in graded["report"]["submissions"]:
        if sub["name"] == "read_hidden_suite" and graded["report"]["isolation"] != "bwrap":
            continue  # without bubblewrap the files are readable (see the warning): it quotes them
        for message in c.messages(sub):
            assert "def test_" not in message and "_reference(" not in message, (sub["name"], message)
            quoted = [line for line in hidden if line in message]
            assert not quoted, (sub["name"], quoted)


@pytest.mark.parametrize("name, why", [
    ("zip_absolute", "absolute path in the archive: '/tmp/perplexity/perplexity.py'"),
    ("zip_dotdot", "path leaving the archive: 'perplexity/../../escaped.py'"),
    ("zip_symlink", "symbolic link in the archive: 'perplexity/perplexity.py'"),
    ("zip_not_a_zip", "not a readable zip file"),
])
def test_bad_zips_are_refused(graded, name, why):
    sub = _sub(graded, name)
    assert sub["score"] == 0
    assert sub["problem"].startswith("the archive was refused: ") and why in sub["problem"]
    assert why in c.topic_of(sub)["reason"]
    assert not os.path.exists(os.path.join(os.path.dirname(graded["class"]), "escaped.py"))


def test_no_sandbox_process_survives(graded):
    if os.geteuid() != 0:
        pytest.skip("sandboxes get uids of their own only when the grader runs as root")
    assert "(os.getpid() * 16) % 3900" in inspect.getsource(grade.run), "update classroom.sandbox_uids"
    uids = c.sandbox_uids(graded["report"])
    assert c.wait_until_gone(uids) == []


def test_gradescope_results(graded):
    folder = graded["out"] / "gradescope"
    assert sorted(p.removesuffix(".json") for p in os.listdir(folder)) == sorted(graded["subs"])
    for name, sub in graded["subs"].items():
        with open(folder / f"{name}.json") as f:
            results = json.load(f)
        assert results["score"] == sub["score"]
        assert len(results["tests"]) == len(c.TESTS)
        for i, t in enumerate(results["tests"], 1):
            assert set(t) >= {"name", "number", "score", "max_score", "status", "output", "visibility"}
            assert t["name"].startswith("perplexity: test_") and t["number"] == str(i)
            assert 0 <= t["score"] <= t["max_score"] and t["status"] in ("passed", "failed")
            assert t["visibility"] == "visible"
        assert sum(t["score"] for t in results["tests"]) == pytest.approx(sub["score"], abs=1e-3)
        assert sum(t["max_score"] for t in results["tests"]) == pytest.approx(10.0, abs=1e-3)
    with open(folder / "syntax_error.json") as f:
        assert all("SyntaxError" in t["output"] for t in json.load(f)["tests"])


def test_class_csv_has_a_row_per_student(graded):
    with open(graded["out"] / "class.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["student", "perplexity", "total", "max", "sha256", "problem"]
    assert sorted(r["student"] for r in rows) == sorted(graded["subs"])
    for r in rows:
        sub = graded["subs"][r["student"]]
        assert float(r["perplexity"]) == pytest.approx(c.topic_of(sub)["score"])
        assert float(r["total"]) == pytest.approx(sub["score"]) and float(r["max"]) == 10.0


CROSS_ENTROPY = os.path.join(c.ROOT, "solutions", "cross_entropy", "cross_entropy.py")


@pytest.mark.skipif(not (os.path.isfile(CROSS_ENTROPY) and
                         os.path.isfile(os.path.join(c.ROOT, "tests", "cross_entropy", "test_cross_entropy.py"))),
                    reason="needs a second finished topic: solutions/cross_entropy/cross_entropy.py and "
                           "tests/cross_entropy/ are not there yet")
def test_other_topics_of_a_hostile_submission_are_still_graded(tmp_path):
    folder = tmp_path / "class"
    for name, hostile in [("crashes", "os_exit"), ("good", None)]:
        sub = folder / name
        c.write_submission(str(sub), {"perplexity/perplexity.py":
                                      c.hostile_source(hostile) if hostile else c.solution_source()})
        shutil.copytree(os.path.dirname(CROSS_ENTROPY), sub / "cross_entropy",
                        ignore=shutil.ignore_patterns("__pycache__"))
    report = c.run_grader(str(folder), str(tmp_path / "out"), topics="perplexity,cross_entropy")
    subs = c.by_name(report)
    for name in subs:
        ce = c.topic_of(subs[name], "cross_entropy")
        assert ce["score"] == ce["max"] > 0, (name, c.messages(subs[name]))
    assert c.topic_of(subs["crashes"])["score"] < 10
    assert "exited with code 0" in c.tests_of(subs["crashes"])["test_perplexity_and_gradient"]["feedback"]
    assert c.topic_of(subs["good"])["score"] == 10


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="no CUDA device here: a result on the wrong device needs a GPU to be made")
def test_a_result_on_the_wrong_device_is_named(tmp_path):
    folder = tmp_path / "class"
    c.write_submission(str(folder / "other_device"), {"perplexity/perplexity.py": c.hostile_source("other_device")})
    c.good(str(folder / "right"))
    subs = c.by_name(c.run_grader(str(folder), str(tmp_path / "out"), call_timeout=20))
    feedback = c.tests_of(subs["other_device"])["test_token_nll"]
    assert feedback["passed"] == 0
    assert "is on cuda, expected cpu" in feedback["feedback"] or "is on cpu, expected cuda" in feedback["feedback"]
    assert subs["right"]["score"] == 10


def test_without_bubblewrap_the_grader_refuses_unless_told(tmp_path):
    """No namespaces and no --unsandboxed: exit 2 with why and what would be exposed; nothing graded."""
    c.good(str(tmp_path / "class" / "good"))
    proc = subprocess.run([c.PYTHON, "-m", "grader", str(tmp_path / "class"), "--topics", c.TOPIC,
                           "--out", str(tmp_path / "out")], cwd=c.ROOT, capture_output=True, text=True,
                          env={**os.environ, "DLKATA_SANDBOX": "rlimits"}, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "refusing to grade" in proc.stderr and "--unsandboxed" in proc.stderr
    assert "hidden suites and solutions" in proc.stderr and "network" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_case_without_a_result_fails_and_the_run_says_so(tmp_path):
    """A grading process that stops part-way (here: pytest told to stop at the first failure): the
    cases it never reported count as failed against the catalogue, never as a smaller denominator."""
    c.write_submission(str(tmp_path / "class" / "wrong"), {f"{c.TOPIC}/{c.TOPIC}.py": c.hostile_source("nan_result")})
    report = c.run_grader(str(tmp_path / "class"), str(tmp_path / "out"), jobs=1, expect=2,
                          env={"PYTEST_ADDOPTS": "--maxfail=1"})
    assert any("no result: the grading process was interrupted" in p for p in report["problems"])
    sub = report["submissions"][0]
    tests = c.tests_of(sub)
    assert set(tests) == set(c.TESTS) and sub["max"] == 10.0
    assert all(t["passed"] + t["failed"] > 0 for t in tests.values()), tests  # none dropped from the score
    assert sub["no_result"] > 0 and sub["score"] < 10
    assert any(t["feedback"] == "no result: the grading process was interrupted" for t in tests.values())


def _nobody_can_run_python() -> str | None:
    probe = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                            "--bounding-set=-all", c.PYTHON, "-c", "import subprocess, sys; subprocess.run([sys.executable, '-c', "
                            "'import torch, grader'], check=True)"], cwd=c.ROOT,
                           capture_output=True, text=True)
    return None if probe.returncode == 0 else probe.stderr.strip()[-300:] or "it cannot"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv to "
                    "run the grader as another user")
@pytest.mark.parametrize("mode", list(MODES))
def test_a_grader_that_is_not_root_keeps_its_results(mode):
    """The grader run as an unprivileged user (nobody), under bubblewrap and --unsandboxed (where
    learner code runs as that same user): forging results through /proc and files earns nothing."""
    why = _nobody_can_run_python()
    if why:
        pytest.skip(f"user nobody cannot run this interpreter with torch and the project ({why})")
    import pathlib
    import tempfile
    base = pathlib.Path(tempfile.mkdtemp(prefix="dlkata-nobody-"))  # pytest's tmp_path is root's alone
    try:
        _graded_by_nobody(base, mode)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _graded_by_nobody(base, mode):
    c.make_world_writable(str(base))
    out, markers = base / "out", base / "markers"
    c.make_world_writable(str(markers))
    folder = base / "class"
    c.good(str(folder / "a_good"))
    c.write_submission(str(folder / "forged_results"), {f"{c.TOPIC}/{c.TOPIC}.py": c.hostile_source(
        "forged_results", out=str(out), markers=str(markers), open_markers=str(markers), submission=str(folder))})
    for root, dirs, files in os.walk(base):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o777)
    env, extra = MODES[mode]
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
           c.PYTHON, "-m", "grader", str(folder), "--topics", c.TOPIC, "--json", "--jobs", "1", "--out", str(out),
           "--call-timeout", "5", *extra]
    proc = subprocess.run(cmd, cwd=c.ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HOME": str(base), **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    subs = c.by_name(json.loads(proc.stdout))
    assert subs["forged_results"]["score"] == 0 and subs["a_good"]["score"] == 10
