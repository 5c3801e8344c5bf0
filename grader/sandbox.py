"""The trusted side of the worker boundary: start a sandboxed fork server and talk to it.

``Sandbox().open(topic, files)`` returns a ``Learner`` whose ``call(fn, *args)`` runs the learner's
function in a sandboxed child and returns plain data. Anything that goes wrong on the learner's side
comes back as a ``LearnerError`` with a kind (``not_implemented``, ``missing``, ``raised``, ``import``,
``forbidden``, ``timeout``, ``crash``, ...) and a message fit for a student.

Isolation, best first: bubblewrap (new mount, pid, net, ipc and uts namespaces; only the Python
runtime, torch and the two worker modules visible; a fresh /tmp) with the worker dropped to an
unprivileged uid and no capabilities; without bubblewrap, a separate process with rlimits, a uid of
its own where we are root, and a warning.
"""
from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings

import torch

from grader import wire

HERE = os.path.dirname(os.path.abspath(__file__))
LIMITS = {"memory_mb": 3072, "cpu_s": 120, "nproc": 64}
CALL_TIMEOUT = 20.0
ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
       "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
UID_BASE = 61000
BACKSTOP = 2.0  # seconds past a call's own alarm before the whole sandbox is stopped
STICKY = {"internal"}  # after this, the learner's process is not trusted to go on


class LearnerError(Exception):
    """Something on the learner's side: ``kind`` says what, ``message`` is for the student."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind, self.message = kind, message


def _site_dirs() -> list[str]:
    import numpy
    dirs = [os.path.dirname(os.path.dirname(m.__file__)) for m in (torch, numpy)]
    return list(dict.fromkeys(dirs))


def _stage() -> str:
    """A folder holding only the worker's code: the sandbox sees this, never the project."""
    stage = tempfile.mkdtemp(prefix="dlkata-worker-")
    os.makedirs(os.path.join(stage, "grader"))
    for name in ("__init__.py", "wire.py", "worker.py"):
        shutil.copy(os.path.join(HERE, name), os.path.join(stage, "grader", name))
    os.chmod(stage, 0o755)
    atexit.register(shutil.rmtree, stage, True)
    return stage


_STAGE = None
_MODE = None


def isolation() -> str:
    """'bwrap' when bubblewrap works here, else 'rlimits' (with a warning, once)."""
    global _MODE
    if _MODE is None:
        _MODE = "rlimits"
        if os.environ.get("DLKATA_SANDBOX", "auto") != "rlimits" and shutil.which("bwrap"):
            probe = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid",
                                    "--die-with-parent", "true"], capture_output=True)
            if probe.returncode == 0:
                _MODE = "bwrap"
        if _MODE == "rlimits":
            warnings.warn("bubblewrap is not available: learner code runs in separate processes with "
                          "rlimits only (no namespaces, the file system stays readable)", stacklevel=2)
    return _MODE


def _command(slot: int) -> tuple[list[str], bool]:
    global _STAGE
    _STAGE = _STAGE or _stage()
    python = os.path.realpath(sys.executable)
    sandboxed = isolation() == "bwrap"
    stage = "/opt/dlkata" if sandboxed else _STAGE
    boot = f"import sys; sys.path[:0] = {[stage, *_site_dirs()]!r}; from grader.worker import main; main()"
    root = os.geteuid() == 0
    uid = UID_BASE + slot
    drop = (["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
             "--bounding-set=-all", "--"] if root and shutil.which("setpriv") else [])
    if sandboxed:
        dirs = sorted({sys.base_prefix, sys.prefix, os.path.dirname(os.path.dirname(python)),
                       *_site_dirs()})
        parents = sorted({os.path.dirname(p) for d in [*dirs, stage] for p in _ancestors(d)} - {"/"})
        binds = [a for p in parents if not p.startswith("/usr") for a in ("--dir", p)]
        binds += ["--ro-bind", _STAGE, stage]
        for d in dirs:
            binds += ["--ro-bind", d, d]
        # The private /tmp comes first, so that a Python or venv living under /tmp is bound on top of it.
        cmd = ["bwrap", "--perms", "1777", "--tmpfs", "/tmp", "--ro-bind", "/usr", "/usr",
               "--ro-bind", "/etc", "/etc", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
               "--symlink", "usr/bin", "/bin", *binds, "--proc", "/proc", "--dev", "/dev",
               "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
               "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--chdir", "/tmp",
               *_gpu_binds(), "--"]
        return cmd + drop + [python, "-S", "-E", "-c", boot, "--reap"], True
    reap = bool(drop)
    return drop + [python, "-S", "-E", "-c", boot] + (["--reap"] if reap else []), reap


def _ancestors(path: str) -> list[str]:
    out = []
    while path not in ("/", ""):
        out.append(path)
        path = os.path.dirname(path)
    return out


def _gpu_binds() -> list[str]:
    out = []
    for name in sorted(os.listdir("/dev")):
        if name.startswith("nvidia"):
            out += ["--dev-bind", f"/dev/{name}", f"/dev/{name}"]
    if os.path.isdir("/proc/driver/nvidia"):
        out += ["--ro-bind", "/proc/driver/nvidia", "/proc/driver/nvidia"]
    return out


