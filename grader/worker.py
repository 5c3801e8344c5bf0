"""The untrusted side: runs inside the sandbox, never in the grading process.

The server imports torch once, then forks one child per (submission, topic). A child writes the
learner's files into a private folder, imports the topic module, and answers calls with plain data
(see ``wire``). The grading process sees only what the child sends back; it compares and scores.

Channels: the server's own channel (a Unix socket, the control channel) carries
``{"op": "open", "topic", "files", "driver", "forbidden", "limits"}`` from the grading process. For
each open the server makes a fresh socket pair, passes one end to the grading process (SCM_RIGHTS,
then ``{"child": serial}``) and gives the other to the child, which holds no other descriptor: the
child can only ever answer for itself. ``{"op": "call", "fn", "args", "kwargs", "driver"}`` and
``{"op": "close"}`` go to the child on its own channel. When a child has ended, for whatever reason,
and everything it left running is gone, the server sends ``{"event": "exit", "child": serial, ...}``
on the control channel.

Confinement of a child (``_Server.serve``): the server is not dumpable (its memory, descriptors and
environment are closed to processes of its uid) and is the subreaper of whatever a child leaves. As
root (``--uid-base``) each child runs under a uid of its own, and every process of that uid is killed
when the child ends. Under bubblewrap (``--ns``) each child gets an ipc namespace and a mount namespace
with private tmpfs on /tmp and /dev/shm, bounded in size and file count, gone with the child; where the grader is not root,
the child also gets user and pid namespaces of its own (the server's pid is out of its reach, and the
end of the namespace kills whatever it left running). Without bubblewrap (``--scratch=DIR``), a private
folder, removed after the run (as root, with whatever that uid left in /tmp, /var/tmp and /dev/shm).
Learner code always runs with no capabilities, no_new_privs, and its own channel as its only
descriptor besides /dev/null.
"""
from __future__ import annotations

import ctypes
import importlib
import os
import random
import resource
import shutil
import signal
import socket
import struct
import sys
import tempfile
import traceback
import types

import torch

from grader import wire

IN, OUT = 0, 1  # the child's own channel, set in _run_learner()


class Forbidden(Exception):
    """Raised when learner code calls an API that its exercise asks it to write by hand."""


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
        args = _materialize(msg.get("args", []))
        if msg.get("driver"):
            args = [module, *args]
        try:
            _seed()
            if msg.get("timeout"):  # SIGALRM's default action ends this child; the server lives on
                signal.setitimer(signal.ITIMER_REAL, float(msg["timeout"]))
            try:
                result = fn(*args, **_materialize(msg.get("kwargs", {})))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                _contain(me)
            if len(violations) > before:
                raise Forbidden(f"{violations[before]} is not allowed in this exercise: write it yourself")
            reply = wire.encode({"ok": result})
        except NotImplementedError as e:
            last = traceback.extract_tb(e.__traceback__)[-1]
            if last.filename.startswith(folder):  # raised by the stub itself, not by torch or a driver
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


# ---- the fork server and the confinement of each child ----------------------------------------

_LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER = 4, 38, 36
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWIPC = 0x00020000, 0x10000000, 0x20000000, 0x08000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 16384, 1 << 18
SCRATCH = {"tmp_mb": 64, "tmp_files": 2048}  # the private /tmp of one child
UIDS_PER_SLOT = 4096


def _check(ret: int, what: str):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _prctl(option: int, value: int):
    _check(_LIBC.prctl(option, ctypes.c_ulong(value), 0, 0, 0), f"prctl({option})")


def _mount(source, target, fstype, flags, data=None):
    enc = (lambda x: x.encode() if x is not None else None)
    _check(_LIBC.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {target}")


def _drop_capabilities():
    """No capabilities left in any set (the learner's user namespace gave it all of them there)."""
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = (ctypes.c_uint32 * 6)()
    _check(_LIBC.capset(header, data), "capset")


def _close_fds_but(keep: int):
    """Close every descriptor but ``keep``; 0, 1 and 2 go to /dev/null."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != keep:
            os.dup2(null, fd)
    os.close(null)
    try:
        top = os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        top = 1 << 16
    os.closerange(3, keep)
    os.closerange(max(keep + 1, 3), top)


def _become_learner(chan: int, uid: int | None):
    """The last step before learner code: only its own channel open, a uid of its own (as root),
    no capabilities, no way to gain privileges."""
    _close_fds_but(chan)
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)  # root -> not root: every capability goes
    else:
        _drop_capabilities()
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    os.environ["TMPDIR"] = tempfile.gettempdir()


def _private_tmp(limits: dict):
    """A tmpfs of bounded size and file count on /tmp (and on /dev/shm), seen by this mount namespace only."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    mb, files = limits.get("tmp_mb", SCRATCH["tmp_mb"]), limits.get("tmp_files", SCRATCH["tmp_files"])
    for target in ("/tmp", "/dev/shm"):
        if os.path.isdir(target):
            _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV,
                   f"size={int(mb)}m,nr_inodes={int(files)},mode=1777")
    tempfile.tempdir = "/tmp"


def _run_learner(req: dict, chan: int, uid: int | None):
    global IN, OUT
    code = 0
    IN = OUT = chan
    try:
        _become_learner(chan, uid)
        child(req)
    except BaseException:  # noqa: BLE001 - the grading side learns what broke
        code = 3
        try:
            _send({"error": "internal", "message": traceback.format_exc()[-2000:]})
        except BaseException:  # noqa: BLE001
            pass
    os._exit(code)


