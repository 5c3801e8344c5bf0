"""``grader.sandbox`` directly: timeouts, crashes, escaped grandchildren, memory and fork bombs, the
trust boundary between children (descriptors, memory, leftovers, scratch space), and the runtime half
of the forbidden-API guard. Run under bubblewrap when it works here and again without namespaces (the
``mode`` fixture); a test that kills a sandbox shows that the next ``open`` starts a fresh one."""
from __future__ import annotations

import ctypes
import dataclasses
import os
import time

import pytest
import torch

import grader.sandbox as sb
from grader.sandbox import LearnerError, Sandbox
from tests.grader import classroom as c

ROOT_ONLY = "children get a uid of their own only when the grader runs as root"

HOSTILE = '''
import ctypes
import os
import struct
import sys
import threading
import time

import torch


def ok(x):
    return x * 2


def memory_no_limit_counts(what):
    """Memory that the address-space limit does not count: a file in memory (``memfd_create``), or
    kernel buffers behind many open sockets; how far it got."""
    import socket
    try:
        if what == "memfd":
            fd = os.memfd_create("hoard")
            os.posix_fallocate(fd, 0, 1 << 30)
            return "allocated"
        if what in ("sysv_shm", "sysv_msg", "io_uring", "memfd_secret"):
            libc = ctypes.CDLL(None, use_errno=True)
            number = {"sysv_shm": (29, 194), "sysv_msg": (68, 186), "io_uring": (425, 425), "memfd_secret": (447, 447)}[what]
            nr = number[0] if os.uname().machine == "x86_64" else number[1]
            args = {"sysv_shm": (0, 1 << 30, 0o1600), "sysv_msg": (0, 0o1600, 0), "io_uring": (4096, 0, 0),
                    "memfd_secret": (0, 0, 0)}[what]
            io_uring_params = ctypes.create_string_buffer(120)
            ret = libc.syscall(nr, *(args if what != "io_uring" else (args[0], io_uring_params)))
            return "allocated" if ret >= 0 else f"refused: {ctypes.get_errno()}"
        pairs = [socket.socketpair() for _ in range(4096)]
        return f"opened {len(pairs)}"
    except OSError as e:
        return f"refused: {e.errno}"


def reach_past_the_child(what):
    """A system call whose effect outlives the child or reaches past it: "refused: <errno>", or what it gave."""
    libc = ctypes.CDLL(None, use_errno=True)
    x86 = os.uname().machine == "x86_64"
    if what == "add_key":  # a key in the kernel's store, readable by any later process of the machine
        ret = libc.syscall(248 if x86 else 217, b"user", b"dlkata-probe", b"secret", 6, -4)  # the user keyring
    elif what == "keyctl":  # KEYCTL_GET_KEYRING_ID of the user keyring
        ret = libc.syscall(250 if x86 else 219, 0, -4, 0)
    elif what == "unshare_user":  # a user namespace of its own, where it could mount a file system in memory
        ret = libc.syscall(272 if x86 else 97, 0x10000000)
    elif what == "ptrace_traceme":
        ret = libc.syscall(101 if x86 else 117, 0, 0, 0, 0)
    elif what in ("getrusage", "sysinfo"):  # the kernel's counters: page faults, free memory
        ret = libc.getrusage(0, ctypes.create_string_buffer(256)) if what == "getrusage" \
            else libc.sysinfo(ctypes.create_string_buffer(256))
    elif what in ("proc_self_stat", "proc_meminfo", "proc_self_task_stat", "sys_cpu"):
        path = {"proc_self_stat": "/proc/self/stat", "proc_meminfo": "/proc/meminfo",
                "proc_self_task_stat": "/proc/thread-self/stat",
                "sys_cpu": "/sys/devices/system/cpu/online"}[what]
        try:
            with open(path, "rb") as f:
                return f"gave {f.read()[:40]!r}"
        except OSError as e:
            return f"refused: {e.errno}"
    elif what in ("socket_inet", "socket_unix"):  # a connection's state (TIME_WAIT) outlives the child
        ret = libc.socket(2 if what == "socket_inet" else 1, 1, 0)  # AF_INET or AF_UNIX, SOCK_STREAM
    elif what == "perf_event_open":
        attr = ctypes.create_string_buffer(128)
        ret = libc.syscall(298 if x86 else 241, attr, 0, -1, -1, 0)
    elif what in ("flock", "fcntl_lock", "inotify", "f_notify", "read_nowait", "fadvise", "pageout", "cachestat",
                  "ioctl_extents"):
        fd = os.open(__file__, os.O_RDONLY)  # what another child learns of a file both see
        if what == "flock":
            ret = libc.flock(fd, 1 | 4)  # LOCK_SH | LOCK_NB
        elif what == "f_notify":  # dnotify: a signal when the folder's files are read
            ret = libc.fcntl(os.open(os.path.dirname(__file__), os.O_RDONLY), 1026, 0x80000001)
        elif what == "read_nowait":  # preadv2 with RWF_NOWAIT: whether a page is in memory
            ret = -1
            try:
                os.preadv(fd, [bytearray(16)], 0, os.RWF_NOWAIT)
                ret = 0
            except OSError as e:
                ctypes.set_errno(e.errno)
        elif what == "fadvise":  # POSIX_FADV_DONTNEED: the file's pages out of memory
            ret = -1
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                ret = 0
            except OSError as e:
                ctypes.set_errno(e.errno)
        elif what == "pageout":  # madvise(MADV_PAGEOUT) of a mapping of the file
            import mmap
            ret = -1
            try:
                mmap.mmap(fd, 0, prot=mmap.PROT_READ).madvise(21)
                ret = 0
            except OSError as e:
                ctypes.set_errno(e.errno)
        elif what == "cachestat":  # how many of a file's pages are in memory (Linux 6.5)
            ret = libc.syscall(451, fd, ctypes.create_string_buffer(16), ctypes.create_string_buffer(64), 0)
        elif what == "ioctl_extents":  # ext4's cache of a file's extents, filled by the first read of the file
            ret = libc.ioctl(fd, ctypes.c_ulong(0xC020662A), ctypes.create_string_buffer(32))  # EXT4_IOC_GET_ES_CACHE
            errno = ctypes.get_errno()
            if libc.ioctl(fd, ctypes.c_ulong(0x5401), ctypes.create_string_buffer(64)) >= 0 or ctypes.get_errno() != 25:
                return "TCGETS not answered as on a file (ENOTTY)"  # the allowed commands still run
            ctypes.set_errno(errno)
        elif what == "fcntl_lock":  # F_OFD_SETLK of a read lock: its range, read back by another process
            lock = ctypes.create_string_buffer(32)
            ret = libc.fcntl(fd, 37, lock)
        else:
            ret = libc.inotify_init1(0)
        errno = ctypes.get_errno()
        flags = libc.fcntl(fd, 1)  # F_GETFD: fcntl's other commands run
        os.close(fd)
        return f"refused: {errno}" if ret < 0 and flags >= 0 else f"gave {ret}, F_GETFD {flags}"
    else:
        raise ValueError(what)
    return f"refused: {ctypes.get_errno()}" if ret < 0 else f"gave {ret}"


def start_process(route):
    """Tries to start a process or a program by ``route``; "started", or "refused: <errno>"."""
    import subprocess
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        if route == "fork":
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
        elif route == "subprocess":
            subprocess.run(["/bin/true"], check=True)
        elif route == "posix_spawn":
            os.waitpid(os.posix_spawn("/bin/true", ["true"], {}), 0)
        elif route == "ctypes_execv":  # on success this process becomes /bin/true: the call never answers
            if libc.execv(b"/bin/true", (ctypes.c_char_p * 2)(b"true", None)) == -1:
                raise OSError(ctypes.get_errno(), "execv")
        elif route == "raw_fork":  # the system call itself (x86_64's fork, 57), past the C library
            pid = libc.syscall(57)
            if pid == 0:
                os._exit(0)
            if pid < 0:
                raise OSError(ctypes.get_errno(), "fork")
        elif route == "thread":
            done = []
            t = threading.Thread(target=done.append, args=(1,))
            t.start()
            t.join()
            assert done == [1]
    except OSError as e:
        return f"refused: {e.errno}"
    return "started"


_CALLBACKS = []


def leave_thread(how):
    if how == "threading":
        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
    elif how == "pthread":  # a thread of the C library's, which the interpreter does not count
        start = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)(lambda _: time.sleep(30))
        _CALLBACKS.append(start)
        ctypes.CDLL(None).pthread_create(ctypes.byref(ctypes.c_ulong()), None, start, None)
    else:  # an old alias of _thread.start_new_thread
        import _thread
        _thread.start_new(time.sleep, (30,))
    return 1


def scan_memory(digests):
    """The sha256 digests of every ``DLKATA-LEAK-<32 hex digits>`` in this process's memory that
    are among ``digests`` (the marker itself is never sent here: only its digest)."""
    import hashlib
    import re
    found = set()
    pattern = re.compile(rb"DLKATA-LEAK-([0-9a-f]{32})")
    with open("/proc/self/maps") as f:
        regions = [line.split() for line in f]
    for fields in regions:
        if not fields[1].startswith("r") or (len(fields) > 5 and fields[5].startswith("[v")):
            continue
        lo, hi = (int(a, 16) for a in fields[0].split("-"))
        for start in range(lo, hi, 1 << 22):
            try:
                chunk = ctypes.string_at(start, min(1 << 22, hi - start))
            except Exception:
                continue
            for m in pattern.finditer(chunk):
                d = hashlib.sha256(m.group(1)).hexdigest()
                if d in digests:
                    found.add(d)
    return sorted(found)


def spin():
    while True:
        pass


def hard_exit(code):
    os._exit(code)


def spin_through(x):
    """Calls the learner's own ``spin`` by its module name, as one function of a topic calls another."""
    spin()
    return x


def exit_through(x):
    sys.exit(3)


def exit_via(x):
    return exit_through(x)


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


def crumbs():
    hoard = []
    while True:
        hoard.append(str(len(hoard)) * 20)


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


FORGED = struct.pack("<QQ", 10, 0) + b'{"ok": 42}'


def fds():
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
    return out


def write_every_fd():
    """A forged answer into every descriptor it has, and a few it might guess."""
    for fd in range(0, 256):
        try:
            os.write(fd, FORGED)
        except OSError:
            pass
    return 1


def open_mems():
    """Every /proc/<pid>/mem it can open for writing (its parent's first), and every process it
    can signal or limit."""
    opened, signalled = [], []
    try:
        listed = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:  # no listing of /proc (Landlock)
        listed = []
    pids = [os.getppid()] + listed
    me = int(os.readlink("/proc/self"))  # its own pid as this /proc numbers it
    for pid in pids:
        if pid in (os.getpid(), me):
            continue
        try:
            with open(f"/proc/{pid}/mem", "r+b"):
                opened.append(pid)
        except OSError:
            pass
        try:
            os.kill(pid, 0)
            signalled.append(pid)
        except OSError:
            pass
    return [opened, signalled]


def linger():
    """Leaves a thread and a setsid'd grandchild that keep writing forged answers everywhere."""
    def forge():
        while True:
            for fd in range(3, 64):
                try:
                    os.write(fd, FORGED)
                except OSError:
                    pass
            time.sleep(0.02)
    threading.Thread(target=forge, daemon=True).start()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            forge()
        os._exit(0)
    return 1


PLACES = ["/", "/opt", "/dev", "/dev/shm", "/tmp", "/var/tmp", "/run/lock", os.path.expanduser("~")]


def leave_files(tag):
    """Its files wherever it can write (its folder, /tmp, /dev/shm, ...); returns its folder and those."""
    left = []
    for place in PLACES:
        try:
            with open(os.path.join(place, f"{tag}-secret"), "w") as f:
                f.write("secret")
            left.append(place)
        except OSError:
            pass
    return [os.getcwd(), left]


def leave_files_and_block(tag):
    """Its files wherever it can write, then a wait that ignores its alarm: the grading side stops the
    whole sandbox, so the server never sweeps after this child."""
    import signal
    leave_files(tag)
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    while True:
        time.sleep(1)


def look(paths):
    found = []
    for path in paths:
        try:
            found += [os.path.join(path, n) for n in os.listdir(path)]
        except OSError:
            pass
    return found


def fill_tmp(tag, n, big_files):
    made = 0
    try:
        for made in range(n):
            with open(f"/tmp/{tag}-{made}", "w") as f:
                f.write("x")
        made = n
    except OSError:
        pass
    big = 0
    try:
        for i in range(big_files):
            with open(f"/tmp/{tag}-big-{i}", "wb") as f:
                for _ in range(16):
                    f.write(b"x" * (1 << 20))
                    big += 1 << 20
    except OSError:
        pass
    return [made, big]


def stdout_flood():
    for _ in range(1000):
        print("x" * 10000)
        os.write(1, b"\\x00" * 10000)
        os.write(2, b"\\x00" * 10000)
    return 7


class Lazy(torch.Tensor):  # its code would run where nothing watches it: while the answer is sent
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func is torch.Tensor.detach:
            raise RuntimeError("the subclass ran while the answer was sent")
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **(kwargs or {}))


class Items(list):
    def __iter__(self):
        raise RuntimeError("the list ran while the answer was sent")


class Pairs(dict):
    def items(self):
        raise RuntimeError("the dict ran while the answer was sent")


class Number(float):
    def __repr__(self):
        raise RuntimeError("the number ran while the answer was sent")


def returns_a_tensor_subclass():
    return torch.ones(2).as_subclass(Lazy)


def returns_containers_of_its_own():
    return Items([1, Number(2.5), Number("inf"), Pairs(a=torch.ones(1)), (Number(1.0),)])


def _channel():
    """This process's channel to the grading side: its one socket."""
    import stat
    for fd in sorted(map(int, os.listdir("/proc/self/fd"))):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                return fd
        except OSError:  # the listing's own descriptor, closed by now
            pass


def _frame(header):
    """A message as the wire writes one: its JSON header, no tensor bytes."""
    import json
    text = json.dumps(header).encode()
    return struct.pack("<QQ", len(text), 0) + text


def answer_ahead_and_stop_reading(seconds):
    """Answers this call before it is made, ignores the call's alarm and reads nothing more: the next
    call's arguments fill the channel's buffer."""
    import signal
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    os.write(_channel(), _frame({"__dict__": [["ok", 1]]}))
    time.sleep(seconds)


def forged_error(fields):
    """Answers with an error of its own making (odd fields, odd types) and goes on."""
    os.write(_channel(), _frame({"__dict__": fields}))
    return 1


def forged_tensor(header, nbytes):
    """Answers with a tensor of its own making (a device that is not text, a layout) and goes on."""
    import json
    text = json.dumps({"__dict__": [["ok", {"__tensor__": header}]]}).encode()
    os.write(_channel(), struct.pack("<QQ", len(text), nbytes) + text + bytes(nbytes))
    return 5
'''

