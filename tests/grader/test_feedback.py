"""``grader feedback``: the pages from a report built here by hand (hostile names and messages included),
checked as HTML and, when a browser is installed, in headless Chromium against the report's numbers.

The expected numbers are derived from the report below, with the set of submissions that reached each
topic given by construction (``REACHED``), not by the code under test."""
from __future__ import annotations

import html.parser
import json
import os
import re
import shutil

import pytest

from grader import cli, feedback
from grader import report as report_mod

SCRIPT_NAME = "<script>window.__pwned='script-name'</script>"
IMG_NAME = "\"><img src=x onerror=\"window.__pwned='img-name'\">"
JS_NAME = "javascript:window.__pwned='href-name'"
HOSTILE_MSG = ("[cpu, float64] alpha_fn raised </pre><script>window.__pwned='msg'</script>"
               "<img src=x onerror=\"window.__pwned='img-msg'\"><a href=\"javascript:window.__pwned='a'\">x</a>")
ERR = "[{case}] {fn} differs: max abs error {e} at [{i}, 1] (got {g}, expected 1.19)"
STUB = "[cpu, float64] beta_fn: not implemented yet"
WEIGHTS = {"alpha": (10.0, {"a1": 2.0, "a2": 1.0, "a3": 1.0}), "beta": (5.0, {"b1": 1.0, "b2": 1.0})}
P = (2, 0, 0, "")  # all cases passed: (passed, failed, not run, message)

# name -> topic -> test -> (passed, failed, not_run, message), or a problem with the whole submission
SPEC = {
    "alice": {"alpha": {"a1": P, "a2": P, "a3": P},
              "beta": {"b1": P, "b2": (0, 2, 0, ERR.format(case="cpu, float64", fn="beta_fn", e="0.31", i=0, g=1.5))}},
    "Alice": {"alpha": {"a1": P, "a2": (1, 1, 0, ERR.format(case="cpu, float32", fn="alpha_fn", e="0.27", i=3, g=0.92)),
                        "a3": (0, 2, 0, "[cpu, float64] alpha_fn: no answer within 10 s (an infinite loop?)")},
              "beta": {"b1": (0, 2, 0, STUB), "b2": (0, 2, 0, STUB)}},
    SCRIPT_NAME: {"alpha": {"a1": (0, 2, 0, HOSTILE_MSG),
                            "a2": (0, 2, 0, ERR.format(case="cpu, float64", fn="alpha_fn", e="0.31", i=0, g=1.5)),
                            "a3": P},
                  "beta": {"b1": (0, 2, 0, "[cpu, float64] no folder beta/ in the submission"),
                           "b2": (0, 2, 0, "[cpu, float64] no folder beta/ in the submission")}},
    IMG_NAME: {"alpha": {"a1": P, "a2": P, "a3": P},
               "beta": {"b1": (0, 2, 0, ERR.format(case="cpu, float64", fn="beta_fn", e="5e-01", i=7, g=-3)),
                        "b2": (0, 2, 0, ERR.format(case="cpu, float32", fn="beta_fn", e="12", i=2, g=13.19))}},
    JS_NAME: {"alpha": {"a1": (0, 2, 0, "[cpu, float64] alpha_fn: not implemented yet"),
                        "a2": (0, 2, 0, "[cpu, float64] alpha_fn: not implemented yet"),
                        "a3": (0, 2, 0, "[cpu, float64] alpha_fn: not implemented yet")},
              "beta": {"b1": P, "b2": P}},
    "a/b": {"alpha": {"a1": P, "a2": P, "a3": (0, 0, 2, "")}, "beta": {"b1": P, "b2": P}},
    "a?b": "the archive was refused: not a zip file",
}
# Who attempted which topic, by construction: not a stub, not a missing folder, not a refused archive.
REACHED = {"alpha": {"alice", "Alice", SCRIPT_NAME, IMG_NAME, "a/b"},
           "beta": {"alice", IMG_NAME, JS_NAME, "a/b"}}
NOTE = "CUDA cases were not run <b>here</b>"