def _namespaced_child(req: dict, chan: int, status_w: int, uid: int | None):
    """In a fresh child of the server: new pid and mount namespaces (and a user namespace when not
    root), the private /tmp, then ``init`` of that pid namespace forks the learner's process and
    reports its wait status. When init ends, the kernel kills everything else in the namespace."""
    me_uid, me_gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWPID | (0 if uid is not None else CLONE_NEWUSER)
    _check(_LIBC.unshare(flags), "unshare")
    if uid is None:  # map our own uid and gid only: enough to own the files of the private /tmp
        for name, text in (("setgroups", "deny"), ("uid_map", f"{me_uid} {me_uid} 1"),
                           ("gid_map", f"{me_gid} {me_gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    _private_tmp(req.get("limits", {}))
    init = os.fork()
    if init == 0:
        try:
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)  # this namespace's only
        except OSError:
            pass
        learner = os.fork()
        if learner == 0:
            os.close(status_w)
            _run_learner(req, chan, uid)
        os.close(chan)
        status = 0
        while True:  # init reaps every orphan until the learner's own process ends
            try:
                pid, st = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            if pid == learner:
                status = st
                break
        os.write(status_w, struct.pack("<i", status))
        os._exit(0)
    os.close(chan)
    os.close(status_w)
    os.waitpid(init, 0)
    os._exit(0)


def _kill_all_of(uid: int):
    """As root: SIGKILL every process of ``uid`` we can see (setsid'd, double-forked, anywhere),
    until none is left; orphans come back to us (a subreaper) and are reaped here."""
    for _ in range(1000):
        live = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    if os.stat(f"/proc/{name}").st_uid != uid:
                        continue
                    with open(f"/proc/{name}/stat", "rb") as f:
                        if f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X"):
                            continue
                    os.kill(int(name), signal.SIGKILL)
                    live.append(name)
                except (OSError, IndexError):
                    pass
        _reap()
        if not live:
            return


def _reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _kill_descendants():
    """SIGKILL whatever is left among our children (orphans come back to us: we are a subreaper)."""
    for _ in range(1000):
        pids = []
        for task in os.listdir(f"/proc/{os.getpid()}/task"):
            try:
                with open(f"/proc/{os.getpid()}/task/{task}/children") as f:
                    pids += [int(p) for p in f.read().split()]
            except OSError:
                pass
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def _sweep_tmp(uid: int):
    """As root without namespaces: what the learner's uid left in the shared temporary folders."""
    for top in ("/tmp", "/var/tmp", "/dev/shm"):
        try:
            names = os.listdir(top)
        except OSError:
            continue
        for name in names:
            path = os.path.join(top, name)
            try:
                if os.lstat(path).st_uid != uid:
                    continue
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
            except OSError:
                pass


class _Server:
    def __init__(self, ctl: socket.socket, scratch: str | None, uid_base: int | None):
        self.ctl, self.scratch, self.uid_base = ctl, scratch, uid_base
        self.namespaces = scratch is None
        self.serial = 0

    def uid(self) -> int | None:
        return None if self.uid_base is None else self.uid_base + self.serial % UIDS_PER_SLOT

    def serve(self, req: dict):
        self.serial += 1
        uid = self.uid()
        mine, theirs = socket.socketpair()
        status_r, status_w = os.pipe()
        folder = None
        if not self.namespaces:
            folder = tempfile.mkdtemp(dir=self.scratch)
            if uid is not None:
                os.chown(folder, uid, uid)
        nested = self.namespaces and uid is None  # no uid of its own: a pid namespace shields us
        pid = os.fork()
        if pid == 0:
            try:
                mine.close()
                os.close(status_r)
                if nested:
                    _namespaced_child(req, theirs.fileno(), status_w, uid)
                os.close(status_w)
                if self.namespaces:  # System V IPC objects and the mounts of its own
                    _check(_LIBC.unshare(CLONE_NEWNS | CLONE_NEWIPC), "unshare")
                    _private_tmp(req.get("limits", {}))
                else:
                    tempfile.tempdir = folder
                _run_learner(req, theirs.fileno(), uid)
            finally:
                os._exit(70)
        theirs.close()
        os.close(status_w)
        socket.send_fds(self.ctl, [b"F"], [mine.fileno()])
        mine.close()
        wire.write_message(self.ctl.fileno(), {"child": self.serial})
        _, status = os.waitpid(pid, 0)
        if nested:  # init of the child's pid namespace reports; its end killed the rest
            raw = os.read(status_r, 4)
            status = struct.unpack("<i", raw)[0] if len(raw) == 4 else 70 << 8
        elif uid is not None:
            _kill_all_of(uid)
        else:
            _kill_descendants()
        os.close(status_r)
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
            if uid is not None:
                _sweep_tmp(uid)
        event = {"event": "exit", "child": self.serial}
        if os.WIFSIGNALED(status):
            event["signal"] = os.WTERMSIG(status)
        else:
            event["code"] = os.WEXITSTATUS(status)
        wire.write_message(self.ctl.fileno(), event)


def main():
    ctl = socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    _prctl(PR_SET_DUMPABLE, 0)  # no process of our uid may read or write our memory or descriptors
    uid_base = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--uid-base=")), None)
    scratch = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--scratch=")), None)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)  # whatever a child leaves running comes back to us
    torch.set_num_threads(1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    server = _Server(ctl, None if "--ns" in sys.argv else scratch, uid_base)
    wire.write_message(ctl.fileno(), {"ready": True, "pid": os.getpid()})
    while True:
        try:
            req = wire.read_message(ctl.fileno())
        except EOFError:
            return
        if isinstance(req, dict) and req.get("op") == "open":
            server.serve(req)


if __name__ == "__main__":
    main()