# Imported, it answers on its channel with an error reply of its own making (no message) before the
# worker answers for it.
FORGED_IMPORT = HOSTILE + '''
os.write(_channel(), _frame({"__dict__": [["error", "import"]]}))
'''


def _uids(box: Sandbox) -> range:
    return box.uids()


# "bwrap-shared-uid": as root, children confined the way they are for a grader that is not root
# (user and pid namespaces of their own instead of a uid of their own).
MODES = ["bwrap", "bwrap-shared-uid", "rlimits"]


@pytest.fixture(scope="module", params=MODES)
def box(request):
    if request.param.startswith("bwrap") and sb.isolation() != "bwrap":
        pytest.skip("isolation is not 'bwrap' here (bubblewrap missing or DLKATA_SANDBOX=rlimits)")
    if request.param == "bwrap-shared-uid" and os.geteuid() != 0:
        pytest.skip("not root: the 'bwrap' mode already confines children this way")
    saved = sb.isolation()
    sb._MODE = request.param.split("-")[0]
    sb.CHILD_UIDS = request.param != "bwrap-shared-uid"
    b = Sandbox(slot=3990 + os.getpid() % 9, timeout=5)
    b.limits = dataclasses.replace(b.limits, ctypes=True)  # the probes reach the layers behind with it
    yield b
    b.kill()
    sb._MODE, sb.CHILD_UIDS = saved, True


