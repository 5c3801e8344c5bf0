"""Plain-data messages between the grader and its sandboxed workers.

A message is ``<Q header length><Q blob length><JSON header><raw bytes>``. Tensors travel as raw bytes
described in the header (dtype from an allowlist, shape, device); a tensor on PyTorch's ``meta`` device
(a shape and a dtype without values) travels as its header alone. Everything else must be JSON
(None, bool, int, float, str, lists, dicts with str keys). Nothing read here can execute code: no
pickle, and the reader checks every length and dtype before it builds a tensor.
"""
from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import select
import struct
import time

import numpy
import torch

MAX_HEADER = 4 << 20
MAX_BLOB = 256 << 20
_PREFIX = struct.Struct("<QQ")
# Before each message to a learner's process, a byte: a call of a driver (the suite's harness, whose
# gradient checks record graphs) or anything else (a call of the learner's function, close).
DRIVER, LEARNER = b"D", b"L"

DTYPES = {
    "float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
    "bfloat16": torch.bfloat16, "int64": torch.int64, "int32": torch.int32,
    "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool,
}
_NAMES = {v: k for k, v in DTYPES.items()}
# the dtypes numpy has, as numpy's
_NUMPY = {t: numpy.dtype(str(t).removeprefix("torch.")) for t in DTYPES.values() if t is not torch.bfloat16}


@dataclasses.dataclass(frozen=True)
class Limits:
    """Every limit on learner code, one value: the grader's command line builds it, the grading
    processes receive it (``--limits``), the sandbox sends it to each child."""
    call_s: float = 10.0  # wall clock of one call into learner code
    submission_s: float = 120.0  # wall clock of all the calls of one submission
    memory_mb: int = 1024  # address space of a learner process, above what torch itself maps: the
    # hidden suites' largest input is a few MB; a memory bomb costs the zero-filling of this much
    cpu_s: int = 120  # CPU time of a learner process
    nproc: int = 64  # processes of a learner (where ``processes`` lets it start any)
    processes: bool = False  # may learner code start processes or programs? (refused by a seccomp filter)
    ctypes: bool = False  # may learner code use ctypes? (refused by an audit hook: it reaches the memory
    # of its process, and with it whatever holds the checks there; the sandbox's tests allow it)
    file_mb: int = 16  # the largest file it may write
    files: int = 256  # open files (pipes and sockets hold kernel memory that the memory limit does not count)
    tmp_mb: int = 64  # its private /tmp (and /dev/shm) ...
    tmp_files: int = 2048  # ... and how many files they may hold

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Limits":
        return cls(**{k: type(getattr(cls, k))(v) for k, v in d.items() if k in cls.__dataclass_fields__})


class ErrorKind(str, enum.Enum):
    """What went wrong on the learner's side: the worker's ``{"error": kind}``, a ``LearnerError``'s kind."""
    NOT_IMPLEMENTED = "not_implemented"  # the stub's own NotImplementedError
    MISSING = "missing"  # no such folder, file or function
    IMPORT = "import"  # the module does not import, or cannot be read
    RAISED = "raised"  # the function raised on this input
    BAD_RETURN = "bad_return"  # it returned something that is not tensors or numbers
    SIDE_EFFECT = "side_effect"  # it changed one of its inputs in place
    FORBIDDEN = "forbidden"  # it used an API the exercise asks to write by hand
    TIMEOUT = "timeout"
    MEMORY = "memory"
    EXIT = "exit"  # sys.exit
    CRASH = "crash"  # the process died: a signal, os._exit, a broken channel
    INTERNAL = "internal"  # the worker itself failed: the child is not trusted to go on

    @property
    def final(self) -> bool:
        """No other input would change it: the test fails at once, without searching for a smaller
        input (a wrong result, an exception or a side effect depend on the input: they are shrunk)."""
        return self not in (ErrorKind.RAISED, ErrorKind.BAD_RETURN, ErrorKind.SIDE_EFFECT)

    @property
    def sticky(self) -> bool:
        """It ends the function for the rest of the submission: a function that hangs, runs out of
        memory, exits or kills its process is not run again, and every later call of it (by the
        suite, a driver or the learner's other functions) fails at once with the same error."""
        return self in (ErrorKind.TIMEOUT, ErrorKind.MEMORY, ErrorKind.EXIT, ErrorKind.CRASH, ErrorKind.INTERNAL)