def _submission(name, spec) -> dict:
    problem = spec if isinstance(spec, str) else None
    topics, total, maximum = [], 0.0, 0.0
    for topic, (weight, tw) in WEIGHTS.items():
        tests, got, wsum = [], 0.0, 0.0
        for test, w in tw.items():
            passed, failed, not_run, msg = (0, 2, 0, f"[cpu, float64] {problem}") if problem else spec[topic][test]
            credit = passed / (passed + failed) if passed + failed else None
            if credit is not None:
                got, wsum = got + w * credit, wsum + w
            tests.append({"test": test, "weight": w, "passed": passed, "failed": failed, "not_run": not_run,
                          "credit": credit, "feedback": msg,
                          "status": "not run" if credit is None else ("passed" if not failed else "failed")})
        msgs = {t["feedback"].split("] ", 1)[-1] for t in tests if t["status"] != "not run"}
        reason = msgs.pop() if all(t["passed"] == 0 for t in tests) and len(msgs) == 1 else ""
        score = round(weight * got / wsum, 4) if wsum else 0.0
        topics.append({"topic": topic, "score": score, "max": weight, "not_run_cases": 0, "reason": reason,
                       "tests": tests})
        total, maximum = total + score, maximum + weight
    return {"name": name, "source": f"/class/{name}", "sha256": None if problem else "ab" * 32,
            "problem": problem, "score": round(total, 4), "max": maximum, "topics": topics}