def _own_uids(box) -> bool:
    """Whether the box's children run under uids of their own (so that they can be counted)."""
    return os.geteuid() == 0 and sb.CHILD_UIDS


def _open(b: Sandbox, processes: bool = False, ctypes: bool = True, **kw):
    """The hostile module in a fresh child; ``processes=True`` lets it fork and exec (the seccomp
    filter off), to test what contains the processes it makes. ctypes is allowed (``Limits.ctypes``)
    unless ``ctypes=False``: the probes below use it to reach the layers behind."""
    limits = b.limits
    b.limits = dataclasses.replace(limits, processes=processes, ctypes=ctypes)
    try:
        return b.open("hostile", {"hostile.py": HOSTILE}, **kw)
    finally:
        b.limits = limits


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


@pytest.mark.parametrize("fn, caller, kind", [("spin", "spin_through", "timeout"), ("exit_through", "exit_via", "exit")])
def test_a_function_that_failed_for_good_is_not_run_again_by_anyone(box, fn, caller, kind):
    """Sticky errors (a hang, an exit, ...): later calls fail at once, direct ones with the same
    error, those from the learner's other functions or a driver saying which function failed."""
    learner = box.open("hostile", {"hostile.py": HOSTILE},
                       driver="def through(m, name, x):\n    return getattr(m, name)(x)\n")
    with pytest.raises(LearnerError) as first:
        learner.call(fn, *(() if fn == "spin" else (1,)), timeout=1.0)
    assert first.value.kind == kind
    start = time.monotonic()
    for call in (lambda: learner.call(fn, 1), lambda: learner.call(caller, 1, timeout=1.0),
                 lambda: learner.call("through", caller, 1, driver=True, timeout=1.0)):
        with pytest.raises(LearnerError) as again:
            call()
        assert again.value.kind == kind, again.value.message
    assert time.monotonic() - start < 0.5
    assert f"calls {fn}, which failed before: {first.value.message}" in again.value.message
    assert learner.call("ok", torch.ones(1)).tolist() == [2.0]  # the others go on
    learner.close()


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