class WireError(Exception):
    """A message that breaks the format: too large, truncated, or not plain data."""


class Generator:
    """Stands for a ``torch.Generator`` seeded with ``seed``; the worker builds the real one."""

    def __init__(self, seed: int, device: str = "cpu"):
        self.seed, self.device = int(seed), str(device)

    def __repr__(self):
        return f"Generator(seed={self.seed})"


# Tensors that carry no code of their own (a subclass's methods run whatever it defines).
PLAIN_TENSORS = (torch.Tensor, torch.nn.Parameter)


def encode(obj, subclass=None, views: bool = False) -> bytes:
    """Plain data to bytes. Only the types themselves are looked at, never a method that a subclass
    could override: encoding what learner code returned runs none of its code (a subclass of list,
    tuple, dict or a number is read as the base type; a tensor subclass is refused, unless
    ``subclass`` turns it into a plain tensor). ``views``: a tensor that is not contiguous (a
    transpose, a slice with a step, an expand) goes as the stretch of memory it spans and its strides,
    and arrives as such a view; otherwise every tensor arrives contiguous."""
    blobs: list[bytes] = []
    isfinite = math.isfinite

    def walk(x):
        kind = type(x)
        if kind is str or kind is int or kind is bool or x is None:  # most of a message: its keys, its flags
            return x
        if kind is list:
            return [walk(v) for v in x]
        if kind is float:
            return x if isfinite(x) else {"__float__": float.__repr__(x)}
        if subclass is not None and kind not in PLAIN_TENSORS and issubclass(kind, torch.Tensor):
            x = subclass(x)
            kind = type(x)
        if kind in PLAIN_TENSORS:
            t = x.detach() if x.requires_grad else x  # (detach costs more than the rest; only where needed)
            dtype = t.dtype
            name = _NAMES.get(dtype)
            if name is None:
                raise WireError(f"unsupported dtype {dtype}")
            if t.is_meta:
                return {"__tensor__": [name, list(t.shape), "meta", 0]}
            on_cpu = t.is_cpu  # (a property: ``t.device.type`` builds a device object first)
            header = [name, list(t.shape), "cpu" if on_cpu else str(t.device)]
            layout = []
            if views and not t.is_contiguous() and t.numel():  # the stretch of memory it spans, and its strides
                t = t.resolve_neg().resolve_conj()
                layout = [list(t.stride())]
                t = t.as_strided((1 + sum((n - 1) * st for n, st in zip(t.shape, t.stride())),), (1,), t.storage_offset())
            try:
                if on_cpu and dtype in _NUMPY and not t.is_neg():
                    data = t.numpy().tobytes()  # C order: the bytes of ``t.contiguous()``, in fewer steps
                else:
                    data = t.to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
            except Exception as e:  # noqa: BLE001
                raise WireError(f"cannot send a tensor on device {t.device} ({type(e).__name__})") from None
            blobs.append(data)
            return {"__tensor__": [*header, len(data), *layout]}
        if issubclass(kind, torch.Tensor):
            raise WireError(f"a tensor subclass ({kind.__name__}): return plain tensors")
        if kind is Generator:
            return {"__generator__": [x.seed, x.device]}
        if x is None or issubclass(kind, (bool, int, str)):
            return x  # json writes the base type's value
        if issubclass(kind, float):
            return x if math.isfinite(x) else {"__float__": float.__repr__(x)}
        if issubclass(kind, list):
            return [walk(v) for v in list.__iter__(x)]
        if issubclass(kind, tuple):
            return {"__tuple__": [walk(v) for v in tuple.__iter__(x)]}
        if issubclass(kind, dict):
            items = list(dict.items(x))
            if not all(k is None or issubclass(type(k), (str, int, float)) for k, _ in items):  # what decode accepts
                raise WireError("dict keys must be strings, numbers, booleans or None")
            return {"__dict__": [[walk(k), walk(v)] for k, v in items]}
        raise WireError(f"cannot send a {kind.__name__}")

    header = json.dumps(walk(obj)).encode()
    blob = b"".join(blobs)
    return _PREFIX.pack(len(header), len(blob)) + header + blob


