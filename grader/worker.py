"""The untrusted side: runs inside the sandbox, never in the grading process.

The server imports torch once, then forks one child per (submission, topic). A child writes the
learner's files into a private folder, imports the topic module, and answers calls with plain data
(see ``wire``). The grading process sees only what the child sends back; it compares and scores.

Requests, each a wire message: ``{"op": "open", "topic", "files", "driver", "forbidden", "limits"}``
to the server; ``{"op": "call", "fn", "args", "kwargs", "driver"}`` and ``{"op": "close"}`` to the
child. When a child ends, for whatever reason, the server sends ``{"event": "exit", "status": ...}``.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import random
import resource
import signal
import sys
import tempfile
import threading
import traceback
import types

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from grader import wire

IN, OUT = 0, 1  # replaced by private copies in main()


def _send(obj):
    wire.write_message(OUT, obj)


def _device(dev: str):
    return dev if dev == "cpu" or dev.startswith("cuda") else "cpu"


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


def _learner_trace(exc: BaseException, folder: str) -> str:
    """The traceback lines that point into the learner's own files, then the error itself."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(folder)]
    lines = [f"  {os.path.basename(f.filename)}, line {f.lineno}, in {f.name}: {f.line}" for f in frames[-3:]]
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    if isinstance(exc, SyntaxError):
        last = f"{last} ({os.path.basename(exc.filename or '?')}, line {exc.lineno}: {(exc.text or '').strip()})"
    return "\n".join(lines + [last])[-2000:]


# ---- The run-time half of the forbidden-API guard (the static half is ``guard.py``) ----
#
# ``Watch`` sees what actually runs while learner code runs, whatever name reached it. A
# TorchDispatchMode sees every aten operator below autograd (F.cross_entropy,
# torch._C._nn.cross_entropy_loss and torch.ops.aten._log_softmax all execute aten._log_softmax);
# a TorchFunctionMode sees the torch function called, which names composites that decompose before
# dispatch (torch._VF.rnn_tanh runs as addmm and tanh, but is called as rnn_tanh). Rules (the
# request's "forbidden"): "aten.<op>" ("aten.*": any operator), "python:<torch module>" (its Python
# functions refuse to run) and "autograd:<function>" ("autograd:*": all): such a function runs under
# torch.no_grad(), and an operator run with gradient recording back on, inside a backward pass
# (.backward(), torch.autograd.grad, the engine called directly, torch.func) or on forward-mode
# dual tensors is refused.

class Forbidden(Exception):
    """Raised when learner code runs an operator or API that its exercise asks it to write by hand."""


_AUTOGRAD = {"backward", "grad", "requires_grad_"}  # torch functions that only make sense with autograd


class Watch:
    """Refuses forbidden operators while learner code runs: ``with watch.call(fn): fn(...)``; the
    first refusal is kept in ``refused`` (the learner's code cannot catch it away)."""

    def __init__(self, rules):
        ops = {r[len("aten."):] for r in rules if r.startswith("aten.")}
        self.everything = "*" in ops
        self.names = ops - {"*"}  # torch function names and aten operator names alike
        hand = {r.partition(":")[2] for r in rules if r.startswith("autograd:")}
        self.hand_all, self.hand = "*" in hand, hand - {"*"}
        if hand:  # forward-mode AD needs no backward pass: its dual tensors are refused instead
            self.names |= {"_make_dual"}
        self.overloads = set()
        for name in self.names:
            packet = getattr(torch.ops.aten, name, None)
            for o in (packet.overloads() if packet is not None else []):
                self.overloads.add(getattr(packet, o))
        for module in (r.partition(":")[2] for r in rules if r.startswith("python:")):
            _refuse_python_functions(module, self)
        self._recording, self._task = torch.is_grad_enabled, torch._C._current_graph_task_id
        self.refused: str | None = None
        self.strict = False  # inside a function whose gradient is written by hand
        self.outer = ""  # the torch function the learner called, for the message
        self.active = bool(self.everything or self.names)

    def _refuse(self, what: str):
        if self.refused is None:
            self.refused = what
        raise Forbidden(what)

    def op(self, func):
        """Called for every aten operator that runs."""
        if self.everything:
            self._refuse(f"uses torch (aten.{func.__name__.split('.')[0]}"
                         f"{', through ' + self.outer if self.outer else ''}): this exercise is plain Python")
        if func in self.overloads:
            words = f", through torch's {self.outer}" if self.outer else ""
            self._refuse(f"uses aten.{func.__name__.split('.')[0]}{words}, which this exercise asks you to "
                         "write by hand")
        if self.strict and (self._recording() or self._task() != -1):
            self._refuse("uses PyTorch's autograd (a backward pass, torch.autograd.grad, torch.func or turning "
                         "gradient recording on), but this exercise asks you to write the gradient by hand")

    def function(self, func) -> str:
        """Called for every torch function the learner calls (the outermost, not those it calls)."""
        name = (getattr(func, "__name__", "") or "").split(".")[0]
        if name in self.names:
            self._refuse(f"uses aten.{name} (torch's {name}), which this exercise asks you to write by hand")
        if self.strict and name in _AUTOGRAD:
            self._refuse(f"uses PyTorch's autograd ({name}), but this exercise asks you to write the gradient by hand")
        return name

    def python(self, label: str):
        """Called by a refused Python function of torch."""
        self._refuse(f"uses {label}, which this exercise asks you to write by hand")

    @contextlib.contextmanager
    def call(self, fn: str):
        """Watch the call of the learner's (or the driver's) function ``fn``."""
        if not self.active:
            yield
            return
        with contextlib.ExitStack() as stack:
            if self.names:
                stack.enter_context(_FunctionMode(self))
            stack.enter_context(_DispatchMode(self))
            stack.enter_context(_threads_watched(self))
            if self.hand_all or fn in self.hand:
                stack.enter_context(self.by_hand())
            yield

    @contextlib.contextmanager
    def by_hand(self):
        """Autograd refused while a function whose gradient is written by hand runs."""
        was = self.strict
        self.strict = True
        try:
            with torch.no_grad():
                yield
        finally:
            self.strict = was

    def scoped(self, module):
        """``module`` as a driver sees it: the functions whose gradient is written by hand refuse
        autograd while they run, wherever they are called from."""
        if not self.hand or self.hand_all:
            return module
        return _Scoped(module, self)


