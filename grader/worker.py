"""The untrusted side: runs inside the sandbox, never in the grading process.

The server imports torch once, then forks one child per (submission, topic). A child writes the
learner's files into a private folder, imports the topic module, and answers calls with plain data
(see ``wire``). The grading process sees only what the child sends back; it compares and scores.

Requests, each a wire message: ``{"op": "open", "topic", "files", "driver", "forbidden", "limits"}``
to the server; ``{"op": "call", "fn", "args", "kwargs", "driver"}`` and ``{"op": "close"}`` to the
child. When a child ends, for whatever reason, the server sends ``{"event": "exit", "status": ...}``.
"""
from __future__ import annotations

import importlib
import inspect
import os
import random
import resource
import signal
import sys
import tempfile
import traceback
import types

import torch

from grader import wire

IN, OUT = 0, 1  # replaced by private copies in main()


class Forbidden(Exception):
    """Raised when learner code calls an API that its exercise asks it to write by hand."""


def _send(obj):
    wire.write_message(OUT, obj)


def _device(dev: str):
    return dev if dev in ("cpu", "meta") or dev.startswith("cuda") else "cpu"


def _materialize(x):
    if isinstance(x, wire.Generator):
        return torch.Generator(device=x.device).manual_seed(x.seed)
    if isinstance(x, list):
        return [_materialize(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_materialize(v) for v in x)
    if isinstance(x, dict):
        return {k: _materialize(v) for k, v in x.items()}
    return x


# Taken before any learner code runs, so that patching torch cannot hide a change.
_EQUAL, _EQ, _ISNAN = torch.equal, torch.eq, torch.isnan


class _Kept:
    """What an input tensor looked like before a call: a copy of its values and its layout."""

    def __init__(self, t: torch.Tensor):
        self.tensor, self.values = t, t.detach().clone()
        self.layout = (tuple(t.shape), t.stride(), t.storage_offset(), t.dtype, t.device)

    def changed(self) -> str | None:
        t = self.tensor
        if (tuple(t.shape), t.stride(), t.storage_offset(), t.dtype, t.device) != self.layout:
            return f"its shape went from {self.layout[0]} to {tuple(t.shape)}" if tuple(t.shape) != self.layout[0] \
                else "its strides, dtype or storage changed"
        if t.device.type == "meta":  # a shape and a dtype, no values to compare
            return None
        a, b = t.detach(), self.values
        same = _EQUAL(a, b) or bool((_EQ(a, b) | (_ISNAN(a) & _ISNAN(b))).all())
        return None if same else "its values changed"


def _inputs(fn, args, kwargs) -> list[tuple[str, object]]:
    """``(name, kept)`` for every tensor and plain container among the arguments of a call, the
    names from ``fn``'s signature (``h0``, ``params[1]``, ``state['h']``)."""
    try:
        named = list(inspect.signature(fn).bind(*args, **kwargs).arguments.items())
    except Exception:  # noqa: BLE001 - no signature, or one that does not fit: the call itself will say
        named = [(f"#{k + 1}", a) for k, a in enumerate(args)] + list(kwargs.items())
    kept: list[tuple[str, object]] = []

    def walk(name, x, depth=0):
        if isinstance(x, torch.Tensor):
            kept.append((name, _Kept(x)))
        elif depth < 4 and isinstance(x, (list, tuple)):
            if isinstance(x, list):
                kept.append((name, (x, list(x))))
            for k, v in enumerate(x[:1000]):
                walk(f"{name}[{k}]", v, depth + 1)
        elif depth < 4 and isinstance(x, dict):
            kept.append((name, (x, dict(x))))
            for k, v in list(x.items())[:1000]:
                walk(f"{name}[{k!r}]", v, depth + 1)

    for name, value in named:
        walk(name, value)
    return kept


def _side_effect(kept) -> str | None:
    """The first argument a call changed in place, and how; None when every input is as it was."""
    for name, k in kept:
        if isinstance(k, _Kept):
            how = k.changed()
        else:  # a list or dict: the same items, by identity (numbers and strings cannot change)
            now, before = k
            same = len(now) == len(before) and all(
                a is b for a, b in zip(now.values() if isinstance(now, dict) else now,
                                       before.values() if isinstance(before, dict) else before))
            same = same and (not isinstance(now, dict) or list(now) == list(before))
            how = None if same else "its items changed"
        if how:
            return f"`{name}` in place ({how})"
    return None


def _learner_trace(exc: BaseException, folder: str) -> str:
    """The traceback lines that point into the learner's own files, then the error itself."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(folder)]
    lines = [f"  {os.path.basename(f.filename)}, line {f.lineno}, in {f.name}: {f.line}" for f in frames[-3:]]
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    if isinstance(exc, SyntaxError):
        last = f"{last} ({os.path.basename(exc.filename or '?')}, line {exc.lineno}: {(exc.text or '').strip()})"
    return "\n".join(lines + [last])[-2000:]


def _guard(owner, attr: str, dotted: str, violations: list):
    def guard(*args, **kwargs):
        violations.append(dotted)
        raise Forbidden(f"{dotted} is not allowed in this exercise: write it yourself")

    try:
        setattr(owner, attr, guard)
    except (AttributeError, TypeError):
        pass


def _install_guard(dotted: str, violations: list):
    """Make ``torch.x.y`` (or every public function of a module such as ``torch.autograd``, or a
    tensor method ``.backward``) record the call and raise ``Forbidden``."""
    if dotted.startswith("."):
        if hasattr(torch.Tensor, dotted[1:]):
            _guard(torch.Tensor, dotted[1:], dotted[1:], violations)
        return
    owner_path, _, attr = dotted.rpartition(".")
    if not owner_path:
        return  # a whole package ("torch" for Value): the static check covers it
    try:
        owner = importlib.import_module(owner_path.split(".")[0])
        for p in owner_path.split(".")[1:]:
            owner = getattr(owner, p)
        target = getattr(owner, attr)
    except (ImportError, AttributeError):
        return
    if isinstance(target, types.ModuleType):  # guard its own public functions, keep the module itself
        for name in dir(target):
            fn = getattr(target, name, None)
            own = str(getattr(fn, "__module__", "") or "").startswith(target.__name__)
            if not name.startswith("_") and callable(fn) and not isinstance(fn, type) and own:
                _guard(target, name, f"{dotted}.{name}", violations)
    else:
        _guard(owner, attr, dotted, violations)


def _limit(limits: dict):
    mb = limits.get("memory_mb")
    if mb and not torch.cuda.is_available():  # CUDA maps huge virtual ranges; no RLIMIT_AS there
        with open("/proc/self/statm") as f:
            used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        cap = used + (mb << 20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    cpu = limits.get("cpu_s")
    if cpu:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limits.get("nproc"):
        resource.setrlimit(resource.RLIMIT_NPROC, (limits["nproc"], limits["nproc"]))


def _write_files(files: dict) -> str:
    folder = tempfile.mkdtemp(prefix="learner-")
    for rel, text in files.items():
        path = os.path.normpath(os.path.join(folder, rel))
        if not path.startswith(folder + os.sep):
            continue  # the grading side already refuses such names; this is a second lock
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    return folder


def _seed():
    random.seed(0)
    torch.manual_seed(0)
    try:
        import numpy
        numpy.random.seed(0)
    except ImportError:
        pass


def _contain(me: int):
    """After a call: a forked copy of this process never talks on the channel, and whatever the
    call left running as our children is stopped."""
    if os.getpid() != me:
        os._exit(0)
    try:
        with open(f"/proc/{me}/task/{me}/children") as f:
            pids = [int(p) for p in f.read().split()]
    except OSError:
        pids = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def child(req: dict):
    me = os.getpid()
    _limit(req.get("limits", {}))
    folder = _write_files(req["files"])
    os.chdir(folder)
    sys.path.insert(0, folder)
    violations: list[str] = []
    driver = None
    if req.get("driver"):  # first, so that the driver keeps the real APIs it may need
        driver = types.ModuleType("driver")
        exec(compile(req["driver"], "driver.py", "exec"), driver.__dict__)
    for name in req.get("forbidden", []):
        _install_guard(name, violations)
    try:
        _seed()
        module = importlib.import_module(req["topic"])
    except BaseException as e:  # noqa: BLE001 - anything the learner's import does is reported
        _send({"error": "import", "message": _learner_trace(e, folder)})
        return
    _send({"ok": sorted(n for n in dir(module) if not n.startswith("_"))})
    while True:
        msg = wire.read_message(IN, device_map=_device)
        if msg.get("op") != "call":
            return
        target = driver if msg.get("driver") else module
        fn = getattr(target, msg["fn"], None)
        if not callable(fn):
            _send({"error": "missing", "message": f"{req['topic']}.py has no function {msg['fn']}"})
            continue
        before = len(violations)
        args, kwargs = _materialize(msg.get("args", [])), _materialize(msg.get("kwargs", {}))
        if msg.get("driver"):
            args = [module, *args]
        kept = _inputs(fn, args, kwargs)
        try:
            _seed()
            if msg.get("timeout"):  # SIGALRM's default action ends this child; the server lives on
                signal.setitimer(signal.ITIMER_REAL, float(msg["timeout"]))
            try:
                result = fn(*args, **kwargs)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                _contain(me)
            if len(violations) > before:
                raise Forbidden(f"{violations[before]} is not allowed in this exercise: write it yourself")
            changed = _side_effect(kept)
            if changed:
                who = "your code changed the" if msg.get("driver") else f"`{msg['fn']}` changed its"
                _send({"error": "side_effect", "message": f"{who} argument {changed}: do not modify inputs; use "
                       "out-of-place operations such as `x = x - m` instead of `x -= m`"})
                continue
            reply = wire.encode({"ok": result})
        except NotImplementedError as e:
            last = traceback.extract_tb(e.__traceback__)[-1]
            # raised by the stub itself (its own line says so), not by torch (".cpu() on meta"...) or a driver
            if last.filename.startswith(folder) and "NotImplementedError" in (last.line or ""):
                _send({"error": "not_implemented", "message": last.name})
            else:
                _send({"error": "raised", "message": _learner_trace(e, folder)})
            continue
        except Forbidden as e:
            _send({"error": "forbidden", "message": str(e)})
            continue
        except MemoryError:
            _send({"error": "memory", "message": f"ran out of memory (the limit is "
                                                 f"{req.get('limits', {}).get('memory_mb', '?')} MiB)"})
            continue
        except SystemExit as e:
            _send({"error": "exit", "message": f"called sys.exit({e.code!r})"[:500]})
            continue
        except wire.WireError as e:
            _send({"error": "bad_return", "message": f"returned something that is not tensors or numbers ({e})"})
            continue
        except BaseException as e:  # noqa: BLE001
            if len(violations) > before:
                _send({"error": "forbidden", "message": f"{violations[before]} is not allowed in this exercise"})
            else:
                _send({"error": "raised", "message": _learner_trace(e, folder)})
            continue
        wire.write_all(OUT, reply)


def main():
    global IN, OUT
    reap = "--reap" in sys.argv
    IN, OUT = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    torch.set_num_threads(1)
    # The meta device's kernels load on first use (seconds): once here, not in every child.
    torch.tanh(torch.empty(1, 1, device="meta") @ torch.empty(1, 1, device="meta"))
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _send({"ready": True, "pid": os.getpid()})
    while True:
        try:
            req = wire.read_message(IN)
        except EOFError:
            return
        if req.get("op") != "open":
            continue
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                child(req)
            except BaseException:  # noqa: BLE001 - the grading side learns what broke
                code = 3
                try:
                    _send({"error": "internal", "message": traceback.format_exc()[-2000:]})
                except BaseException:  # noqa: BLE001
                    pass
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        if reap:  # alone in this pid namespace or uid: whatever the child left behind goes too
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if os.WIFSIGNALED(status):
            _send({"event": "exit", "signal": os.WTERMSIG(status)})
        else:
            _send({"event": "exit", "code": os.WEXITSTATUS(status)})


if __name__ == "__main__":
    main()