def test_an_answer_is_sent_without_running_any_learner_code(box):
    """What a call returns is read by its types alone (after the call, where no watch runs): a
    tensor subclass is refused; lists, dicts and numbers of the learner's own classes are read as
    the base types, their methods never called."""
    learner = _open(box)
    with pytest.raises(LearnerError) as e:
        learner.call("returns_a_tensor_subclass")
    assert e.value.kind == "bad_return" and "tensor subclass (Lazy)" in e.value.message, e.value.message
    out = learner.call("returns_containers_of_its_own")
    assert out[:3] == [1, 2.5, float("inf")] and out[3]["a"].tolist() == [1.0] and out[4] == (1.0,), out
    learner.close()


def test_a_child_that_stops_reading_its_channel_costs_one_call_timeout(box):
    """A child that answers ahead and then reads no more (its alarm ignored) would hold a write of
    large arguments for ever: every write to a child has the call's deadline."""
    learner = _open(box)
    assert learner.call("answer_ahead_and_stop_reading", 60, timeout=1.0) == 1  # its own answer, taken as given
    start = time.monotonic()
    with pytest.raises(LearnerError) as e:
        learner.call("ok", torch.zeros(4 << 20), timeout=1.0)  # 16 MB: more than a socket's buffer
    assert e.value.kind == "timeout" and "stopped taking calls" in e.value.message, e.value.message
    assert time.monotonic() - start < 1.0 + sb.BACKSTOP + 2
    fresh = _open(box)
    assert fresh.call("ok", torch.ones(1)).tolist() == [2.0]
    fresh.close()


@pytest.mark.parametrize("fields", [[["error", "raised"]], [["error", "raised"], ["message", ["a", {"b": 1}]]],
                                    [["error", {"not": "a kind"}], ["message", "x"]], [["error", "raised"], ["ok", 1]]],
                         ids=["no message", "a message that is not text", "a kind that is not one", "both answers"])
def test_an_error_reply_of_the_learners_making_is_only_a_failed_call(box, fields):
    learner = _open(box)
    with pytest.raises(LearnerError) as e:
        learner.call("forged_error", fields)
    assert isinstance(e.value.message, str) and e.value.kind in ("raised", "crash"), (e.value.kind, e.value.message)
    learner.close()