class _Scoped:
    def __init__(self, module, watch: Watch):
        self.__module, self.__watch = module, watch

    def __getattr__(self, name):
        attr = getattr(self.__module, name)
        if name not in self.__watch.hand or not callable(attr):
            return attr
        watch = self.__watch

        def by_hand(*args, **kwargs):
            with watch.by_hand():
                return attr(*args, **kwargs)
        return by_hand


class _DispatchMode(TorchDispatchMode):
    def __init__(self, watch: Watch):
        super().__init__()
        self.watch = watch

    @classmethod
    def _should_skip_dynamo(cls) -> bool:  # no torch.compile here: saves importing it (seconds) per child
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.watch.op(func)
        return func(*args, **(kwargs or {}))


class _FunctionMode(TorchFunctionMode):
    def __init__(self, watch: Watch):
        super().__init__()
        self.watch = watch

    def __torch_function__(self, func, types, args=(), kwargs=None):
        watch = self.watch
        outer, watch.outer = watch.outer, watch.function(func)
        try:
            return func(*args, **(kwargs or {}))
        finally:
            watch.outer = outer


def _refuse_python_functions(module_name: str, watch: Watch):
    """Every Python function of ``module_name`` (private helpers and the functions that decorators
    wrap included) refuses to run: its code is replaced, so that no name, alias or computed
    attribute reaches the original."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return
    home = getattr(module, "__file__", None)
    seen = set()
    for value in list(vars(module).values()):
        fn = value
        while isinstance(fn, types.FunctionType) and fn.__code__.co_filename == home and id(fn) not in seen:
            seen.add(id(fn))
            label = f"{module_name}.{fn.__name__}"
            free = fn.__code__.co_freevars
            src = ("def outer():\n" + "".join(f"    {v} = None\n" for v in free)
                   + "    def refused(*args, **kwargs):\n" + "".join(f"        {v}\n" for v in free)
                   + f"        __dlkata_refuse__({label!r})\n    return refused\n")
            scope: dict = {}
            exec(compile(src, home, "exec"), scope)
            fn.__globals__["__dlkata_refuse__"] = watch.python
            fn.__code__ = scope["outer"]().__code__
            fn = getattr(fn, "__wrapped__", None)


@contextlib.contextmanager
def _threads_watched(watch: Watch):
    """Threads started while learner code runs run under the same watch (modes are per thread)."""
    import _thread
    start = _thread.start_new_thread
    if getattr(start, "_dlkata", False):
        yield
        return

    def watched_start(function, args, kwargs={}):  # noqa: B006 - the signature of _thread's
        strict = watch.strict

        def run(*a, **k):
            with watch.call(""), (watch.by_hand() if strict else contextlib.nullcontext()):
                return function(*a, **k)
        return start(run, args, kwargs)

    watched_start._dlkata = True
    saved = _thread.start_new_thread, threading._start_new_thread
    _thread.start_new_thread = threading._start_new_thread = watched_start
    try:
        yield
    finally:
        _thread.start_new_thread, threading._start_new_thread = saved


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
    driver = None
    if req.get("driver"):
        driver = types.ModuleType("driver")
        exec(compile(req["driver"], "driver.py", "exec"), driver.__dict__)
    watch = Watch(req.get("forbidden", []))  # operator rules; the API names are checked statically
    try:
        _seed()
        with watch.call(""):
            module = importlib.import_module(req["topic"])
        if watch.refused:
            raise Forbidden(f"{watch.refused} (when the module is imported)")
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
        watch.refused = None
        args = _materialize(msg.get("args", []))
        if msg.get("driver"):
            args = [watch.scoped(module), *args]
        try:
            _seed()
            if msg.get("timeout"):  # SIGALRM's default action ends this child; the server lives on
                signal.setitimer(signal.ITIMER_REAL, float(msg["timeout"]))
            try:
                with watch.call("" if msg.get("driver") else msg["fn"]):
                    result = fn(*args, **_materialize(msg.get("kwargs", {})))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                _contain(me)
            if watch.refused:
                raise Forbidden(watch.refused)
            reply = wire.encode({"ok": result})
        except NotImplementedError as e:
            last = traceback.extract_tb(e.__traceback__)[-1]
            if last.filename.startswith(folder):  # raised by the stub itself, not by torch or a driver
                _send({"error": "not_implemented", "message": last.name})
            else:
                _send({"error": "raised", "message": _learner_trace(e, folder)})
            continue
        except Forbidden as e:
            _send({"error": "forbidden", "message": f"{e}: no credit for it"})
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
            if watch.refused:
                _send({"error": "forbidden", "message": f"{watch.refused}: no credit for it"})
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
