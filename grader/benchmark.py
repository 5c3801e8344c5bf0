"""Benchmark: grading a class with the grader against the naive loop of one pytest process per
submission, measured in the same run. Prints figures; asserts nothing (speed is not a test).

    python -m grader.benchmark --n 100            # a class of 100 generated submissions
    python -m grader.benchmark --n 20 --naive 5   # quicker: naive loop timed on about 5, scaled to 20

The class mixes correct submissions (the reference solutions), partly wrong ones (stubs and
mutants from ``tests/<topic>/mutants.toml``) and hostile ones (an infinite loop, ``os._exit``, a
memory bomb). Figures, in one run:

- the class: wall and CPU seconds; the marginal wall and CPU seconds per submission (from a small and
  a large class); the naive loop per submission and the ratio (the naive loop timed on a sample of
  every kind of submission, each kind weighted by its share of the class);
- where a grading process spends its time (one process profiled on the small class): in calls into
  the learner's sandboxed code (the worker), in PyTorch's references, in the rest of the test
  bodies' own work, and in the framework;
- the learner's loop: ``pytest exercises/<topic>`` on the stubs against a bare ``python -c "import
  torch"`` (median of paired runs).
"""
from __future__ import annotations

import argparse
import collections
import os
import pstats
import random
import statistics
import shutil
import subprocess
import sys
import tempfile
import time

from grader.cli import default_jobs
from grader.examples.make_class import write_folder
from grader.grade import ROOT, topics_of
from grader.grade import _env as grading_env, _pytest as grading_command
from grader.mutants import load

HOSTILE = {
    "infinite_loop": "def {fn}(*a, **k):\n    while True:\n        pass\n",
    "exit": "import os\n\ndef {fn}(*a, **k):\n    os._exit(0)\n",
    # 64 MiB at a time: the bomb fills whatever limit it is given, as a real one would
    "memory_bomb": "def {fn}(*a, **k):\n    x = [bytearray(1 << 26) for _ in range(1 << 12)]\n    return x\n",
}


def _functions(topic: str) -> list[str]:
    import ast
    tree = ast.parse(open(os.path.join(ROOT, "solutions", topic, f"{topic}.py")).read())
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]


def make_class(folder: str, n: int, topics: list[str], seed: int = 0) -> dict[str, str]:
    """``n`` submissions: 6 in 10 correct, 3 in 10 partly wrong (stubs and mutants), 1 in 10 hostile.
    Returns each one's kind: "correct", "partial" or "hostile: <what>"."""
    rng = random.Random(seed)
    kinds = {}
    mutants = {t: [m.name for m in load(t)] for t in topics}
    for i in range(n):
        kind = "correct" if i % 10 < 6 else ("partial" if i % 10 < 9 else "hostile")
        plan = {t: "solution" for t in topics}
        if kind == "partial":
            for t in topics:
                r = rng.random()
                plan[t] = "stub" if r < 0.3 else (rng.choice(mutants[t]) if r < 0.7 and mutants[t] else "solution")
        sub = os.path.join(folder, f"{kind}-{i:03d}")
        write_folder(sub, plan)
        kinds[os.path.basename(sub)] = kind
        if kind == "hostile":
            topic = topics[i % len(topics)]
            what = sorted(HOSTILE)[i % len(HOSTILE)]
            kinds[os.path.basename(sub)] = f"hostile: {what}"
            with open(os.path.join(sub, topic, f"{topic}.py"), "a") as f:
                f.write("\n\n" + "\n".join(HOSTILE[what].format(fn=fn) for fn in _functions(topic)))
    return kinds