@pytest.mark.parametrize("header, nbytes", [(["float32", [1], None, 4], 4), (["float32", [1], 7, 4], 4),
                                            (["float32", [1], "cuda:9", 4], 4), (["float32", [2, 2], "cpu", 16, [1, 2]], 16),
                                            ([1, [1], "cpu", 4], 4)],
                         ids=["device-none", "device-int", "device-absent", "a-layout", "dtype-not-text"])
def test_a_forged_tensor_reply_fails_that_call_only(box, header, nbytes):
    """Whatever the child writes is a failed call, and the next call is answered in step, not with
    the reply the forged one displaced."""
    learner = _open(box)
    with pytest.raises(LearnerError) as e:
        learner.call("forged_tensor", header, nbytes)
    assert e.value.kind == "crash", (e.value.kind, e.value.message)
    assert learner.call("ok", torch.ones(1)).tolist() == [2.0]
    learner.close()


def test_an_import_that_answers_for_the_worker_is_a_failed_import(box):
    with pytest.raises(LearnerError) as e:
        box.open("hostile", {"hostile.py": FORGED_IMPORT})
    assert e.value.kind == "import" and "hostile.py does not import" in e.value.message
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
    assert e.value.kind == "memory" and "ran out of memory" in e.value.message, (e.value.kind, e.value.message)
    learner.close()


@pytest.mark.parametrize("fn, mb", [("creep", 512), ("crumbs", 768), ("crumbs", 1024), ("crumbs", 1536)])
def test_memory_creeping_up_to_the_limit_is_stopped_with_a_clear_message(box, fn, mb):
    """Whatever the limit and however small the pieces, the answer is "ran out of memory" (what the
    failed call still holds is freed first), and the process serves on."""
    saved = box.limits
    box.limits = dataclasses.replace(saved, memory_mb=mb)
    try:
        learner = _open(box)
    finally:
        box.limits = saved
    start = time.monotonic()
    with pytest.raises(LearnerError) as e:
        learner.call(fn)
    assert time.monotonic() - start < 10
    assert e.value.kind == "memory" and f"the limit is {mb} MiB" in e.value.message, (e.value.kind, e.value.message)
    assert learner.call("ok", torch.ones(1)).tolist() == [2.0]
    learner.close()


@pytest.mark.parametrize("route", ["fork", "subprocess", "posix_spawn", "ctypes_execv", "raw_fork"])
def test_learner_code_starts_no_process_and_no_program(box, route):
    """A seccomp filter: no fork, no exec, by any route (a helper process would run outside the watch
    and outlive its call; a fresh interpreter would have no watch at all). Threads still start."""
    if route == "raw_fork" and os.uname().machine != "x86_64":
        pytest.skip("the raw system call's number is x86_64's")
    learner = _open(box)
    assert learner.call("start_process", route) == "refused: 1"  # EPERM
    assert learner.call("start_process", "thread") == "started"
    assert learner.call("ok", torch.ones(1)).tolist() == [2.0]
    learner.close()


@pytest.mark.parametrize("what, refused", [("memfd", "refused: 1"), ("sysv_shm", "refused: 1"),
                                           ("sysv_msg", "refused: 1"), ("io_uring", "refused: 1"),
                                           ("memfd_secret", "refused: 1"), ("sockets", "refused: 24")])
def test_no_memory_outside_the_limits_of_the_learners_process(box, what, refused):
    """A file in memory (refused by the seccomp filter: EPERM) and the buffers of thousands of open
    sockets (the open-files limit: EMFILE) would hold memory that no limit of the learner's process
    counts; the kernel's out-of-memory killer would then end another process, a classmate's."""
    learner = _open(box)
    assert learner.call("memory_no_limit_counts", what) == refused
    assert learner.call("ok", torch.ones(1)).tolist() == [2.0]
    learner.close()


@pytest.mark.parametrize("fn, args", [("segfault", ()), ("reach_past_the_child", ("add_key",)),
                                      ("leave_thread", ("pthread",))])
def test_ctypes_is_refused(box, fn, args):
    """ctypes reaches the process's memory, and through it whatever holds the checks there (the
    registrations that take autograd out of a server for hand-written gradients, the watch's frame
    locals): grading, an audit hook refuses every use of it, and the call earns nothing."""
    learner = _open(box, ctypes=False)
    with pytest.raises(LearnerError) as e:
        learner.call(fn, *args)
    assert e.value.kind == "forbidden" and "ctypes" in e.value.message, e.value.message
    assert learner.call("ok", torch.ones(1)).tolist() == [2.0]
    learner.close()


@pytest.mark.parametrize("what", ["add_key", "keyctl", "unshare_user", "ptrace_traceme", "perf_event_open",
                                  "flock", "fcntl_lock", "inotify", "f_notify", "read_nowait", "fadvise", "pageout",
                                  "cachestat", "ioctl_extents", "socket_inet", "socket_unix"])