def decode(header: bytes, blob: bytes, device_map=None, views: bool = False):
    """Rebuild a message. ``device_map(device_str) -> device`` places tensors (default: as sent);
    ``views``: tensors sent with their strides (``encode(..., views=True)``) are accepted, checked to
    stay inside their own bytes."""
    try:
        tree = json.loads(header)
    except (ValueError, RecursionError) as e:
        raise WireError(f"header is not JSON: {e}") from None
    offset = 0
    from_numpy, frombuffer = torch.from_numpy, numpy.frombuffer

    def walk(x):
        nonlocal offset
        if isinstance(x, list):
            return [walk(v) for v in x]
        if not isinstance(x, dict):
            if x is None or isinstance(x, (bool, int, float, str)):
                return x
            raise WireError("bad value")
        if len(x) != 1:
            raise WireError("bad object")
        (kind, val), = x.items()
        if kind == "__tensor__":
            if type(val) is not list or not 4 <= len(val) <= (5 if views else 4):
                raise WireError(f"bad tensor header {val!r}"[:200])
            name, shape, dev, nbytes = val[0], val[1], val[2], val[3]
            strides = val[4] if len(val) == 5 else None
            dtype = DTYPES.get(name) if type(name) is str else None
            if dtype is None or type(dev) is not str or type(shape) is not list or type(nbytes) is not int \
                    or any(type(n) is not int or n < 0 for n in shape) \
                    or strides is not None and (type(strides) is not list or len(strides) != len(shape) or 0 in shape
                                                or any(type(st) is not int or st < 0 for st in strides)):
                raise WireError(f"bad tensor header {val!r}"[:200])
            if dev == "meta":
                if nbytes != 0 or (device_map and str(device_map(dev)) != "meta"):
                    raise WireError("a meta tensor carries no bytes")
                try:
                    return torch.empty(shape, dtype=dtype, device="meta")
                except (RuntimeError, OverflowError, TypeError, ValueError):
                    raise WireError(f"bad tensor header {val!r}") from None
            numel = math.prod(shape) if strides is None else 1 + sum((n - 1) * st for n, st in zip(shape, strides))
            if nbytes != numel * dtype.itemsize or offset + nbytes > len(blob):
                raise WireError("tensor byte count does not match its shape")
            raw = bytearray(blob[offset:offset + nbytes])  # a copy of its own, writable
            offset += nbytes
            try:
                if not nbytes:
                    t = torch.empty(shape, dtype=dtype)
                elif dtype in _NUMPY:  # numpy's view of the bytes costs less than torch.frombuffer's
                    t = from_numpy(frombuffer(raw, _NUMPY[dtype]).reshape(shape if strides is None else numel))
                else:
                    t = torch.frombuffer(raw, dtype=dtype).reshape(shape if strides is None else [numel])
            except (RuntimeError, OverflowError, TypeError, ValueError):
                raise WireError(f"bad tensor header {val!r}") from None
            if device_map is not None:
                try:
                    where = device_map(dev)
                    t = t if where == "cpu" else t.to(where)
                except (RuntimeError, TypeError, ValueError) as e:  # a device this machine has not got
                    raise WireError(f"a tensor on a device that cannot be used here ({dev[:40]!r}: {type(e).__name__})") from None
            return t if strides is None else t.as_strided(shape, strides)  # inside its own bytes: checked above
        if kind == "__generator__":
            return Generator(*val)
        if kind == "__float__":
            if val not in ("nan", "inf", "-inf"):
                raise WireError("bad float")
            return float(val)
        if kind == "__tuple__":
            return tuple(walk(v) for v in val)
        if kind == "__dict__":
            out = {}
            for k, v in val:
                k = walk(k)
                if not isinstance(k, (str, int, float, bool, type(None))):
                    raise WireError("bad dict key")
                out[k] = walk(v)
            return out
        raise WireError(f"unknown tag {kind!r}")

    try:
        message = walk(tree)
    except RecursionError:
        raise WireError("message nested too deeply") from None
    except (TypeError, ValueError) as e:
        raise WireError(f"malformed message: {e}") from None
    if offset != len(blob):  # bytes no tensor claims: a message is exactly what its header says
        raise WireError("bytes left over after the message's tensors")
    return message