def _kill_uid(uid: int):
    """Kill every process of ``uid`` (the sandbox's own), including those that escaped with setsid."""
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.stat(f"/proc/{pid}").st_uid == uid:
                    os.kill(int(pid), signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                pass


def _device_map(dev: str):
    if dev in ("cpu", "meta") or (dev.startswith("cuda") and torch.cuda.is_available()):
        return dev
    raise wire.WireError(f"tensor on unknown device {dev!r}")


class Sandbox:
    """One fork server. ``slot`` picks its uid, so that sandboxes never share one."""

    def __init__(self, slot: int | None = None, limits: dict | None = None, timeout: float = CALL_TIMEOUT):
        self.slot = os.getpid() % 4000 if slot is None else slot
        self.limits, self.timeout = {**LIMITS, **(limits or {})}, timeout
        self.proc = None
        self.current: Learner | None = None

    def _start(self):
        cmd, self._reap = _command(self.slot)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=ENV, cwd="/", start_new_session=True)
        self._in, self._out = self.proc.stdout.fileno(), self.proc.stdin.fileno()
        try:
            ready = wire.read_message(self._in, deadline=time.monotonic() + 120)
        except (EOFError, TimeoutError, wire.WireError) as e:
            self.kill()
            raise RuntimeError(f"the sandboxed worker did not start: {e}") from None
        assert ready.get("ready"), ready

    def kill(self):
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            if os.geteuid() == 0:
                _kill_uid(UID_BASE + self.slot)
            self.proc.stdin.close()
            self.proc.stdout.close()
            self.proc = None

    def open(self, topic: str, files: dict, driver: str | None = None, forbidden=(),
             timeout: float | None = None) -> "Learner":
        if self.current is not None:  # one learner at a time per sandbox
            self.current.close()
        self.current = Learner(self, topic, files, driver, list(forbidden), timeout)
        return self.current


class Learner:
    """The learner's module for one topic, living in a sandboxed child.

    A call that hangs or kills its process costs that function only: later calls of the same
    function fail at once with the same error, other functions go on in a fresh child (the module
    is imported again there). An import that fails breaks the whole topic.
    """

    def __init__(self, box: Sandbox, topic, files, driver, forbidden, timeout: float | None = None):
        self.box, self.topic, self.broken, self.alive = box, topic, None, False
        self.dead: dict[str, LearnerError] = {}
        self.names: list[str] = []
        self._request = {"op": "open", "topic": topic, "files": files, "driver": driver,
                         "forbidden": forbidden, "limits": box.limits}
        self._open(timeout or box.timeout)

    def _open(self, timeout: float):
        if self.box.proc is None or self.box.proc.poll() is not None:
            self.box.kill()
            self.box._start()
        self._send(self._request)
        self.alive = True
        try:
            reply = self._reply(timeout)
        except LearnerError as err:
            self.broken = LearnerError(err.kind, f"importing {self.topic}.py: {err.message}")
            raise self.broken from None
        if "error" in reply:
            self.broken = LearnerError("import", f"{self.topic}.py does not import:\n{reply['message']}")
            self.close()
            raise self.broken
        self.names = reply["ok"]

    def _send(self, msg):
        try:
            wire.write_message(self.box._out, msg)
        except (BrokenPipeError, OSError):
            self._lost()
            raise LearnerError("crash", "the worker running your code stopped unexpectedly") from None

    def _lost(self):
        """The channel cannot be trusted any more: stop the whole sandbox (a fresh one comes next)."""
        self.alive = False
        self.box.kill()

    def _reply(self, timeout: float, alarm: float | None = None):
        try:
            reply = wire.read_message(self.box._in, _device_map, time.monotonic() + timeout)
        except TimeoutError:
            self._lost()
            raise LearnerError("timeout", f"no answer within {timeout:g} s (an infinite loop?)") from None
        except (EOFError, wire.WireError) as e:
            self._lost()
            raise LearnerError("crash", f"the worker running your code broke its channel ({e})") from None
        if not isinstance(reply, dict):
            self._lost()
            raise LearnerError("crash", "the worker running your code sent garbage")
        if "event" in reply:  # the child ended; the server that forks children is still fine
            self.alive = False
            if alarm and reply.get("signal") == signal.SIGALRM:
                raise LearnerError("timeout", f"no answer within {alarm:g} s (an infinite loop?)")
            how = (f"was killed by signal {reply['signal']}" if "signal" in reply
                   else f"exited with code {reply.get('code')}")
            hint = " (out of memory or CPU time?)" if reply.get("signal") in (9, 24) else ""
            raise LearnerError("crash", f"the process running your code {how}{hint}"
                                        " — os._exit, a segfault or a resource limit")
        return reply

    def call(self, fn: str, *args, driver: bool = False, timeout: float | None = None, **kwargs):
        if self.broken:
            raise self.broken
        key = f"driver:{fn}" if driver else fn
        if key in self.dead:
            raise self.dead[key]
        timeout = timeout or self.box.timeout
        if not self.alive:
            self._open(timeout)
        try:
            # The child stops itself after `timeout` (SIGALRM): cheap, the server lives on. Our own
            # deadline, a little later, is the backstop for code that blocks or ignores the alarm.
            self._send({"op": "call", "fn": fn, "args": list(args), "kwargs": kwargs, "driver": driver,
                        "timeout": timeout})
            reply = self._reply(timeout + BACKSTOP, alarm=timeout)
        except LearnerError as err:
            self.dead[key] = err
            raise
        if "error" in reply:
            err = LearnerError(reply["error"], str(reply.get("message", ""))[:4000])
            if err.kind in STICKY:
                self.dead[key] = err
                self.close()
            raise err
        return reply.get("ok")

    def close(self):
        if self.alive:
            self.alive = False
            try:
                wire.write_message(self.box._out, {"op": "close"})
                reply = wire.read_message(self.box._in, deadline=time.monotonic() + 10)
                if "event" not in reply:
                    raise wire.WireError("unexpected message")
            except (OSError, EOFError, TimeoutError, wire.WireError):
                self.box.kill()