def naive_sample(kinds: dict[str, str], k: int) -> dict[str, list[str]]:
    """About ``k`` submissions to time the naive loop on, spread over every kind in proportion to
    its share of the class and at least one of each: a hostile kind costs far more or less than
    the rest, so the estimate of the class must see each one."""
    groups: dict[str, list[str]] = {}
    for name in sorted(kinds):
        groups.setdefault(kinds[name], []).append(name)
    chosen = {}
    for kind, names in groups.items():
        m = max(1, round(k * len(names) / len(kinds)))
        chosen[kind] = names[:: max(1, len(names) // m)][:m]
    return chosen


def _machine_busy() -> float:
    """CPU seconds the whole machine has spent busy so far (``/proc/stat``; 0 where there is none).
    The sandboxed workers' CPU shows only here: a sandbox ends with SIGKILL, before its processes
    have waited for their children, so their time never reaches the grader's ``RUSAGE_CHILDREN``."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0.0
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def _timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the machine while the command ran: its sandboxed workers
    included, so figures are true only on an otherwise idle machine)."""
    busy = _machine_busy()
    start = time.monotonic()
    subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - start, _machine_busy() - busy


def _pytest_cmd(topics: list[str], impls: list[str]) -> list[str]:
    return [sys.executable, "-m", "pytest", *[os.path.join("tests", t) for t in topics], "-q", "--tb=no",
            "--assert=plain", "-p", "no:cacheprovider", "--call-timeout=5", *[f"--impl={p}" for p in impls]]


def breakdown(topics: list[str], impls: list[str], work: str) -> dict[str, float]:
    """Seconds of one grading process over ``impls``, profiled, in three parts: calls into learner
    code (the sandbox's round trips, the learner's own computing, the opening of each topic), the test
    bodies' own work (drawing inputs, references, comparisons), and the framework (pytest's machinery
    per case, hypothesis, collection, imports)."""
    prof = os.path.join(work, "grading.prof")
    with open(os.devnull, "w") as results:  # the grading process's own command, its results dropped
        cmd = grading_command([os.path.join(ROOT, "tests", t) for t in topics], impls, results.fileno(),
                              ["--call-timeout=5"])
        subprocess.run([cmd[0], "-m", "cProfile", "-o", prof, *cmd[1:]], cwd=ROOT, env=grading_env(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(results.fileno(),))
    stats = pstats.Stats(prof).stats  # {(file, line, name): (cc, nc, tottime, cumtime, callers)}
    total = max(cum for _, _, _, cum, _ in stats.values())
    plugin = os.path.join(ROOT, "grader", "plugin.py")

    def cumulative(where: str, names: tuple) -> float:
        return sum(v[3] for (f, _, name), v in stats.items() if f.endswith(where) and name in names)
    learner = cumulative(plugin, ("_call", "impl"))  # calls from test bodies, and each topic's opening
    bodies = cumulative(os.path.join("_pytest", "python.py"), ("runtest",)) - cumulative(plugin, ("_call",))
    references = cumulative(os.path.join("tests", "references.py"), ("kept",))  # PyTorch's, kept per process
    return {"total": total, "learner code (sandbox round trips, learner computing, opening topics)": learner,
            "references (PyTorch's expected values, each computed once per process)": references,
            "test bodies' other work (inputs, comparisons)": bodies - references,
            "framework (pytest per case, hypothesis, collection, imports)": total - learner - bodies}


def learner_loop(topic: str, runs: int = 5) -> tuple[float, float, float]:
    """Median wall seconds of ``pytest exercises/<topic>`` (the stubs) and of ``python -c "import
    torch"``, measured in pairs, and the median of the pairs' ratios."""
    stub = [sys.executable, "-m", "pytest", os.path.join("exercises", topic), "-q", "-p", "no:cacheprovider"]
    bare = [sys.executable, "-c", "import torch"]
    pairs = [(_timed(stub)[0], _timed(bare)[0]) for _ in range(runs)]
    return (statistics.median(p for p, _ in pairs), statistics.median(b for _, b in pairs),
            statistics.median(p / b for p, b in pairs))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100, help="submissions in the class (default 100)")
    p.add_argument("--small", type=int, default=4, help="size of the small class for the marginal cost")
    p.add_argument("--naive", type=int, default=10, help="submissions timed with the naive loop (scaled to n)")
    p.add_argument("--topics", help="comma-separated subset of topics (default: all)")
    p.add_argument("--jobs", type=int, default=default_jobs(), help="grading processes (default: the grader's)")
    p.add_argument("--loop-topic", default=None, help="topic of the learner-loop figure (default: the "
                                                      "first topic)")
    args = p.parse_args(argv)
    topics = args.topics.split(",") if args.topics else topics_of()
    work = tempfile.mkdtemp(prefix="dlkata-bench-")
    try:
        big, small = os.path.join(work, "class"), os.path.join(work, "small")
        kinds = make_class(big, args.n, topics)
        make_class(small, args.small, topics)
        grader = [sys.executable, "-m", "grader", "--json", f"--jobs={args.jobs}", f"--topics={','.join(topics)}",
                  f"--out={os.path.join(work, 'out')}", "--call-timeout=5", "--submission-timeout=60"]
        t_small, c_small = _timed(grader + [small])
        t_big, c_big = _timed(grader + [big])
        # The naive loop's cost of the class: each kind's mean, weighted by how many the class holds.
        sample = naive_sample(kinds, args.naive)
        naive = {kind: [_timed(_pytest_cmd(topics, [os.path.join(big, name)])) for name in names]
                 for kind, names in sample.items()}
        share = collections.Counter(kinds.values())
        naive_wall = sum(share[k] * statistics.mean(w for w, _ in runs) for k, runs in naive.items())
        naive_cpu = sum(share[k] * statistics.mean(c for _, c in runs) for k, runs in naive.items())
        parts = breakdown(topics, [os.path.join(small, n) for n in sorted(os.listdir(small))], work)
        loop_topic = args.loop_topic or topics[0]
        loop, bare, loop_ratio = learner_loop(loop_topic)
        naive_each = naive_wall / args.n
        marginal_wall = (t_big - t_small) / (args.n - args.small)
        marginal_cpu = (c_big - c_small) / (args.n - args.small)
        print(f"topics: {', '.join(topics)}; grading processes: {args.jobs}; machine cores: {os.cpu_count()}")
        print("CPU: the whole machine's busy seconds while a command ran (sandboxed workers included; "
              "true on an otherwise idle machine)")
        print(f"class of {args.n}: grader wall {t_big:.1f} s, CPU {c_big:.1f} s")
        print(f"class of {args.small}: grader wall {t_small:.1f} s, CPU {c_small:.1f} s")
        print(f"marginal cost per submission: {marginal_wall:.2f} s wall, {marginal_cpu:.2f} s CPU")
        print(f"naive loop (one pytest process per submission), timed on {sum(map(len, naive.values()))} "
              f"(each kind's mean, weighted by its share of the class): {naive_each:.2f} s wall, "
              f"{naive_cpu / args.n:.2f} s CPU each -> {naive_wall:.0f} s for {args.n}")
        for kind, runs in naive.items():
            print(f"  {kind:<24} {share[kind]:3d} in the class, timed on {len(runs)}: "
                  f"{statistics.mean(w for w, _ in runs):6.2f} s wall each")
        print(f"speed-up over the naive loop at n={args.n}: {naive_each * args.n / t_big:.1f}x")
        print(f"one grading process over the class of {args.small}, profiled: {parts.pop('total'):.1f} s")
        for what, seconds in parts.items():
            print(f"  {what:<76} {seconds:6.1f} s")
        print(f"learner loop: pytest exercises/{loop_topic} {loop:.2f} s, python -c 'import torch' {bare:.2f} s "
              f"(medians of 5 pairs): {loop_ratio:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