def test_nothing_outlives_the_child_or_reaches_past_it(box, what):
    """The kernel's key store is one for the whole machine (a key one child writes, a classmate's child
    reads, in this run or a later one); a user namespace could mount a file system in memory; tracing
    and performance counters reach other processes; the locks and events of a file that two children
    both see pass data between them; the children of one server share its network namespace, where a
    connection's state outlives them: the seccomp filter refuses them (EPERM); fcntl's other commands run."""
    learner = _open(box)
    assert learner.call("reach_past_the_child", what) == "refused: 1"
    assert learner.call("ok", torch.ones(1)).tolist() == [2.0]
    learner.close()


def _has_landlock() -> bool:
    return ctypes.CDLL(None, use_errno=True).syscall(444, None, 0, 1) > 0  # LANDLOCK_CREATE_RULESET_VERSION


@pytest.mark.parametrize("what", ["getrusage", "sysinfo", "proc_self_stat", "proc_self_task_stat", "proc_meminfo",
                                  "sys_cpu"])
def test_no_kernel_counter_reaches_learner_code(box, what):
    """The kernel counts, for a process and for the machine, what another child's work leaves behind:
    a page fault that had to read the disk tells a page of a shared file that no child had read from
    one that the topic's other child had (a red-team pass carried autograd's backward to a hand-written
    gradient that way). ``getrusage`` and ``sysinfo`` are refused (EPERM), and no file under /proc or
    /sys opens (Landlock: EACCES), but the list of the process's threads that the worker reads."""
    if what not in ("getrusage", "sysinfo") and not _has_landlock():
        pytest.skip("this kernel has no Landlock: /proc and /sys stay readable")
    learner = _open(box)
    assert learner.call("reach_past_the_child", what).startswith("refused")  # (bubblewrap has no /sys at all)
    assert learner.call("ok", torch.ones(1)).tolist() == [2.0]
    learner.close()


@pytest.mark.parametrize("how", ["threading", "_thread.start_new", "pthread"])
@pytest.mark.parametrize("rules", [["aten.logsumexp"], []], ids=["watched", "no rules"])
def test_a_thread_left_running_fails_its_call_and_the_next_call_starts_afresh(box, how, rules):
    learner = _open(box, forbidden=rules)
    with pytest.raises(LearnerError) as e:
        learner.call("leave_thread", how)
        learner.call("ok", torch.ones(1))  # a thread that began to run only after its call: found at the next
    message = e.value.message
    assert e.value.kind == "forbidden", message
    assert "left a thread running" in message or "a thread your code started earlier is still running" in message
    assert learner.call("ok", torch.ones(1)).tolist() == [2.0]  # a fresh process, the module imported again
    assert learner.call("start_process", "thread") == "started"  # a thread joined before returning is fine
    learner.close()


def test_a_module_that_leaves_a_thread_running_at_import_does_not_import(box):
    source = "import threading, time\n\nthreading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
    with pytest.raises(LearnerError) as e:
        box.open("hostile", {"hostile.py": source + HOSTILE}, forbidden=["aten.logsumexp"])
    assert e.value.kind == "import" and "starts a thread when it is imported" in e.value.message, e.value.message


def test_no_child_inherits_an_earlier_childs_files(box):
    """A classmate's sources never pass through the fork server (whose memory every later child
    inherits): a child that scans its whole memory finds no trace of the files of the one before."""
    import hashlib
    import secrets
    marker = secrets.token_hex(16)
    first = box.open("hostile", {"hostile.py": HOSTILE + f"\n# DLKATA-LEAK-{marker}\n"})
    assert first.call("ok", torch.ones(1)).tolist() == [2.0]
    first.close()
    digest = hashlib.sha256(marker.encode()).hexdigest()
    second = _open(box)
    assert second.call("scan_memory", [digest], timeout=60) == []
    second.close()


def test_fork_bomb_is_contained(box):
    learner = _open(box, processes=True)
    start = time.monotonic()
    with pytest.raises(LearnerError) as e:
        learner.call("fork_bomb", timeout=2.0)
    assert e.value.kind in ("timeout", "crash")
    assert time.monotonic() - start < 8
    if _own_uids(box):  # every process the bomb made is gone; the fork server serves on
        assert c.wait_until_gone(set(_uids(box))) == []
    fresh = _open(box)
    assert fresh.call("ok", torch.ones(1)).tolist() == [2.0]
    fresh.close()


def test_a_setsid_grandchild_does_not_survive(box):
    if not _own_uids(box):
        pytest.skip(ROOT_ONLY)
    uids = set(_uids(box))
    learner = _open(box, processes=True)
    assert learner.call("escape") is True
    assert len(c.processes_of(uids)) >= 2  # the learner's process and the grandchild
    learner.close()  # the learner's process ends: whatever it left behind goes with it
    assert c.wait_until_gone(uids, 5) == []
    server = box.proc.pid
    again = _open(box, processes=True)  # the server still serves
    assert again.call("ok", torch.ones(1)).tolist() == [2.0]
    assert again.call("escape") is True
    assert box.proc.pid == server
    box.kill()  # and a kill of the sandbox takes the grandchild too
    assert c.wait_until_gone(uids, 5) == []


