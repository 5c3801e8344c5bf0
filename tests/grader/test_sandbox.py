"""``grader.sandbox`` directly: timeouts, crashes, escaped grandchildren, memory and fork bombs, and the
runtime half of the forbidden-API guard. One sandbox per isolation mode serves the whole module; a test
that kills it shows that the next ``open`` starts a fresh one."""
from __future__ import annotations

import os
import time

import pytest
import torch

import grader.sandbox as sb
from grader.sandbox import LearnerError, Sandbox
from tests.grader import classroom as c

ROOT_ONLY = "sandboxes get a uid of their own only when the grader runs as root"

HOSTILE = '''
import ctypes
import os
import sys
import time

import torch


def ok(x):
    return x * 2


def spin():
    while True:
        pass


def hard_exit(code):
    os._exit(code)


def segfault():
    return ctypes.string_at(0)


def escape():
    """Leaves a grandchild in a session of its own, sleeping forever; returns once it runs."""
    r, w = os.pipe()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.write(w, b"x")
            while True:
                time.sleep(1000)
        os._exit(0)
    os.read(r, 1)
    return True


def bomb_bytes():
    return len(bytearray(20 << 30))


def bomb_tensor():
    return torch.ones(20 << 30, dtype=torch.uint8).sum()


def creep():
    hoard = []
    while True:
        block = bytearray(64 << 20)
        block[::4096] = b"x" * len(block[::4096])
        hoard.append(block)


def fork_bomb():
    while True:
        try:
            os.fork()
        except OSError:
            time.sleep(0.05)


def tuple_keys():
    return {(0, 1): torch.ones(1)}


def stdout_flood():
    for _ in range(1000):
        print("x" * 10000)
        os.write(1, b"\\x00" * 10000)
        os.write(2, b"\\x00" * 10000)
    return 7
'''


def _uid(box: Sandbox) -> int:
    return sb.UID_BASE + box.slot


@pytest.fixture(scope="module")
def box():
    b = Sandbox(slot=3990 + os.getpid() % 9, timeout=5)
    yield b
    b.kill()


def _open(b: Sandbox, **kw):
    return b.open("hostile", {"hostile.py": HOSTILE}, **kw)


def test_a_call_comes_back_as_plain_data(box):
    learner = _open(box)
    out = learner.call("ok", torch.arange(3))
    assert type(out) is torch.Tensor and out.tolist() == [0, 2, 4]
    assert learner.call("stdout_flood") == 7  # output is thrown away, the channel stays clean
    learner.close()


def test_a_return_that_is_not_plain_data_costs_only_that_call(box):
    learner = _open(box)
    with pytest.raises(LearnerError) as e:
        learner.call("tuple_keys")  # encodable only with keys that decode refuses: not a broken channel
    assert e.value.kind == "bad_return" and "dict keys" in e.value.message
    assert learner.call("ok", torch.ones(1)).tolist() == [2.0]
    learner.close()


def test_timeout_then_the_sandbox_serves_the_next_open(box):
    learner = _open(box)
    start = time.monotonic()
    with pytest.raises(LearnerError) as e:
        learner.call("spin", timeout=1.0)
    assert e.value.kind == "timeout" and "no answer within 1 s" in e.value.message
    assert time.monotonic() - start < 4
    start = time.monotonic()
    with pytest.raises(LearnerError) as again:  # that function is broken for good: no second wait
        learner.call("spin", timeout=1.0)
    assert again.value.kind == "timeout" and time.monotonic() - start < 0.5
    assert learner.call("ok", torch.ones(1)).tolist() == [2.0]  # the others go on in a fresh child
    learner.close()
    fresh = _open(box)
    assert fresh.call("ok", torch.ones(1)).tolist() == [2.0]
    fresh.close()


@pytest.mark.parametrize("fn, args, message", [("hard_exit", (0,), "exited with code 0"),
                                               ("hard_exit", (3,), "exited with code 3"),
                                               ("segfault", (), "killed by signal 11")])
def test_crashes_are_reported_and_contained(box, fn, args, message):
    learner = _open(box)
    with pytest.raises(LearnerError) as e:
        learner.call(fn, *args)
    assert e.value.kind == "crash" and message in e.value.message
    fresh = _open(box)
    assert fresh.call("ok", torch.ones(1)).tolist() == [2.0]
    fresh.close()


@pytest.mark.parametrize("fn", ["bomb_bytes", "bomb_tensor"])
def test_memory_bomb_of_20_gb_fails_within_seconds(box, fn):
    learner = _open(box)
    start = time.monotonic()
    with pytest.raises(LearnerError) as e:
        learner.call(fn)
    assert time.monotonic() - start < 5
    assert e.value.kind in ("crash", "memory") or (
        e.value.kind == "raised" and ("MemoryError" in e.value.message or "can't allocate memory" in e.value.message)
    ), (e.value.kind, e.value.message)
    learner.close()


def test_memory_creeping_up_to_the_limit_is_stopped(box):
    saved = box.limits
    box.limits = {**saved, "memory_mb": 512}
    try:
        learner = _open(box)
    finally:
        box.limits = saved
    start = time.monotonic()
    with pytest.raises(LearnerError) as e:
        learner.call("creep")
    assert time.monotonic() - start < 5
    assert e.value.kind in ("crash", "memory") or "MemoryError" in e.value.message, (e.value.kind, e.value.message)
    learner.close()