def _wait(fd: int, write: bool, deadline: float | None) -> None:
    """Until ``fd`` can be read (or written), by ``deadline`` (TimeoutError past it; None: no limit)."""
    left = None if deadline is None else deadline - time.monotonic()
    ready = select.select([] if write else [fd], [fd] if write else [], [], left) if left is None or left > 0 else None
    if not ready or not (ready[1] if write else ready[0]):
        raise TimeoutError("the other side did not write in time" if not write else "the other side did not read in time")


def read_exact(fd: int, n: int, deadline: float | None = None) -> bytes:
    """``n`` bytes from ``fd``, by ``deadline``: a non-blocking ``fd`` is read at once and waited on
    only when it has nothing yet (a reply is nearly always there whole), a blocking one waited on first."""
    chunks, got = [], 0
    wait_first = deadline is not None and os.get_blocking(fd)
    while got < n:
        if wait_first:
            _wait(fd, False, deadline)
        try:
            chunk = os.read(fd, min(n - got, 1 << 20))
        except BlockingIOError:  # a non-blocking channel with nothing yet
            _wait(fd, False, deadline)
            continue
        if not chunk:
            raise EOFError("channel closed")
        chunks.append(chunk)
        got += len(chunk)
        if got < n and deadline is not None and time.monotonic() > deadline:  # a trickle has a deadline too
            raise TimeoutError("the other side did not write in time")
    return b"".join(chunks)


def read_message(fd: int, device_map=None, deadline: float | None = None, views: bool = False):
    hlen, blen = _PREFIX.unpack(read_exact(fd, _PREFIX.size, deadline))
    if hlen > MAX_HEADER or blen > MAX_BLOB:
        raise WireError("message too large")
    body = read_exact(fd, hlen + blen, deadline)  # one read for the header and the tensors' bytes
    return decode(body[:hlen], memoryview(body)[hlen:], device_map, views)


def write_message(fd: int, obj, deadline: float | None = None, views: bool = False) -> None:
    write_all(fd, encode(obj, views=views), deadline)


def write_to_learner(fd: int, msg: dict, deadline: float | None = None) -> None:
    """A message to a learner's process, after the byte that says whose call it is (``DRIVER`` or
    ``LEARNER``); arguments keep their layout (``views``)."""
    write_all(fd, (DRIVER if msg.get("driver") else LEARNER) + encode(msg, views=True), deadline)


def write_all(fd: int, data: bytes, deadline: float | None = None) -> None:
    """All of ``data``; on a non-blocking ``fd``, by ``deadline`` (TimeoutError past it)."""
    data = memoryview(data)
    while data:
        try:
            n = os.write(fd, data)
        except BlockingIOError:  # the other side's buffer is full: wait until it reads, or the deadline
            _wait(fd, True, deadline)
            continue
        data = data[n:]