@pytest.fixture(scope="module")
def report_path(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grading")
    data = {"suite_sha256": "cd" * 32, "topics": list(WEIGHTS), "isolation": "rlimits", "cuda": False,
            "not_run_cases": 2, "note": NOTE, "problems": [], "seconds": 1.0,
            "submissions": [_submission(n, s) for n, s in SPEC.items()]}
    path = folder / "report.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="module")
def report(report_path):
    return json.loads(report_path.read_text())


@pytest.fixture(scope="module")
def handout(tmp_path_factory):
    """A handout where only ``alpha`` has a guide."""
    root = tmp_path_factory.mktemp("handout")
    (root / "alpha").mkdir()
    (root / "alpha" / "GUIDE.md").write_text("# alpha\n")
    (root / "beta").mkdir()
    return root


@pytest.fixture(scope="module")
def pages(tmp_path_factory, report_path, handout):
    out = tmp_path_factory.mktemp("feedback")
    assert cli.main(["feedback", str(out), "--report", str(report_path), "--exercises", str(handout)]) == 0
    return out


def _pages_map(pages) -> dict[str, str]:
    return json.loads((pages / "pages.json").read_text())


def _expected_rates(report) -> dict[str, tuple[int, int]]:
    """``{"topic::test": (passed, counted)}`` over the submissions that reached the topic."""
    out = {}
    for sub in report["submissions"]:
        for topic in sub["topics"]:
            for t in topic["tests"]:
                key = f"{topic['topic']}::{t['test']}"
                passed, n = out.get(key, (0, 0))
                if sub["name"] in REACHED[topic["topic"]] and t["status"] != "not run":
                    passed, n = passed + (t["status"] == "passed"), n + 1
                out[key] = (passed, n)
    return out


def _test_points(topic: dict, test: dict) -> tuple[float, float]:
    """The points of one test: the topic's points shared by weight among the tests that were run."""
    wsum = sum(t["weight"] for t in topic["tests"] if t["status"] != "not run")
    share = topic["max"] * test["weight"] / wsum if test["status"] != "not run" else 0.0
    return share * (test["credit"] or 0.0), share


# ------------------------------------------------------------------------------- without a browser

class _Elements(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _elements(path) -> list[tuple[str, dict]]:
    p = _Elements()
    p.feed(path.read_text(encoding="utf-8"))
    return p.tags


def test_every_submission_gets_its_own_safe_page(pages, report):
    mapping = _pages_map(pages)
    assert set(mapping) == {s["name"] for s in report["submissions"]}
    files = list(mapping.values())
    assert len(set(f.lower() for f in files)) == len(files)  # "alice"/"Alice", "a/b"/"a?b" collide when made safe
    for f in files:
        assert re.fullmatch(r"students/[a-z0-9_-]+\.html", f), f
        assert (pages / f).is_file()
    assert sorted(os.listdir(pages / "students")) == sorted(os.path.basename(f) for f in files)
    assert (pages / "index.html").is_file()


def test_hostile_names_and_messages_are_escaped(pages):
    files = [pages / "index.html", *(pages / "students").iterdir()]
    for path in files:
        text = path.read_text(encoding="utf-8")
        for tag, attrs in _elements(path):
            assert tag not in ("script", "img", "iframe", "object", "embed"), (path.name, tag, attrs)
            assert not any(k.startswith("on") for k in attrs), (path.name, tag, attrs)
            for k in ("href", "src", "action"):
                assert not (attrs.get(k) or "").strip().lower().startswith(("javascript:", "data:")), (path.name, attrs)
        assert "<script" not in text and "onerror=\"" not in text, path.name
        assert "&lt;b&gt;here&lt;/b&gt;" in text  # the note, escaped like everything else
    dashboard = (pages / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;window.__pwned=&#39;script-name&#39;&lt;/script&gt;" in dashboard


def test_no_external_resource(pages):
    for path in [pages / "index.html", *(pages / "students").iterdir()]:
        for tag, attrs in _elements(path):
            if tag in ("link", "script", "img", "iframe", "source", "video", "audio"):
                pytest.fail(f"{path.name}: <{tag} {attrs}> needs a resource")
            href = attrs.get("href") or ""
            assert not href.startswith("//"), href
            if tag == "a" and re.match(r"https?:", href):
                pytest.fail(f"{path.name} links outside: {href}")


def test_guides_are_linked_only_where_they_exist(pages, handout, report, tmp_path):
    page = pages / _pages_map(pages)["alice"]
    links = [a["href"] for tag, a in _elements(page) if tag == "a" and "GUIDE" in (a.get("href") or "")]
    assert len(links) == 1 and links[0].endswith("alpha/GUIDE.md")
    assert os.path.normpath(os.path.join(page.parent, links[0])) == str(handout / "alpha" / "GUIDE.md")
    # a URL for the handout: links go there, still only for the guides that exist
    out = tmp_path / "web"
    feedback.build(report, str(out), exercises=str(handout), handout="https://course.example/handout/")
    links = [a["href"] for tag, a in _elements(out / _pages_map(out)["alice"]) if "GUIDE" in (a.get("href") or "")]
    assert links == ["https://course.example/handout/alpha/GUIDE.md"]


def test_a_script_url_is_refused_as_handout(report_path, handout, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["feedback", str(tmp_path), "--report", str(report_path), "--exercises", str(handout),
                  "--handout", " JavaScript:alert(1)"])
    assert e.value.code == 2
    assert "handout" in capsys.readouterr().err


def test_a_file_that_is_not_a_report_is_refused(tmp_path, capsys):
    bad = tmp_path / "report.json"
    bad.write_text("[1, 2]")
    with pytest.raises(SystemExit):
        cli.main(["feedback", str(tmp_path / "out"), "--report", str(bad)])
    assert "not a grading report" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["feedback", str(tmp_path / "out"), "--report", str(tmp_path / "grades.xlsx")])


def test_messages_group_whatever_their_numbers_and_case():
    a = "[cpu, float64] f differs: max abs error 0.31 at [0, 1] (got 1.5, expected 1.19), max rel error 2e-03"
    b = "[cuda, float32] f differs: max abs error 0.27 at [12, 3] (got -7, expected 1.19), max rel error 1.5E+2"
    c = "[cpu, float64] f differs: max rel error 0.31 at [0, 1] (got 1.5, expected 1.19), max rel error 2e-03"
    assert feedback.normalise(a) == feedback.normalise(b)
    assert feedback.normalise(a) != feedback.normalise(c)
    assert feedback.normalise("[cpu] rnn_cell: no answer within 10 s") == feedback.normalise("[cpu] rnn_cell: no answer within 5 s")


def test_page_names_are_stable_and_unique():
    names = ["Zoë", "zo", "a b", "a_b", "a-b", "A B", "..", "", "x" * 200]
    files = feedback.page_names(names)
    assert files == feedback.page_names(names)
    assert len(set(files)) == len(files)
    assert all(re.fullmatch(r"[a-z0-9_-]+\.html", f) and len(f) < 80 for f in files)


@pytest.mark.parametrize("names", [["bob smith", "bob_smith"], ["bob_smith", "bob smith"]])
def test_no_name_takes_a_file_that_another_name_is(names):
    """"bob smith" must not be given bob_smith.json (the file a reader maps to bob_smith), whatever the
    order of the class; nor a file another entry's name only becomes."""
    for files in (report_mod.file_names([{"name": n} for n in names]), feedback.page_names(names)):
        assert files[names.index("bob smith")] not in {"bob_smith.json", "bob_smith.html", "bob-smith.html"}, files
        assert len(set(files)) == 2
    assert "bob_smith.json" not in report_mod.file_names([{"name": n} for n in names])  # both become it: neither
    assert report_mod.file_names([{"name": "bob smith"}]) != ["bob_smith.json"]  # alone, too
    assert report_mod.file_names([{"name": "bob_smith"}]) == ["bob_smith.json"]
    assert feedback.page_names(["Alice"]) == ["alice.html"]


def test_stale_pages_are_removed(report, tmp_path):
    (tmp_path / "students").mkdir()
    (tmp_path / "students" / "gone.html").write_text("old")
    feedback.build(report, str(tmp_path))
    assert not (tmp_path / "students" / "gone.html").exists()


# ------------------------------------------------------------------------------------ in a browser

CHROMIUM = next((p for p in (os.environ.get("DLKATA_CHROMIUM"), shutil.which("chromium"),
                             shutil.which("chromium-browser"), "/usr/bin/chromium") if p and os.path.isfile(p)), None)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need Playwright's Python package (pip install 'dlkata[test]')")
    if CHROMIUM is None:
        pytest.skip("browser tests need a Chromium (apt-get install chromium, or set DLKATA_CHROMIUM)")
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM)
        except Exception as e:  # noqa: BLE001 - any failure to start means no browser here
            pytest.skip(f"Chromium at {CHROMIUM} does not start: {str(e).splitlines()[0]}")
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A page that would run any injected script (the pages' own no-script policy is bypassed), and
    records dialogs and errors."""
    context = browser.new_context(bypass_csp=True, java_script_enabled=True, viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    pg.dialogs, pg.errors = [], []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    context.close()


def _open(pg, path):
    pg.goto(path.resolve().as_uri())
    pg.wait_for_load_state("load")


def _assert_nothing_ran(pg):
    assert pg.evaluate("typeof window.__pwned") == "undefined", pg.evaluate("String(window.__pwned)")
    assert pg.dialogs == [] and pg.errors == []
    assert pg.evaluate("document.querySelectorAll('script, img, iframe, [onerror], [onclick]').length") == 0
    for href in pg.eval_on_selector_all("a", "as => as.map(a => a.href)"):
        assert not href.lower().startswith("javascript:"), href


def _number(text: str) -> float:
    return float(re.search(r"-?\d+(?:\.\d+)?", text).group())


def test_dashboard_in_a_browser(page, pages, report, tmp_path):
    subs = report["submissions"]
    _open(page, pages / "index.html")
    _assert_nothing_ran(page)
    assert int(page.inner_text("#n-submissions")) == len(subs)

    # the submissions table: every name shown as text, its total, its link
    rows = page.locator("#students tbody tr")
    assert rows.count() == len(subs)
    mapping = _pages_map(pages)
    for i, sub in enumerate(subs):
        link = rows.nth(i).locator("a.student")
        assert link.text_content() == sub["name"]
        assert link.get_attribute("href") == mapping[sub["name"]]
        assert _number(rows.nth(i).locator("td").last.inner_text()) == pytest.approx(sub["score"], abs=0.005)

    # who reached each topic
    for topic, who in REACHED.items():
        cell = page.locator(f"#reach [data-topic='{topic}']")
        assert int(cell.get_attribute("data-reached")) == len(who)
        assert cell.inner_text().endswith(f"{round(100 * len(who) / len(subs))}%")

    # the matrix: one row per test, most-failed first, pass rates and cells as in the report
    expected = _expected_rates(report)
    mrows = page.locator("#matrix tbody tr")
    assert mrows.count() == len(expected)
    rates, statuses = [], {}
    for sub in subs:
        for topic in sub["topics"]:
            for t in topic["tests"]:
                statuses.setdefault(f"{topic['topic']}::{t['test']}", []).append(
                    "unreached" if sub["name"] not in REACHED[topic["topic"]] else
                    {"passed": "pass", "not run": "notrun"}.get(t["status"], "partial" if t["passed"] else "fail"))
    for i in range(mrows.count()):
        row = mrows.nth(i)
        key = row.get_attribute("data-test")
        passed, n = expected[key]
        rate = row.locator("td.rate")
        assert (int(rate.get_attribute("data-passed")), int(rate.get_attribute("data-n"))) == (passed, n)
        assert rate.inner_text().split()[0] == f"{round(100 * passed / n)}%"
        rates.append(passed / n)
        cells = row.locator("td.cell")
        assert [cells.nth(k).get_attribute("class").split()[1] for k in range(cells.count())] == statuses[key]
    assert rates == sorted(rates) and rates[0] < rates[-1]

    # score distributions: every submission counted once, in the bin of its share of the points
    for card in ["#dist-total", *[f".topic-card[data-topic='{t}']" for t in WEIGHTS]]:
        counts = [int(c) for c in page.eval_on_selector_all(f"{card} rect.bar", "rs => rs.map(r => r.dataset.count)")]
        assert len(counts) == 10
        assert sum(counts) == len(subs)
    beta = [t["score"] / t["max"] for s in subs for t in s["topics"] if t["topic"] == "beta"]
    bars = page.eval_on_selector_all(".topic-card[data-topic='beta'] rect.bar", "rs => rs.map(r => +r.dataset.count)")
    assert bars[9] == sum(1 for x in beta if x >= 0.9) and bars[0] == sum(1 for x in beta if x < 0.1)
    assert bars[5] == sum(1 for x in beta if 0.5 <= x < 0.6)  # 0.5: alice's (b1 passed, b2 failed)

    # failures grouped: 0.31 and 0.27 (and 5e-01, 12) are one mistake
    a2 = page.locator("#failures tr[data-test='alpha::a2'] li.group")
    assert [int(a2.nth(k).get_attribute("data-count")) for k in range(a2.count())] == [2]
    b2 = page.locator("#failures tr[data-test='beta::b2'] li.group")
    assert [int(b2.nth(k).get_attribute("data-count")) for k in range(b2.count())] == [2]
    a1 = page.locator("#failures tr[data-test='alpha::a1'] li.group pre")
    assert a1.count() == 1 and a1.first.text_content() == HOSTILE_MSG  # shown as text, not markup

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


@pytest.mark.parametrize("name", list(SPEC))
def test_student_page_in_a_browser(page, pages, report, name, tmp_path):
    sub = next(s for s in report["submissions"] if s["name"] == name)
    _open(page, pages / _pages_map(pages)[name])
    _assert_nothing_ran(page)
    assert page.locator("#student-name").text_content() == name
    assert page.title() == f"Feedback: {name}"
    assert float(page.get_attribute("#total", "data-score")) == sub["score"]
    assert _number(page.inner_text("#total")) == pytest.approx(sub["score"], abs=0.005)
    if sub["problem"]:
        assert page.locator("#problem").text_content() == sub["problem"]
    for topic in sub["topics"]:
        section = page.locator(f"section.topic[data-topic='{topic['topic']}']")
        assert float(section.get_attribute("data-score")) == topic["score"]
        guide = section.locator("a.guide")
        assert guide.count() == (topic["topic"] == "alpha")
        for t in topic["tests"]:
            row = section.locator(f"tr[data-test='{t['test']}']")
            assert row.get_attribute("data-status") == t["status"]
            got, share = _test_points(topic, t)
            points = row.locator("td.points").inner_text().split("/")
            assert float(points[0]) == pytest.approx(got, abs=0.005)
            assert float(points[1]) == pytest.approx(share, abs=0.005)
            if t["status"] != "not run":
                assert row.locator("td.cases").inner_text().split("\n")[0] == f"{t['passed']} / {t['passed'] + t['failed']}"
            message = row.locator("td.message pre")
            if t["feedback"] and not topic["reason"]:
                assert message.text_content() == t["feedback"]
            else:
                assert message.count() == 0
        if topic["reason"]:
            assert section.locator(".reason").text_content() == topic["reason"]
    body = page.locator("body").text_content()  # nothing of the other submissions
    assert not [other for other in SPEC if other != name and len(other) >= 5 and other in body]
    if name == SCRIPT_NAME:
        page.screenshot(path=str(tmp_path / "student.png"), full_page=True)
        assert (tmp_path / "student.png").stat().st_size > 10_000


def test_the_dashboard_links_open_each_page(page, pages, report):
    _open(page, pages / "index.html")
    for i, sub in enumerate(report["submissions"]):
        page.locator("#students a.student").nth(i).click()
        page.wait_for_load_state("load")
        assert page.locator("#student-name").text_content() == sub["name"]
        _assert_nothing_ran(page)
        page.go_back()


def test_the_example_class_command_builds_from_a_report(report_path, tmp_path, capsys):
    from grader.examples import feedback_pages
    assert feedback_pages.main(["--report", str(report_path), "--out", str(tmp_path / "pages")]) == 0
    assert (tmp_path / "pages" / "index.html").is_file()
    assert len(list((tmp_path / "pages" / "students").iterdir())) == len(SPEC)
