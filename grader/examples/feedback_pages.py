"""The feedback pages of the example class, in one command:

    python -m grader.examples.feedback_pages                  # grade the class, then build out/feedback/
    python -m grader.examples.feedback_pages --screenshots    # ... and refresh grader/examples/feedback/*.png

``--report FILE`` builds the pages from an existing report instead of grading. The screenshots (shown in
the README) need Playwright and a Chromium (``pip install -e '.[test]'``, ``apt-get install chromium``).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from grader import feedback
from grader.examples.make_class import CLASS, ROOT

SHOTS = os.path.join(ROOT, "grader", "examples", "feedback")


def screenshots(pages: str, student: str, dest: str = SHOTS, chromium: str | None = None) -> list[str]:
    """PNGs of the dashboard (its top, and the tests x submissions matrix) and of one submission's page."""
    from playwright.sync_api import sync_playwright
    chromium = chromium or shutil.which("chromium") or "/usr/bin/chromium"
    os.makedirs(dest, exist_ok=True)
    made = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium)
        page = browser.new_page(viewport={"width": 1200, "height": 1280})
        page.goto("file://" + os.path.abspath(os.path.join(pages, "index.html")))
        made.append(os.path.join(dest, "dashboard.png"))
        page.screenshot(path=made[-1])
        made.append(os.path.join(dest, "dashboard-tests.png"))
        page.locator("#matrix").screenshot(path=made[-1])
        page.set_viewport_size({"width": 1200, "height": 1400})
        page.goto("file://" + os.path.abspath(os.path.join(pages, student)))
        made.append(os.path.join(dest, "student.png"))
        page.screenshot(path=made[-1])
        browser.close()
    return made


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m grader.examples.feedback_pages",
                                description=__doc__.strip().split("\n\n")[0])
    p.add_argument("--out", default="out/feedback", help="folder for the pages (default: out/feedback)")
    p.add_argument("--report", help="build from this report.json instead of grading the class")
    p.add_argument("--screenshots", action="store_true", help="also rewrite grader/examples/feedback/*.png")
    args = p.parse_args(argv)
    report = args.report
    if report is None:
        grading = os.path.join(os.path.dirname(os.path.abspath(args.out)), "grading")
        done = subprocess.run([sys.executable, "-m", "grader", CLASS, "--brief", "--out", grading], cwd=ROOT)
        if done.returncode not in (0, 2):  # 2: graded, with a problem of the grading to read above
            return done.returncode
        report = os.path.join(grading, "report.json")
    mapping = feedback.build(feedback.load(report), args.out)
    print(f"class dashboard: {os.path.join(args.out, 'index.html')}")
    if args.screenshots:
        for path in screenshots(args.out, mapping.get("partial") or next(iter(mapping.values()))):
            print(f"screenshot: {os.path.relpath(path, ROOT)} ({os.path.getsize(path) // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