def test_a_child_holds_its_own_channel_only(box):
    learner = _open(box)
    fds = learner.call("fds")
    sockets = {fd: link for fd, link in fds.items() if link.startswith("socket:")}
    assert len(sockets) == 1, fds  # its own channel; nothing of the server's, nothing of the grader's
    assert all(link in ("/dev/null", f"/proc/{fd}/fd") or link.startswith(("socket:", "/proc/"))
               for fd, link in fds.items()), fds
    try:  # its forged answers land on its own channel: its own call may break, nobody else's
        learner.call("write_every_fd")
    except LearnerError as e:
        assert e.kind == "crash", e.message
    learner.close()
    # A classmate next, on the same server: it answers for itself alone.
    fresh = _open(box)
    for _ in range(5):
        assert fresh.call("ok", torch.arange(3)).tolist() == [0, 2, 4]
    fresh.close()


def test_no_child_can_open_another_process_memory_or_signal_it(box):
    learner = _open(box)
    opened, signalled = learner.call("open_mems")
    assert opened == []  # /proc/<ppid>/mem and /proc/<pid>/mem of every other process it can see
    if _own_uids(box):  # a uid of its own: no other process answers its signals
        assert signalled == [], signalled
    elif sb.isolation() == "bwrap":  # a pid namespace of its own: only its own init (which ignores them)
        assert set(signalled) <= {1}, signalled
    learner.close()
    again = _open(box)
    assert again.call("ok", torch.ones(1)).tolist() == [2.0]
    again.close()


def test_what_a_child_leaves_running_dies_with_its_run(box):
    learner = _open(box, processes=True)
    try:
        learner.call("linger")  # its own answer may already be garbled by its own thread
    except LearnerError as e:
        assert e.kind == "crash", e.message
    learner.close()
    for _ in range(3):  # classmates after it, on the same server, get their own answers only
        fresh = _open(box)
        time.sleep(0.2)  # time for anything left over to write
        for _ in range(5):
            assert fresh.call("ok", torch.arange(3)).tolist() == [0, 2, 4]
        fresh.close()
    if _own_uids(box):
        assert c.wait_until_gone(set(_uids(box)), 5) == []


def test_scratch_space_is_private_and_wiped(box):
    tag = f"dlkata-test-{os.getpid()}"
    first = _open(box)
    folder, left = first.call("leave_files", tag)
    first.close()
    if sb.isolation() == "bwrap":
        assert set(left) <= {"/tmp", "/dev/shm"}, left  # everything else is read-only
    second = _open(box)
    found = second.call("look", ["/", "/opt", "/dev", "/dev/shm", "/tmp", "/var/tmp", folder,
                                 os.path.dirname(folder)])
    assert not [f for f in found if tag in f], found
    assert not any(os.path.basename(folder) in f for f in found), found
    second.close()
    if os.geteuid() == 0 or sb.isolation() == "bwrap":  # nothing in the host's shared folders either
        for place in SHARED:
            assert not [n for n in os.listdir(place) if n.startswith(tag)], place