def test_fork_bomb_is_contained(box):
    learner = _open(box)
    start = time.monotonic()
    with pytest.raises(LearnerError) as e:
        learner.call("fork_bomb", timeout=2.0)
    assert e.value.kind in ("timeout", "crash")
    assert time.monotonic() - start < 8
    if os.geteuid() == 0:  # every process the bomb made is gone; the fork server serves on
        assert c.wait_until_gone({_uid(box)}, keep_server=True) == []
    fresh = _open(box)
    assert fresh.call("ok", torch.ones(1)).tolist() == [2.0]
    fresh.close()


@pytest.mark.parametrize("mode", ["bwrap", "rlimits"])
def test_a_setsid_grandchild_does_not_survive(mode, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip(ROOT_ONLY)
    if mode == "bwrap" and sb.isolation() != "bwrap":
        pytest.skip("isolation is not 'bwrap' here (bubblewrap missing or DLKATA_SANDBOX=rlimits)")
    monkeypatch.setattr(sb, "_MODE", mode)
    b = Sandbox(slot=3980 + os.getpid() % 9 + (mode == "bwrap"), timeout=5)
    try:
        learner = b.open("hostile", {"hostile.py": HOSTILE})
        assert learner.call("escape") is True
        assert len(c.processes_of({_uid(b)})) >= 3  # server, the learner's process, the grandchild
        learner.close()  # the learner's process ends: whatever it left behind goes with it
        deadline = time.monotonic() + 5
        while len(c.processes_of({_uid(b)})) > 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        left = c.processes_of({_uid(b)})
        assert len(left) == 1  # the fork server alone
        if mode == "rlimits":
            assert left == [b.proc.pid]
        again = b.open("hostile", {"hostile.py": HOSTILE})  # the server still serves
        assert again.call("ok", torch.ones(1)).tolist() == [2.0]
        assert again.call("escape") is True
        b.kill()  # and a kill of the sandbox takes the grandchild too
        assert c.wait_until_gone({_uid(b)}, 5) == []
    finally:
        b.kill()


FORBIDDEN_SRC = '''
import sys

import torch
import torch.nn.functional as F
from torch.nn.functional import cross_entropy as ce

CE_AT_IMPORT = F.cross_entropy


def via_alias(x, t):
    return F.cross_entropy(x, t)


def via_from_import(x, t):
    return ce(x, t)


def via_name_taken_at_import(x, t):
    return CE_AT_IMPORT(x, t)


def via_sys_modules(x, t):
    return sys.modules["torch.nn.functional"].cross_entropy(x, t)


def via_getattr(x, t):
    return getattr(F, "cross_" + "entropy")(x, t)


def via_method(x, t):
    x = x.clone().requires_grad_(True)
    (x * x).sum().backward()
    return x.grad


def via_module(x, t):
    x = x.clone().requires_grad_(True)
    return torch.autograd.grad((x * x).sum(), x)[0]


def swallowed(x, t):
    try:
        F.cross_entropy(x, t)
    except Exception:
        pass
    return x.sum()


def by_hand(x, t):
    log_probs = x - x.exp().sum(-1, keepdim=True).log()
    return -log_probs.gather(-1, t[:, None]).mean()
'''


@pytest.mark.parametrize("fn", ["via_alias", "via_from_import", "via_name_taken_at_import", "via_sys_modules",
                                "via_getattr", "via_method", "via_module", "swallowed"])
def test_forbidden_apis_are_refused_at_run_time(box, fn):
    learner = box.open("ce", {"ce.py": FORBIDDEN_SRC}, driver=None,
                       forbidden=["aten._log_softmax", "aten.nll_loss_forward", "autograd:*"])
    x, t = torch.randn(2, 3, dtype=torch.float64), torch.tensor([0, 2])
    with pytest.raises(LearnerError) as e:
        learner.call(fn, x, t)
    assert e.value.kind == "forbidden" and "asks you to write" in e.value.message
    expected = torch.nn.functional.cross_entropy(x, t)  # and what is written by hand still runs
    assert torch.allclose(learner.call("by_hand", x, t), expected)
    learner.close()


def test_forbidden_apis_stay_usable_in_the_next_open(box):
    learner = box.open("ce", {"ce.py": FORBIDDEN_SRC}, driver=None, forbidden=[])
    x, t = torch.randn(2, 3, dtype=torch.float64), torch.tensor([0, 2])
    assert torch.allclose(learner.call("via_alias", x, t), torch.nn.functional.cross_entropy(x, t))
    learner.close()


def test_the_private_tmp_comes_before_the_binds_so_a_venv_under_tmp_stays_visible():
    if sb.isolation() != "bwrap":
        pytest.skip("isolation is not 'bwrap' here (bubblewrap missing or DLKATA_SANDBOX=rlimits)")
    cmd, _ = sb._command(0)
    tmpfs = cmd.index("--tmpfs")
    assert cmd[tmpfs + 1] == "/tmp"
    assert tmpfs < cmd.index("--ro-bind"), "a bind under /tmp placed before --tmpfs /tmp would be hidden"