SHARED = [p for p in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock") if os.path.isdir(p)]


def test_a_sandbox_stopped_from_outside_leaves_nothing_either(box):
    tag = f"dlkata-stopped-{os.getpid()}"
    learner = _open(box)
    with pytest.raises(LearnerError) as e:
        learner.call("leave_files_and_block", tag, timeout=1.0)
    assert e.value.kind == "timeout"
    assert not box.alive()  # the backstop stopped the whole sandbox
    if os.geteuid() == 0 or sb.isolation() == "bwrap":
        for place in SHARED:
            assert not [n for n in os.listdir(place) if n.startswith(tag)], place


def test_filling_tmp_is_bounded_and_leaves_nothing(box):
    tag = f"dlkata-fill-{os.getpid()}"
    learner = _open(box)
    bwrap = sb.isolation() == "bwrap"  # without namespaces this is the host's /tmp: go easy on it
    made, big = learner.call("fill_tmp", tag, 20000 if bwrap else 300, 64 if bwrap else 1, timeout=30)
    if bwrap:
        assert made < 20000 and big <= 64 << 20  # the private tmpfs: bounded in files and bytes
    learner.close()
    left = [n for n in os.listdir("/tmp") if n.startswith(tag)]
    if os.geteuid() == 0 or sb.isolation() == "bwrap":
        assert left == []
    else:
        for n in left:
            os.unlink(os.path.join("/tmp", n))
        pytest.skip("without namespaces and without root, what learner code leaves in /tmp is not removed")
    again = _open(box)
    assert again.call("ok", torch.ones(1)).tolist() == [2.0]
    again.close()


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


# What a child says of itself: how often it was called since its import, its parent, its descriptors.
PROBE = '''
import os as _os

_CALLS = [0]


def calls():
    _CALLS[0] += 1
    return _CALLS[0]


def parent():
    return _os.getppid()


def sockets():
    links = []
    for fd in _os.listdir("/proc/self/fd"):
        try:
            links.append(_os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return sum(link.startswith("socket:") for link in links)
'''


def test_the_children_of_a_zygote_are_watched_and_confined_as_the_servers_own(box):
    """A class: a request the server has served before, once its heap is on huge pages
    (``worker.HUGE_PAGES_AFTER`` children), has its children forked by a zygote that made the watch's
    refusals once. Each of them, like each of the server's own, imports the module afresh, refuses
    the forbidden operators, runs what is written by hand and holds its own channel only."""
    from grader.worker import HUGE_PAGES_AFTER
    x, t = torch.randn(2, 3, dtype=torch.float64), torch.tensor([0, 2])
    expected, parents = torch.nn.functional.cross_entropy(x, t), set()
    for _ in range(HUGE_PAGES_AFTER + 3):  # the request comes again after the 20th child, whenever the server started
        learner = box.open("ce", {"ce.py": FORBIDDEN_SRC + PROBE}, driver=None,
                           forbidden=["aten._log_softmax", "aten.nll_loss_forward", "autograd:*"])
        assert learner.call("calls") == 1 and learner.call("calls") == 2
        with pytest.raises(LearnerError) as e:
            learner.call("via_alias", x, t)
        assert e.value.kind == "forbidden" and "asks you to write" in e.value.message
        assert torch.allclose(learner.call("by_hand", x, t), expected)
        assert learner.call("sockets") == 1  # its channel: not the zygote's, not the server's
        parents.add(learner.call("parent"))
        learner.close()
    if sb.isolation() == "bwrap" and _own_uids(box):  # the server's children, then the zygote's
        assert len(parents) == 2, parents


def test_forbidden_apis_stay_usable_in_the_next_open(box):
    learner = box.open("ce", {"ce.py": FORBIDDEN_SRC}, driver=None, forbidden=[])
    x, t = torch.randn(2, 3, dtype=torch.float64), torch.tensor([0, 2])
    assert torch.allclose(learner.call("via_alias", x, t), torch.nn.functional.cross_entropy(x, t))
    learner.close()


def test_the_private_tmp_comes_before_the_binds_so_a_venv_under_tmp_stays_visible(monkeypatch):
    if sb.bwrap() is None or sb.forced_unsandboxed():
        pytest.skip("isolation is not 'bwrap' here (bubblewrap missing or DLKATA_SANDBOX=rlimits)")
    monkeypatch.setattr(sb, "_MODE", "bwrap")
    cmd = sb._command(0)
    tmpfs = cmd.index("--tmpfs")
    assert cmd[tmpfs + 1] == "/tmp"
    assert tmpfs < cmd.index("--ro-bind"), "a bind under /tmp placed before --tmpfs /tmp would be hidden"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to take another uid for both sides")
def test_a_non_dumpable_grader_keeps_its_pipe_and_memory_from_its_own_uid():
    """As for a grader that is neither root nor sandboxed, where learner code runs under the grader's
    own uid: the grader's processes are not dumpable (``grader.cli._not_dumpable``, the same call in
    the harness), so a process of that uid can open neither their descriptors (the results pipe)
    through /proc/<pid>/fd nor their memory through /proc/<pid>/mem."""
    import ctypes

    from grader.cli import _not_dumpable
    uid = 65534
    ready_r, ready_w = os.pipe()
    grader = os.fork()
    if grader == 0:  # the grader's side: drops to the uid, not dumpable, holds a pipe
        try:
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # dumpable again, as a process of that uid starts
            _not_dumpable()
            results_r, results_w = os.pipe()
            os.write(ready_w, f"{results_w}".encode())
            time.sleep(30)
        finally:
            os._exit(0)
    try:
        results_w = int(os.read(ready_r, 32))
        report_r, report_w = os.pipe()
        attacker = os.fork()
        if attacker == 0:  # learner code under the same uid
            try:
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
                got = []
                for path, mode in ((f"/proc/{grader}/fd/{results_w}", os.O_WRONLY), (f"/proc/{grader}/mem", os.O_RDWR)):
                    try:
                        os.close(os.open(path, mode))
                        got.append(path)
                    except OSError:
                        pass
                os.write(report_w, repr(got).encode())
            finally:
                os._exit(0)
        os.waitpid(attacker, 0)
        assert os.read(report_r, 4096) == b"[]"
    finally:
        os.kill(grader, 9)
        os.waitpid(grader, 0)


def test_a_sandbox_stopped_by_one_submission_is_ready_again_before_the_next_opens(box):
    """The backstop stops the whole sandbox (a call that ignored its alarm): ``ready()`` starts it
    again before the next topic opens, so the restart is on no submission's clock."""
    box.kill()
    assert not box.alive()
    box.ready()
    assert box.alive()
    fresh = _open(box)
    assert fresh.call("ok", torch.ones(1)).tolist() == [2.0]
    fresh.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to become another user in a forked child")
def test_a_grader_that_is_not_root_maps_its_childrens_user_namespace():
    """Not root, each child makes a user namespace of its own and maps its uid there. The server is not
    dumpable, and a process that is not dumpable does not own its /proc/self files: a grader that
    was not root failed every import ("broke its channel") until the child made itself dumpable for
    the three writes. Root owns them anyway, so only a process that gave up root shows it."""
    from grader import worker
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            worker._prctl(worker.PR_SET_DUMPABLE, 0)
            worker._check(worker._LIBC.unshare(worker.CLONE_NEWUSER), "unshare")
            worker._map_own_ids(65534, 65534)
            with open("/proc/self/uid_map") as f:
                code = 0 if f.read().split() == ["65534", "65534", "1"] else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
