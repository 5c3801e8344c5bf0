"""The untrusted side: runs inside the sandbox, never in the grading process.

The server imports torch once, then forks one child per (submission, topic). A child writes the
learner's files into a private folder, imports the topic module, and answers calls with plain data
(see ``wire``). The grading process sees only what the child sends back; it compares and scores.

Channels: the server's own channel (a Unix socket, the control channel) carries
``{"op": "open", "topic", "driver", "forbidden", "limits"}`` from the grading process. For
each open the server makes a fresh socket pair, passes one end to the grading process (SCM_RIGHTS,
then ``{"child": serial}``) and gives the other to the child, which holds no other descriptor: the
child can only ever answer for itself. The learner's files (``{"files"}``), then ``{"op": "call",
"fn", "args", "kwargs", "driver", "values"}`` (``values``: the device pass) and ``{"op": "close"}``
go to the child on its own channel: no learner's file ever passes through the server, whose memory
every later child inherits. When a child has ended, for whatever reason,
and everything it left running is gone, the server sends ``{"event": "exit", "child": serial, ...}``
on the control channel.

Confinement of a child (``_Server.serve``): the server is not dumpable (its memory, descriptors and
environment are closed to processes of its uid) and is the subreaper of whatever a child leaves. As
root (``--uid-base``) each child runs under a uid of its own, and every process of that uid is killed
when the child ends. Under bubblewrap (``--ns``) each child gets an ipc namespace and a mount namespace
with private tmpfs on /tmp and /dev/shm, bounded in size and file count, gone with the child; where the grader is not root,
the child also gets user and pid namespaces of its own (the server's pid is out of its reach, and the
end of the namespace kills whatever it left running). Without bubblewrap (``--scratch=DIR``), a private
folder, removed after the run (as root, with whatever that uid left in ``SHARED_TMP``).
Learner code always runs with no capabilities, no_new_privs, and its own channel as its only
descriptor besides /dev/null.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import importlib
import inspect
import json
import linecache
import os
import random
import re
import resource
import shutil
import signal
import _signal
import socket
import struct
import sys
import tempfile
import threading
import time
import traceback
import types
import warnings
import typing

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from grader import wire
from grader.wire import ErrorKind

IN, OUT = 0, 1  # the child's own channel, set in _run_learner()


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
        # (``detach`` only where there is something to detach from: it costs more than the copy)
        self.tensor, self.grad = t, (t.grad, t.requires_grad)
        self.values = t.detach().clone() if t.requires_grad else t.clone()
        self.layout = (tuple(t.shape), t.stride(), t.storage_offset(), t.dtype, t.device)

    def changed(self) -> str | None:
        t = self.tensor
        if t.grad is not self.grad[0] or t.requires_grad != self.grad[1]:
            return "its .grad or requires_grad was set"
        if (tuple(t.shape), t.stride(), t.storage_offset(), t.dtype, t.device) != self.layout:
            return f"its shape went from {self.layout[0]} to {tuple(t.shape)}" if tuple(t.shape) != self.layout[0] \
                else "its strides, dtype or storage changed"
        if t.device.type == "meta":  # a shape and a dtype, no values to compare
            return None
        a, b = (t.detach() if t.requires_grad else t), self.values
        same = _EQUAL(a, b) or bool((_EQ(a, b) | (_ISNAN(a) & _ISNAN(b))).all())
        return None if same else "its values changed"


@functools.lru_cache(maxsize=256)
def _signature(fn) -> inspect.Signature:
    return inspect.signature(fn)


def _inputs(fn, args, kwargs) -> list[tuple[str, object]]:
    """``(name, kept)`` for every tensor and plain container among the arguments of a call, the
    names from ``fn``'s signature (``h0``, ``params[1]``, ``state['h']``)."""
    code = fn.__code__ if type(fn) is types.FunctionType else None
    if code is not None and not kwargs and not code.co_flags & 0x04 and len(args) <= code.co_argcount:
        named = list(zip(code.co_varnames, args))  # positional arguments only: their names, as bind gives them
    else:
        try:
            named = list(_signature(fn).bind(*args, **kwargs).arguments.items())
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


def _memory(t: torch.Tensor):
    """The bytes a plain tensor's elements occupy: ``(device, start, end)``; None where it has none to
    share (no element, the meta device)."""
    if t.device.type == "meta" or t.numel() == 0:
        return None
    extent = sum((n - 1) * abs(s) for n, s in zip(t.shape, t.stride())) + 1
    start = t.data_ptr()
    return t.device, start, start + extent * t.element_size()


def _shared_memory(returned, kept) -> str | None:
    """Gradients are tensors of their own: which of the returned tensors share memory with another,
    or with an argument (``db_ih`` and ``db_hh`` one tensor, ``dbias`` the caller's ``d_out`` itself);
    None when none does. Plain tensors only (the device pass' stand-ins hold no memory of theirs)."""
    found: list[tuple[str, tuple]] = []

    def walk(name, x, depth=0):
        kind = type(x)
        if kind in wire.PLAIN_TENSORS:
            span = _memory(x)
            if span is not None:
                found.append((name, span))
        elif depth < 3 and issubclass(kind, (list, tuple)):
            for k, v in enumerate(list.__iter__(x) if issubclass(kind, list) else tuple.__iter__(x)):
                walk(f"{name}[{k}]", v, depth + 1)
        elif depth < 3 and issubclass(kind, dict):
            for k, v in dict.items(x):
                walk(f"{name}[{k!r}]", v, depth + 1)

    walk("result", returned)
    inputs = [(name, k.tensor) for name, k in kept if isinstance(k, _Kept) and type(k.tensor) in wire.PLAIN_TENSORS]
    for i, (a, (dev_a, lo_a, hi_a)) in enumerate(found):
        for b, (dev_b, lo_b, hi_b) in found[i + 1:]:
            if dev_a == dev_b and lo_a < hi_b and lo_b < hi_a:
                return f"{a} and {b} in the same memory"
        for name, t in inputs:
            span = _memory(t)
            if span is not None and span[0] == dev_a and lo_a < span[2] and span[1] < hi_a:
                return f"{a} in the memory of its argument {name}"
    return None


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


# PyTorch's global settings a call must leave as it found them: (name, read, write), taken before
# any learner code runs
_SETTINGS = [("PyTorch's default dtype", torch.get_default_dtype, torch.set_default_dtype),
             ("PyTorch's default device", torch.get_default_device,
              lambda d, _set=torch.set_default_device: _set(None if d == torch.device("cpu") else d)),
             ("PyTorch's gradient mode (torch.set_grad_enabled)", torch.is_grad_enabled, torch.set_grad_enabled),
             ("PyTorch's anomaly detection", torch.is_anomaly_enabled, torch.set_anomaly_enabled),
             ("Python's recursion limit (sys.setrecursionlimit)", sys.getrecursionlimit, sys.setrecursionlimit)]


def _settings() -> list:
    return [read() for _, read, _ in _SETTINGS]


def _settings_moved(before: list) -> str | None:
    """The first global setting a call changed, put back as it was (so that later calls do not pay
    for it): ``default dtype (torch.float32 -> torch.float64)``; None when none changed."""
    for (name, read, write), was in zip(_SETTINGS, before):
        now = read()
        if now != was:
            write(was)
            return f"{name} ({was} -> {now})"
    return None


def _learner_trace(exc: BaseException, folder: str) -> str:
    """The traceback lines that point into the learner's own files, then the error itself."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(folder)]
    lines = [f"  {os.path.basename(f.filename)}, line {f.lineno}, in {f.name}: {f.line}" for f in frames[-3:]]
    # the exception's own text, not its class's __str__ (learner code, and it would run after the watch)
    text = exc.msg if isinstance(exc, SyntaxError) and isinstance(exc.msg, str) else BaseException.__str__(exc)
    last = f"{type.__dict__['__name__'].__get__(type(exc))}: {text}".removesuffix(": ")
    if isinstance(exc, SyntaxError):
        last = f"{last} ({os.path.basename(exc.filename or '?')}, line {exc.lineno}: {(exc.text or '').strip()})"
    # the learner's files live in a folder of a random name: a message must read the same every run
    return "\n".join(lines + [last]).replace(folder + os.sep, "").replace(folder, ".")[-2000:]


# ---- The run-time half of the forbidden-API guard (the static half is ``guard.py``) ----
#
# ``Watch`` sees what actually runs while learner code runs, whatever name reached it. Every kernel
# of a forbidden operator refuses (F.cross_entropy, torch._C._nn.cross_entropy_loss and
# torch.ops.aten._log_softmax all execute aten._log_softmax), on every dispatch key it has one for,
# composites that decompose into allowed operators before dispatch (torch._VF.rnn_tanh runs as addmm
# and tanh) included. Rules (the
# request's "forbidden"): "aten.<op>" ("aten.*": any operator), "python:<torch module>" (its Python
# functions refuse to run) and "autograd:<function>" ("autograd:*": all): such a function runs under
# torch.no_grad(), and an operator run with gradient recording back on, inside a backward pass
# (.backward(), torch.autograd.grad, the engine called directly, torch.func) or on forward-mode
# dual tensors is refused; a TorchFunctionMode names .backward() and autograd.grad there. The ways
# around the watch (popping its mode, excluding the Python dispatch key, calling kernels below it)
# refuse while it is on; threads started by learner code run under it too.

class Forbidden(Exception):
    """Raised when learner code runs an operator or API that its exercise asks it to write by hand."""


# Torch functions that only make sense with autograd (forward-mode dual tensors included), refused by
# name in a hand-written gradient, where the operators alone would not show them all (under
# torch.func's transforms, for one).
_AUTOGRAD = {"backward", "grad", "requires_grad_", "_make_dual", "make_dual"}


_REGISTERED = re.compile(r"^(\w+)(?:\[alias\])?(?: \(inactive\))?: registered at", re.M)


def _kernels(operators: frozenset) -> tuple:
    """``(namespace, operator.overload, dispatch key)`` of every kernel registered for every overload
    of ``operators`` (``aten::softmax``), as the dispatcher lists them: backends (CPU, CUDA, meta,
    sparse, MKLDNN ...), autograd, batching, autocast, tracing, and the composites that decompose into
    other operators (``rnn_tanh`` runs as ``addmm`` and ``tanh``)."""
    found = set()
    for full in torch._C._dispatch_get_all_op_names():
        if full.split(".")[0] not in operators:
            continue
        namespace, name = full.split("::", 1)
        found |= {(namespace, name, key) for key in _REGISTERED.findall(torch._C._dispatch_dump(full))
                  if key != "debug"}  # where the schema was registered, not a kernel
    return tuple(sorted(found))


def _register(kernels, kernel_for):
    """``kernel_for(namespace, name)`` as the kernel of each ``(namespace, operator.overload, dispatch
    key)`` of ``kernels``, through the dispatcher's own handle (``torch.library``'s objects list a
    finalizer that would undo it). No Python object holds a registration (dropping the last one would
    undo it): it lives as long as this process."""
    libraries: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "overriding a previously registered kernel": that is the point
        for namespace, name, key in kernels:
            if namespace not in libraries:
                libraries[namespace] = torch._C._dispatch_library("IMPL", namespace, "", __file__, 0)
            libraries[namespace].impl(name, key, kernel_for(namespace, name), False)
    for library in libraries.values():
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(library))


def _refuse_kernels(kernels, watch: "Watch"):
    """Replace every kernel of the forbidden operators (``_kernels``) by one that refuses: whatever
    reaches the operator (``torch._VF``, ``torch.ops``, ``nn.RNN``, a redispatch, a kernel called by
    its key, another thread, a dispatch mode of the learner's) meets it, and allowed operators run at
    full speed, with nothing in their way. Registered for this process's lifetime (``_register``),
    which only ever runs this learner's code for this topic (and drivers that do not use them)."""
    def refusing(namespace, name):
        def refused(*args, _name=f"{namespace}.{name.split('.')[0]}", _error=Forbidden, **kwargs):
            what = f"uses {_name}, which this exercise asks you to write by hand"
            watch.refuse(what)
            raise _error(what)  # whatever became of the watch
        return refused
    _register(kernels, refusing)


AUTOGRAD = True  # False in a server started ``--without-autograd``: its children cannot record a graph


def _autograd_off():
    """Autograd switched off for this process's lifetime, in PyTorch's dispatcher: every operator's
    autograd kernels (the ``Autograd`` key, which covers every device, and the keys of their own that
    some kernels have, nested tensors') fall through to the operator itself, so no operator records a
    graph, whatever reaches it (``.backward()``, ``torch.autograd.grad``, ``torch.func``, forward-mode
    dual tensors, a thread, code that took over the worker's loop): there is no graph to
    differentiate. TorchScript and the symbolic differentiation that PyTorch loads go too. A server
    that grades hand-written gradients does this once, before its first child; the registrations are
    the dispatcher's own, held by no Python object (as ``_refuse_kernels``' are), and only code that
    writes its process's memory could undo them."""
    global AUTOGRAD
    kernels = []
    for full in torch._C._dispatch_get_all_op_names():
        namespace, name = full.split("::", 1)
        # the alias, and every key of its own that a kernel was registered for (AutogradNestedTensor)
        keys = {"Autograd"} | {k for k in _REGISTERED.findall(torch._C._dispatch_dump(full)) if k.startswith("Autograd")}
        kernels += [(namespace, name, key) for key in sorted(keys)]
    _register(kernels, lambda namespace, name: torch.library.fallthrough_kernel)
    _autograd_calls_named()
    _no_torchscript()
    _no_symbolic_differentiation()
    AUTOGRAD = False


def _autograd_calls_named():
    """Where autograd is off, a hand-written gradient needs no function mode to be kept from it (a
    mode costs about as much as the gradient's own operators: 270 against 124 us a ``rnn_backward``):
    its calls of autograd's entry points (and ``requires_grad_()``) are only named in the refusal, as
    the mode names them where autograd is on. Whatever other route reaches autograd finds no graph."""
    def named(original):
        @functools.wraps(original)
        def refusing(*args, **kwargs):
            watch = _WATCHING[0]
            if watch is not None and watch.strict:
                watch.function(original, args, kwargs)  # the function mode's own judgement, by name
            return original(*args, **kwargs)
        return refusing
    import torch.autograd.forward_ad as forward_ad
    for owner, name in ((torch.Tensor, "requires_grad_"), (torch.Tensor, "backward"), (torch.autograd, "backward"),
                        (torch.autograd, "grad"), (forward_ad, "make_dual")):
        setattr(owner, name, named(getattr(owner, name)))


_WATCHING: list = [None]  # this process's watch (a child has one)


_HIDDEN: list[str] = []  # the folders of the libraries that differentiate (a server without autograd)


_DIFFERENTIATING = frozenset({"diff", "diffs", "fdiff", "derivative", "derivatives", "differentiate",
                              "differentiation", "jacobian", "hessian", "gradient", "taylor"})


def _no_symbolic_differentiation():
    """The symbolic and numerical differentiation of the libraries that PyTorch loads (sympy, and
    mpmath under it): every function and method of theirs named after differentiating (``diff``,
    ``Derivative.__new__``, ``_eval_derivative``, ``fdiff``, mpmath's ``diff``) refuses, its code
    replaced here once, for every child of a server for hand-written gradients; and their folders
    are hidden from those children (an empty file system mounted on each), so that no import loads
    them afresh. PyTorch's own finite differences (``torch.autograd.gradcheck``) refuse too."""
    def refuse(what, _error=Forbidden):
        raise _error(f"uses {what}, which differentiates for you: this exercise asks you to write the gradient by hand")
    theirs = ("sympy", "mpmath")
    values = [v for name, module in list(sys.modules.items())
              if name.split(".")[0] in theirs and isinstance(module, types.ModuleType) for v in _contents(module)]
    chosen = [f for f in values if isinstance(f, types.FunctionType) and (f.__module__ or "").split(".")[0] in theirs
              and _DIFFERENTIATING & {w.lower() for w in _WORD.findall(f.__qualname__)}]
    # ... and PyTorch's own numerical differentiation: gradcheck's finite differences (a Jacobian
    # column by column, ``_get_numerical_jacobian``), every function of its module
    numerical = sys.modules["torch.autograd.gradcheck"]  # the module (torch.autograd.gradcheck is its function)
    chosen += [f for f in _contents(numerical) if isinstance(f, types.FunctionType) and f.__module__ == numerical.__name__]
    for fn, code in _plan(chosen):
        fn.__globals__["__dlkata_refuse__"] = refuse
        fn.__code__ = code
    # Their files go from the children's view too (``_private_tmp``): a fresh import, in this interpreter
    # or in a sub-interpreter, would load code that nothing replaced.
    _HIDDEN.extend(_copies_of(theirs))
    sys.addaudithook(_no_fresh_import_of(theirs, refuse))


def _no_fresh_import_of(packages: tuple, refuse):
    """An audit hook (for the process's lifetime): the module code of ``packages`` run afresh, from
    whatever copy of their files (one that ``_copies_of`` did not find: vendored inside another
    package, say), is refused; the copy this process imported ran before the hook."""
    names = frozenset(packages)

    def hook(event, args, _code=types.CodeType, _sep=os.sep):
        if event == "exec" and isinstance(args[0], _code):
            found = names.intersection(args[0].co_filename.split(_sep))
            if found:
                refuse(f"{min(found)} imported afresh from its files")
    return hook


def _copies_of(packages: tuple) -> list[str]:
    """Every folder of ``packages`` that a child could import from: the one this interpreter loads,
    and any other copy in the library folders of the prefixes (the virtual environment's, the base
    interpreter's) and of the system's Pythons (``/usr/lib/python3/dist-packages``), on ``sys.path``
    or not (learner code can add a folder to it)."""
    import glob
    import importlib.util
    roots = {os.path.dirname(d) for name in packages if (spec := importlib.util.find_spec(name)) is not None
             for d in spec.submodule_search_locations or []}
    roots |= {d for d in sys.path if d and os.path.isdir(d)}
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, "/usr", "/usr/local"}:
        roots |= set(glob.glob(os.path.join(prefix, "lib*", "python3*", "*-packages")))
        roots |= set(glob.glob(os.path.join(prefix, "lib*", "python3", "dist-packages")))
    found = {os.path.realpath(os.path.join(root, name)) for root in roots for name in packages
             if os.path.isdir(os.path.join(root, name))}
    return sorted(found)


_SCRIPTING = re.compile(r"^parse_ir$|^_jit_interpret_graph$|autodiff|^_jit_trace_|^_jit_script|^_jit_run_")


def _no_torchscript():
    """TorchScript taken out of this process: it differentiates graphs without autograd (its symbolic
    differentiation, ``_jit_differentiate``; the graphs it compiles record nodes of their own), and a
    guard that refuses it while learner code runs would still hold it (a closure's cell). Deleted
    here, with every reference the modules loaded so far hold, nothing is left to reach; an import of
    TorchScript later fails. Done by a server whose children run hand-written gradients only."""
    gone = []
    for name in [n for n in dir(torch._C) if _SCRIPTING.search(n) or _TORCHSCRIPT.search(n)]:
        gone.append(getattr(torch._C, name))
        delattr(torch._C, name)
    for owner, names in _SCRIPT_METHODS:
        for name in names:
            if name in vars(owner):
                gone.append(vars(owner)[name])
                delattr(owner, name)
    ids = {id(f) for f in gone}
    for module in list(sys.modules.values()):
        space = getattr(module, "__dict__", None)
        if isinstance(space, dict):
            for key in [k for k, v in space.items() if id(v) in ids]:
                del space[key]


@functools.lru_cache(maxsize=None)
def _overloads(names: tuple) -> frozenset:
    """Every overload of the aten operators ``names`` (resolving them is slow the first time)."""
    found = set()
    for name in names:
        packet = getattr(torch.ops.aten, name, None)
        for o in (packet.overloads() if packet is not None else []):
            found.add(getattr(packet, o))
    return frozenset(found)


def _named_operators(words: tuple) -> set:
    """The operators of every namespace whose name holds a forbidden computation's, as the dispatcher
    lists them: ``static_runtime::layer_norm``, ``quantized::softmax``, ``aten::_thnn_fused_gru_cell``."""
    return {name.split(".")[0] for name in torch._C._dispatch_get_all_op_names()
            if _holds(_words(name.split("::", 1)[1].split(".")[0]), words)}


class Watch:
    """Refuses forbidden operators and APIs in learner code: the kernels of forbidden operators and
    PyTorch's Python versions of them refuse for this process's lifetime; ``with watch.call(fn):
    fn(...)`` adds what depends on the function (autograd in a hand-written gradient, any operator
    for a plain-Python topic) and on the moment (threads, the ways around a dispatch mode). The
    first refusal is kept in ``refused`` (the learner's code cannot catch it away)."""

    def __init__(self, rules, folder: str = ""):
        plan = _refusals(tuple(rules))
        words = _words_of(tuple(rules))
        self.everything, self.names, self.overloads = plan.everything, set(plan.names), set(plan.overloads)
        self.operators, self.words = plan.operators, words
        self.hand_all, self.hand = plan.hand_all, set(plan.hand)
        _refuse_kernels(plan.kernels, self)
        _refuse(plan.functions, self)
        if words:  # PyTorch's own Python code named after a forbidden computation, loaded now or later
            _refuse(_named(words, len(sys.modules)), self)
            sys.meta_path.insert(0, _RefusedOnImport(words, self))
            sys.addaudithook(_runs_of_torch_files(words, self))
        self.folder = folder
        self.watching, self.leaving = 0, False
        if self.everything or self.operators:
            _lock(self)
        self.allowed_ops: set = set()
        self.allowed_calls: set = set()
        self.refused: str | None = None
        self.strict = False  # inside a function whose gradient is written by hand
        self.active = bool(self.everything or self.operators)
        self.threads: set = set()  # the learner's threads still running (``_threads_watched``)
        self.baseline = _thread_count()  # Python threads running before any learner code: counted by
        # the interpreter, so that a thread started by any route (an alias, a C extension) counts
        self.tasks: int | None = None  # the kernel's count of this process's threads before any learner
        # code (set by the child once CUDA's own threads run): one that C code started counts too
        _WATCHING[0] = self

    def forbids(self, operator: str) -> bool:
        """Whether ``operator`` (``static_runtime::layer_norm``, ``prim::MKLDNNLayerNorm``) is forbidden."""
        name = operator.split(".")[0]
        return name in self.operators or _holds(_words(name.split("::", 1)[-1]), self.words)

    def threads_ended(self, within: float = 0.5) -> bool:
        """Whether every thread the learner's code started has ended (waiting ``within`` seconds
        for those about to): a thread that outlives the call that started it would run the
        learner's code outside the watch of the calls to come (a dispatch mode is per thread), or
        spin on a core that the next submissions need. Threads that C code started (``pthread_create``
        through ctypes) count too: the kernel lists every thread of the process."""
        if self._no_threads():  # nearly every call: no thread was started
            return True
        end = _monotonic() + within
        while not self._no_threads() and _monotonic() < end:
            _sleep(0.005)
        return self._no_threads()

    def _no_threads(self) -> bool:
        return not self.threads and _thread_count() <= self.baseline and (
            self.tasks is None or _task_count() <= self.tasks)

    def refuse(self, what: str):
        if self.refused is None:
            self.refused = what + self._where()
        raise Forbidden(what)

    def _where(self) -> str:
        """Where in the learner's files the refused call was made."""
        frame = sys._getframe(1)
        while frame is not None:
            path = frame.f_code.co_filename
            if self.folder and path.startswith(self.folder + os.sep):
                line = linecache.getline(path, frame.f_lineno).strip()[:120]
                return f" (in {os.path.basename(path)}, line {frame.f_lineno}: {line})"
            frame = frame.f_back
        return ""

    def op(self, func):
        """An operator seen for the first time."""
        name = f"{getattr(func, 'namespace', 'aten')}.{func.__name__.split('.')[0]}"
        if self.everything:
            self.refuse(f"uses torch ({name}): this exercise is plain Python")
        if func in self.overloads or self.forbids(str(func.name())):
            self.refuse(f"uses {name}, which this exercise asks you to write by hand")

    def autograd(self):
        """An operator ran with gradient recording on, or inside a backward pass, in a function whose
        gradient is written by hand."""
        self.refuse("uses PyTorch's autograd (a backward pass, torch.autograd.grad, torch.func or turning "
                    "gradient recording on), but this exercise asks you to write the gradient by hand")

    def function(self, func, args, kwargs) -> bool:
        """A torch function called in a function whose gradient is written by hand: whether it may
        run unchecked from now on."""
        name = (getattr(func, "__name__", "") or "").split(".")[0]
        if name == "requires_grad_":  # switching gradients off is no use of autograd
            if not (args[1] if len(args) > 1 else (kwargs or {}).get("requires_grad", True)):
                return False
        if name in _AUTOGRAD:
            self.refuse(f"uses PyTorch's autograd ({name}), but this exercise asks you to write the gradient by hand")
        return name != "requires_grad_"

    @contextlib.contextmanager
    def call(self, fn: str):
        """Watch the call of the learner's (or the driver's) function ``fn``."""
        if not self.active:
            yield
            return
        leaving = self.leaving
        try:
            with contextlib.ExitStack() as stack:
                if self.everything:  # any operator at all is refused: a dispatch mode sees them all
                    stack.enter_context(_DispatchMode(self))
                stack.enter_context(_threads_watched(self))
                if self.hand_all or fn in self.hand:
                    stack.enter_context(self.by_hand())
                self.watching += 1
                try:
                    yield
                finally:
                    _no_code_for_later()
                    self.watching -= 1
                    self.leaving = True  # the modes are popped by us now
        finally:
            self.leaving = leaving

    @contextlib.contextmanager
    def by_hand(self):
        """Autograd refused while a function whose gradient is written by hand runs: a dispatch mode
        checks every operator for gradient recording or a backward pass, where the process has
        autograd at all (the grader runs these functions in a process without it, ``_autograd_off``).
        Code that takes the modes off (with the originals its guards hold: a Python process hides
        nothing from its own code) still cannot record a graph unseen: autograd numbers each node it
        makes (``_recorded``)."""
        was, leaving = self.strict, self.leaving
        self.strict = True
        before = _recorded()
        try:
            # Where autograd is off (``_autograd_off``) no operator can record or run a graph: the
            # modes would only look (the function mode names .backward() in its refusal; there, the
            # entry points themselves do, ``_autograd_calls_named``).
            with torch.no_grad(), (_FunctionMode(self) if AUTOGRAD else contextlib.nullcontext()), \
                    (_DispatchMode(self) if AUTOGRAD else contextlib.nullcontext()):
                try:
                    yield
                finally:
                    self.leaving = True  # the modes are popped by us now
            if _recorded() != before:
                self.autograd()
        finally:
            self.strict, self.leaving = was, leaving

    def scoped(self, module, graphs: bool = False):
        """``module`` as a driver sees it: the functions whose gradient is written by hand refuse
        autograd while they run, wherever they are called from. ``graphs``: in the child where the
        suite's drivers differentiate a topic's forwards, the functions written by hand are not there
        at all (they run in a child without autograd)."""
        if not graphs and (not self.hand or self.hand_all):
            return module
        return _Scoped(module, self, graphs)


class _Scoped:
    def __init__(self, module, watch: Watch, graphs: bool = False):
        self.__module, self.__watch, self.__graphs = module, watch, graphs

    def __getattr__(self, name):
        attr = getattr(self.__module, name)
        if not callable(attr) or not (self.__watch.hand_all or name in self.__watch.hand):
            return attr
        watch = self.__watch
        if self.__graphs:
            raise Forbidden(f"{name} is written by hand: it does not run where autograd does")

        def by_hand(*args, **kwargs):
            with watch.by_hand():
                return attr(*args, **kwargs)
        return by_hand


class _DispatchMode(TorchDispatchMode):
    """Sees every aten operator below autograd, in a hand-written gradient and in a plain-Python
    topic: a set lookup, then the operator."""

    def __init__(self, watch: Watch):
        super().__init__()
        self.watch = watch

    @classmethod
    def _should_skip_dynamo(cls) -> bool:  # no torch.compile here: saves importing it (seconds) per child
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        watch = self.watch
        if func not in watch.allowed_ops:  # operators: PyTorch's long-lived objects, hashed by identity
            watch.op(func)
            watch.allowed_ops.add(func)
        if watch.strict and (_graph_task() != -1 or (_recording() and _records(args))):
            watch.autograd()
        return func(*args, **(kwargs or {}))


def _records(args) -> bool:
    """Whether an operator with these arguments is recorded for autograd: one of its tensors (or of a
    list of them) requires grad. Gradient mode on over tensors that do not (torch.distributions'
    lazy properties switch it on) records nothing."""
    for a in args:
        if isinstance(a, torch.Tensor):
            if a.requires_grad:
                return True
        elif isinstance(a, (list, tuple)) and any(isinstance(t, torch.Tensor) and t.requires_grad for t in a):
            return True
    return False


class _FunctionMode(TorchFunctionMode):
    """Sees the torch functions called in a hand-written gradient: ``.backward()`` and
    ``torch.autograd.grad`` refused with a clear message (under no_grad they would only fail)."""

    def __init__(self, watch: Watch):
        super().__init__()
        self.watch = watch

    def __torch_function__(self, func, types, args=(), kwargs=None):
        key = func if type(func) in _HASHED_BY_IDENTITY else id(func)  # id(): an audited event, per call
        if key not in self.watch.allowed_calls and self.watch.function(func, args, kwargs):
            self.watch.allowed_calls.add(key)
        return func(*args, **(kwargs or {}))


_HASHED_BY_IDENTITY = frozenset({types.FunctionType, types.BuiltinFunctionType, types.MethodDescriptorType,
                                 types.WrapperDescriptorType, types.GetSetDescriptorType})  # no __eq__ of anyone's
_recording, _graph_task = torch.is_grad_enabled, torch._C._current_graph_task_id
_monotonic, _sleep = time.monotonic, time.sleep  # taken before any learner code runs
# The number of the next node autograd makes in this thread (each node of a recorded graph takes
# one): a counter in PyTorch's C++ that no Python code can set back.
_recorded = torch._C._autograd._get_sequence_nr
_thread_count = __import__("_thread")._count  # the interpreter's count of the threads _thread started


def _no_ctypes(watch: "Watch"):
    """An audit hook (for the process's lifetime, installed before the learner's module is imported):
    every use of ctypes is refused (loading a library, looking up or calling a C function, reading or
    casting an address). ctypes reaches the process's memory, and through it whatever holds the
    checks there: a red-team pass found the dispatcher registrations that take autograd out of a
    server for hand-written gradients by scanning memory, undid them, and had a hand-written gru
    gradient computed by forward-mode autograd (9.79/10). No exercise needs ctypes."""
    def hook(event, args):
        if event.startswith("ctypes."):
            watch.refuse("ctypes, which reaches this process's memory (no exercise needs it)")
    return hook


def _task_count(_listdir=os.listdir) -> int:
    """The kernel's count of this process's threads, however they were started."""
    return len(_listdir("/proc/self/task"))


def _cuda_started():
    """On a machine with a GPU: CUDA's context, and autograd's thread for the device where this
    process has autograd, started before any learner code, so that the threads of the driver and of
    the engine are counted among the worker's own, not taken for threads the learner left running."""
    if not torch.cuda.is_available():
        return
    x = torch.ones(1, device="cuda")
    if AUTOGRAD:
        (x.requires_grad_() * 2).sum().backward()
    torch.cuda.synchronize()


_TORCHSCRIPT = re.compile(r"^_jit_script_|^_create_(function|method|graph|module|object)_|import_ir_module|"
                          r"^_load_(for_lite_interpreter|jit_module|mobile_module)|^_jit_to_backend|^_jit_differentiate$|"
                          r"^_compile_graph_to_code_table$|^_freeze_module$|^_backport_for_mobile")
# ... and the methods that compile or lower code (TorchScript's classes, NNC)
_SCRIPT_METHODS = ((torch._C.CompilationUnit, ("__init__", "define", "create_function")),
                   (torch._C.ScriptModule, ("_define", "_create_method_from_trace",
                                            "_create_method_from_trace_with_dict")),
                   (torch._C.ConcreteModuleType, ("_create_methods_and_properties",)),
                   (torch._C._te, ("lower", "TensorExprKernel", "construct_codegen", "SimpleIREvaluator")))


def _lock(watch: Watch):
    """While the watch is on, the ways to step around it refuse: popping its mode off the stack,
    excluding the Python dispatch key, calling a kernel below it (``redispatch``, ``_op_dk``, boxed
    calls), starting another program. For this process's lifetime (it runs learner code only)."""
    import torch._ops
    import torch.utils._python_dispatch as python_dispatch

    import _posixsubprocess
    import subprocess

    def locked(owner, name, why="switches off the check of forbidden operators"):
        original = getattr(owner, name, None)
        if original is None:
            return

        def guard(*args, **kwargs):
            if watch.watching and not watch.leaving:
                watch.refuse(f"uses {name}, which {why}")
            return original(*args, **kwargs)
        setattr(owner, name, guard)

    locked(sys, "addaudithook", "runs code of yours at moments no check watches")
    import posix
    programs = ["execv", "execve", "posix_spawn", "posix_spawnp", "system"]
    for owner, names in [(os, programs), (posix, programs),  # os's are posix's, under a second name
                         (_posixsubprocess, ["fork_exec"]), (subprocess, ["_fork_exec"])]:  # forks stay watched
        for name in names:
            locked(owner, name, "starts another program, where forbidden operators would not be checked")
    # TorchScript's static runtime calls the out-variants of kernels directly, not through the dispatcher
    for name in ["_jit_to_static_module", "_fuse_to_static_module", "StaticModule"]:
        locked(torch._C, name, "switches off the check of forbidden operators (TorchScript's static runtime "
                               "calls kernels without the dispatcher)")

    for overload in watch.overloads:  # the kernel of a forbidden operator, called below the watch
        locked(overload, "_op_dk")

    def named(resolve):  # a fresh handle on a forbidden operator, or one TorchScript alone runs (prim::)
        def resolve_unless_forbidden(name, *args, **kwargs):
            qualified = str(name) if "::" in str(name) else f"aten::{name}"
            if watch.watching and not watch.leaving and watch.forbids(qualified):
                watch.refuse(f"uses {qualified.replace('::', '.')}, which this exercise asks you to write by hand")
            return resolve(name, *args, **kwargs)
        return resolve_unless_forbidden
    torch._C._get_operation_overload = named(torch._C._get_operation_overload)
    torch._C._jit_get_operation = named(torch._C._jit_get_operation)

    # TorchScript and NNC run operators of their own (prim::MKLDNNLayerNorm, NNC's lowering of
    # log_softmax) and differentiate graphs without autograd: nothing of them while learner code runs
    script = ("compiles TorchScript (or NNC) code, whose operators and gradients run outside the check of forbidden "
              "operators: write the function in plain PyTorch")
    for name in [n for n in dir(torch._C) if _TORCHSCRIPT.search(n)]:
        locked(torch._C, name, script)
    for owner, names in _SCRIPT_METHODS:
        for name in names:
            locked(owner, name, script)

    for owner, names in [
        (torch._C, ["_pop_torch_dispatch_stack", "_set_dispatch_mode",
                    "_unset_dispatch_mode", "_dispatch_tls_set_dispatch_key_excluded",
                    "_dispatch_tls_set_dispatch_key_included", "_ExcludeDispatchKeyGuard", "_DisableTorchDispatch",
                    "_dispatch_call_boxed", "_ForceDispatchKeyGuard",
                    "_PreserveDispatchKeyGuard", "_IncludeDispatchKeyGuard"]),
        (python_dispatch, ["_pop_torch_dispatch_stack", "_disable_current_modes", "_pop_mode_temporarily"]),
        (torch._ops.OpOverload, ["redispatch"]),
    ]:
        for name in names:
            locked(owner, name)

    # Printing a tensor formats it with the modes off (torch._tensor_str._str): there they stay on, so
    # that a debug print in a watched function is no refusal and nothing runs unwatched.
    disable_modes, formatting = python_dispatch._disable_current_modes, torch._tensor_str._str.__code__

    def modes_kept_on_for_printing(*args, **kwargs):
        if watch.watching and not watch.leaving and sys._getframe(1).f_code is formatting:
            return contextlib.nullcontext()
        return disable_modes(*args, **kwargs)  # the guard
    python_dispatch._disable_current_modes = modes_kept_on_for_printing


# What to refuse is worked out once, in the fork server (``warm``), and every child only applies it:
# a plan is a tuple of (function, the code that refuses in its place).

class _Refusals(typing.NamedTuple):
    everything: bool  # any operator at all ("aten.*")
    names: frozenset  # the forbidden aten operators
    operators: frozenset  # the forbidden operators of every namespace ("aten::softmax", "static_runtime::layer_norm")
    hand_all: bool  # every function's gradient is written by hand ("autograd:*")
    hand: frozenset  # the functions whose gradient is written by hand
    overloads: frozenset  # of the forbidden operators
    kernels: tuple  # (operator.overload, dispatch key) of each of their kernels
    functions: tuple  # the plan for PyTorch's Python functions: forbidden modules', decompositions


def _with_backwards(names: set) -> set:
    """A forbidden operator's own backward kernels are forbidden with it (``_masked_softmax``:
    ``_masked_softmax_backward``; ``native_layer_norm``: ``native_layer_norm_backward``): they
    compute the same function's gradient, whether or not the rules name them."""
    found = set(names)
    for name in names:
        for suffix in ("_backward", "_backward_data", "_double_backward"):
            if getattr(torch.ops.aten, name + suffix, None) is not None:
                found.add(name + suffix)
    return found


@functools.lru_cache(maxsize=None)
def _refusals(rules: tuple) -> _Refusals:
    """What a watch with ``rules`` refuses. The fork server works it out (``warm``) before it forks,
    so that every child only applies it."""
    ops = {r[len("aten."):] for r in rules if r.startswith("aten.")}
    hand = {r.partition(":")[2] for r in rules if r.startswith("autograd:")}
    names = _with_backwards(ops - {"*"})
    if hand:  # forward-mode AD needs no backward pass: its dual tensors are refused instead
        names |= {"_make_dual"}
    operators = frozenset({f"aten::{n}" for n in names} | _named_operators(_words_of(rules)))
    overloads = _overloads(tuple(sorted(o.split("::")[1] for o in operators if o.startswith("aten::"))))
    functions = [f for r in rules if r.startswith("python:") for f in _python_functions(r.partition(":")[2])]
    if "*" not in ops:
        functions += _decompositions(overloads)
    return _Refusals("*" in ops, frozenset(names), operators, "*" in hand, frozenset(hand - {"*"}),
                     overloads, _kernels(operators), tuple(functions))


def warm(rules) -> None:
    """Work out in this process what a watch with ``rules`` refuses, so that forked children only apply it."""
    _refusals(tuple(rules))
    words = _words_of(tuple(rules))
    if words:
        _named(words, len(sys.modules))


# ``name:<words>`` rules: every Python function of PyTorch (a module's functions and its classes'
# methods) whose qualified name holds a forbidden computation's name as whole words is refused, in
# the modules loaded when the child starts and in those that learner code imports later
# (``_RefusedOnImport``): ``decompositions_for_jvp.native_layer_norm_backward``,
# ``_linear_cross_entropy_batch_chunked_accumulator``, ``CrossEntropyLoss.forward`` whatever the
# module, the table or the name they are reached by.

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def _words(name: str) -> tuple:
    """The lower-case words of a name: ``_fused_rms_norm_impl`` and ``RMSNorm.forward`` hold ``rms norm``."""
    return tuple(w.lower() for w in _WORD.findall(name))


@functools.lru_cache(maxsize=None)
def _words_of(rules: tuple) -> tuple:
    return tuple(_words(r.partition(":")[2]) for r in rules if r.startswith("name:"))


def _holds(words: tuple, names: tuple) -> bool:
    """Whether consecutive words spell one of ``names`` (written apart or run together: ``rms_norm``,
    ``rmsnorm_bwd_ref``, ``RMSNorm``, ``log_sum_exp``)."""
    for joined in ("".join(n) for n in names):
        for i in range(len(words)):
            spelled = ""
            for w in words[i:]:
                spelled += w
                if len(spelled) >= len(joined):
                    break
            if spelled == joined:
                return True
    return False


def _module_functions(module: types.ModuleType) -> tuple:
    """(function, the words of its qualified name) of a module's own functions and methods."""
    module_name, home = module.__name__, getattr(module, "__file__", None)
    if not isinstance(home, str):
        return ()
    found = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated names of PyTorch's, looked at, never used
        values = list(vars(module).values())
        for cls in [v for v in values if isinstance(v, type) and getattr(v, "__module__", None) == module_name]:
            for m in vars(cls).values():
                values.append(m.fget if isinstance(m, property) else getattr(m, "__func__", m))
        for fn in values:
            try:
                fn = inspect.unwrap(fn) if isinstance(fn, types.FunctionType) else fn
            except ValueError:  # a cycle of __wrapped__
                continue
            if isinstance(fn, types.FunctionType) and fn.__code__.co_filename == home:
                found[id(fn)] = (fn, _words(fn.__qualname__))
    return tuple(found.values())


_loaded_functions = functools.lru_cache(maxsize=None)(_module_functions)  # the fork server's modules, once


def _matching(functions, names: tuple) -> tuple:
    refused = {id(fn): fn for fn, words in functions if _holds(words, names)}
    return _plan([*refused.values(), *_their_own_helpers(functions, refused)])


def _their_own_helpers(functions, refused: dict) -> list:
    """The private functions of a module that only its refused functions use: a part of a forbidden
    computation under a name of its own (``torch._refs._normalize``, the arithmetic of its layer norm)."""
    homes = {id(fn.__globals__) for fn in refused.values()}
    functions = [fn for fn, _ in functions if id(fn.__globals__) in homes]
    users = _users(functions)
    found, more = dict(refused), True
    while more:
        more = False
        for fn in functions:
            who = users(fn)
            if id(fn) not in found and fn.__name__.startswith("_") and fn.__qualname__ == fn.__name__ \
                    and who and who <= found.keys():
                found[id(fn)], more = fn, True
    return [fn for key, fn in found.items() if key not in refused]


def _users(functions):
    """``users(fn)``: the ids of the other ``functions`` of ``fn``'s module whose code names it."""
    naming: dict = {}  # (module, name) -> the functions whose code names it
    for fn in functions:
        for name in _names_in(fn.__code__):
            naming.setdefault((id(fn.__globals__), name), set()).add(id(fn))
    return lambda fn: naming.get((id(fn.__globals__), fn.__name__), set()) - {id(fn)}


def _names_in(code: types.CodeType) -> set:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _names_in(c)
    return names


def _is_torch(module_name: str) -> bool:
    return module_name == "torch" or module_name.startswith("torch.")


@functools.lru_cache(maxsize=None)
def _named(names: tuple, loaded: int) -> tuple:
    """The plan for the loaded modules of PyTorch (``loaded``: how many modules there are, so that
    what was imported since is looked at too)."""
    modules = [m for name, m in list(sys.modules.items()) if _is_torch(name) and isinstance(m, types.ModuleType)]
    return _matching([f for m in modules for f in _loaded_functions(m)], names)


class _RefusedOnImport:
    """An import hook: a PyTorch module that learner code (or PyTorch on its behalf) imports is
    looked at as soon as it has run, before anyone can call its functions."""

    def __init__(self, names: tuple, watch: "Watch"):
        self.names, self.watch = names, watch

    def find_spec(self, name, path=None, target=None):
        if not _is_torch(name):
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(name, path, target) if find else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _RefusingLoader(spec.loader, self)
        return spec

    def refuse_in(self, module: types.ModuleType):
        """Looked at afresh each time it runs: ``importlib.reload`` makes new functions in the same module."""
        _refuse(_matching(_module_functions(module), self.names), self.watch)


class _RefusingLoader:
    def __init__(self, loader, hook: _RefusedOnImport):
        self._loader, self._hook = loader, hook

    def __getattr__(self, name):  # create_module, get_source, ...: the loader's own
        return getattr(self._loader, name)

    def exec_module(self, module):
        code = self._loader.get_code(module.__name__) if hasattr(self._loader, "get_code") else None
        if code is None:  # an extension module: no Python code of its own
            self._loader.exec_module(module)
        else:  # run here, where the audit hook (``_runs_of_torch_files``) knows the run for the import hook's
            exec(code, module.__dict__)
        self._hook.refuse_in(module)


def _runs_of_torch_files(names: tuple, watch: "Watch"):
    """An audit hook (it stays for the process's lifetime): code from PyTorch's files run by any other
    route than the import hook (``importlib.util.spec_from_file_location``, ``runpy.run_path``, an import
    with the hook taken off ``sys.meta_path``) is refused when it defines a function named after a
    forbidden computation, for no one would refuse that function afterwards. Source copied into a file
    of one's own, or code objects put together by hand, are not PyTorch's files any more (README, Isolation)."""
    home, ours = os.path.dirname(torch.__file__) + os.sep, _RefusingLoader.exec_module.__code__
    refuse = _refuser(watch)

    def hook(event, args, _frame=sys._getframe, _code=types.CodeType):
        if event != "exec" or not isinstance(args[0], _code) or not args[0].co_filename.startswith(home) \
                or _frame(1).f_code is ours:
            return
        todo = [args[0]]
        while todo:
            code = todo.pop()
            if _holds(_words(code.co_qualname), names):
                refuse(f"{code.co_qualname} of {code.co_filename[len(home) - len('torch/'):]}, run from PyTorch's file")
            todo += [c for c in code.co_consts if isinstance(c, _code)]
    return hook


@functools.lru_cache(maxsize=None)
def _python_functions(module_name: str) -> tuple:
    """Every Python function of ``module_name`` (private helpers, the methods of its classes and the
    functions that decorators wrap included): their code is replaced, so that no name, alias or
    computed attribute reaches the original."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return ()
    return _plan(_contents(module), module_name, getattr(module, "__file__", None))


def _contents(module) -> list:
    """What ``module`` holds, and the methods of the classes it defines (static and class methods too)."""
    values = list(vars(module).values())
    for cls in [v for v in values if isinstance(v, type) and v.__module__ == module.__name__]:
        values += [getattr(m, "__func__", m) for m in vars(cls).values()]
    return values


def _plan(functions, where=None, home=None) -> tuple:
    """(function, the code that refuses in its place) for ``functions`` and the functions they wrap
    (defined in ``home`` when given); each function once."""
    plan, seen = [], set()
    for fn in functions:
        label = where or getattr(fn, "__module__", "torch")
        while isinstance(fn, types.FunctionType) and fn.__code__.co_filename == (home or fn.__code__.co_filename) \
                and id(fn) not in seen:
            seen.add(id(fn))
            plan.append((fn, _refusing_code(f"{label}.{fn.__qualname__}", fn.__code__)))
            fn = getattr(fn, "__wrapped__", None)
    return tuple(plan)


def _refusing_code(label: str, code: types.CodeType) -> types.CodeType:
    """Code for a function with ``code``'s free variables that refuses, naming ``label``."""
    free = code.co_freevars
    src = ("def outer():\n" + "".join(f"    {v} = None\n" for v in free)
           + "    def refused(*args, **kwargs):\n" + "".join(f"        {v}\n" for v in free)
           + f"        __dlkata_refuse__({label!r})\n    return refused\n")
    scope: dict = {}
    exec(compile(src, code.co_filename, "exec"), scope)
    # at the original's line: torch.func reads the source of some decompositions (inspect.getsource)
    return scope["outer"]().__code__.replace(co_firstlineno=code.co_firstlineno)


def _refuser(watch: Watch):
    def refuse(what, _error=Forbidden):
        what = f"uses {what}, which this exercise asks you to write by hand"
        watch.refuse(what)
        raise _error(what)  # whatever became of the watch
    return refuse


def _refuse(plan, watch: Watch):
    """Apply a plan: each function refuses to run, through ``watch``."""
    refuse = _refuser(watch)
    for fn, code in plan:
        fn.__globals__["__dlkata_refuse__"] = refuse
        fn.__code__ = code


@functools.lru_cache(maxsize=1)
def _registered_decompositions() -> frozenset:
    """Ids of every function of PyTorch's decomposition tables (the fork server computes them once)."""
    from torch._decomp import global_decomposition_table
    return frozenset(id(inspect.unwrap(f)) for table in global_decomposition_table.values() for f in table.values())


def _decompositions(overloads: frozenset) -> tuple:
    """PyTorch's Python implementations of the forbidden operators (``torch._decomp``, ``torch._refs``:
    ``_log_softmax``, ``native_layer_norm_backward``, ``lstm`` ... written with allowed operators),
    to refuse whatever name reaches them."""
    from torch._decomp import global_decomposition_table
    found = [table[o] for table in global_decomposition_table.values() for o in overloads if o in table]
    # And the private helpers of the decompositions module that they call (lstm_impl -> one_layer_lstm ->
    # lstm_cell), not the operators they are made of (torch._refs.add, the meta kernel of aten.add).
    registered = _registered_decompositions()
    todo, chosen = list(found), {}
    while todo:
        fn = inspect.unwrap(todo.pop())
        if not isinstance(fn, types.FunctionType) or id(fn) in chosen:
            continue
        chosen[id(fn)] = fn
        for name in fn.__code__.co_names:
            helper = fn.__globals__.get(name)
            helper = inspect.unwrap(helper) if callable(helper) else None
            if isinstance(helper, types.FunctionType) and helper.__module__ == "torch._decomp.decompositions" \
                    and id(helper) not in registered:
                todo.append(helper)
    return _plan([*found, *_used_only_by(chosen, {id(inspect.unwrap(f)) for f in found})])


def _used_only_by(chosen: dict, refused: set) -> list:
    """The functions of ``chosen`` (by id) that nothing but the refused ones use in their module: a
    helper an allowed operator's decomposition or meta kernel shares (``apply_loss_reduction``,
    ``prod``) stays usable."""
    kept, more = dict(chosen), True
    homes = {id(fn.__globals__): fn.__globals__ for fn in chosen.values()}
    everyone = {id(f): f for g in homes.values() for f in (inspect.unwrap(v) for v in list(g.values()) if callable(v))
                if isinstance(f, types.FunctionType) and id(f.__globals__) in homes}
    users = _users(everyone.values())
    while more:
        more = False
        for key, fn in list(kept.items()):
            if key not in refused and not users(fn) <= kept.keys():
                del kept[key]
                more = True
    return list(kept.values())


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
        token = object()

        def run(*a, **k):
            try:
                with watch.call(""), (watch.by_hand() if strict else contextlib.nullcontext()):
                    return function(*a, **k)
            finally:
                watch.threads.discard(token)
        watch.threads.add(token)
        try:
            return start(run, args, kwargs)
        except BaseException:
            watch.threads.discard(token)
            raise

    watched_start._dlkata = True
    saved = _thread.start_new_thread, _thread.start_new, threading._start_new_thread  # start_new: an old alias
    _thread.start_new_thread = _thread.start_new = threading._start_new_thread = watched_start
    try:
        yield
    finally:
        _thread.start_new_thread, _thread.start_new, threading._start_new_thread = saved


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
    file_bytes = int(limits.get("file_mb", 16)) << 20
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limits.get("files"):  # each open pipe or socket can hold kernel memory that no other limit counts
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits["files"], limits["files"]))
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


_CUDA_SEEDED = False
_RANDOM_SEEDED = random.Random(0).getstate()


def _seed():
    """The seeds of ``torch.manual_seed(0)`` (CPU, and CUDA once it is in use), ``random`` and numpy,
    before every call: a call's random draws never depend on the calls before it."""
    global _CUDA_SEEDED
    random.setstate(_RANDOM_SEEDED)  # random.seed(0)'s state, set at less cost
    torch.default_generator.manual_seed(0)  # torch.manual_seed's own work on a CPU; ~70x cheaper
    if torch.cuda.is_initialized() or not _CUDA_SEEDED:  # before CUDA starts, the seed waits for it
        torch.cuda.manual_seed_all(0)
        _CUDA_SEEDED = True
    try:
        import numpy
        numpy.random.seed(0)
    except ImportError:
        pass


def _release(exc: BaseException | None):
    """Free what a failed call still holds through its exceptions' tracebacks (their frames' locals:
    a memory bomb's lists), so that the answer can be built and sent. The first MemoryError may have
    been replaced by another, raised on the way out while the memory was still held."""
    while exc is not None:
        traceback.clear_frames(exc.__traceback__)
        exc.__traceback__ = None
        nxt = exc.__context__ or exc.__cause__
        exc.__context__ = exc.__cause__ = None
        exc = nxt


def _contain(me: int):
    """After a call: a forked copy of this process never talks on the channel, and whatever the
    call left running as our children is stopped."""
    if os.getpid() != me:
        os._exit(0)
    try:  # one system call when the call left no child, as nearly every call does
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return
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


def _hide_grader():
    """Learner code must not reach the live watch by importing this module (``sys.modules``): what
    it imports under these names from now on is a fresh, unused copy. This process keeps its own
    references. Frames, ``gc`` and ``ctypes`` still reach it: the watch is a check of what honest
    code runs, not a boundary (see README, Isolation)."""
    for name in _GRADER_MODULES:
        sys.modules.pop(name, None)


_GRADER_MODULES: list[str] = []  # their names, listed by the server before each fork: a child that walked
# sys.modules itself would write to every name's reference count, copying the pages that hold them


class _Dead(BaseException):
    """A call of a learner function that is not run again (``ErrorKind.sticky``)."""

    def __init__(self, name: str, kind: str, message: str):
        super().__init__(message)
        self.name, self.kind, self.message = name, kind, message


def _bury(module, dead: dict):
    """Replace the module's functions that failed for good (the grader's list) by ones that fail at
    once: the learner's other functions and the drivers find them by the module's names."""
    for name, (kind, message) in dead.items():
        if not getattr(getattr(module, name, None), "__dlkata_dead__", False):
            def buried(*args, _name=name, _kind=kind, _message=message, **kwargs):
                raise _Dead(_name, _kind, _message)
            buried.__dlkata_dead__ = True
            setattr(module, name, buried)


# ---- The device pass: values that live on another device (``tests/devices.py``) ---------------

# What PyTorch says when tensors of two devices meet, and when data leaves the inputs' device
# (``.cpu()``, ``.numpy()``, ``cpu_tensor[i] = t``): the same words for cuda and meta. The device
# pass's verdicts (tests/devices.py) read them too.
DEVICES_MIXED = ("is not on the expected device", "same device", "found at least two devices")
DATA_MOVED = ("Cannot copy out of meta tensor", "can't convert meta device type tensor to numpy")
# A tensor on the meta device that the pass could not give values (made in another thread, ...): the
# case is inconclusive (tests/devices.py says so), never the learner's device bug.
VALUES_UNKNOWN = "the device pass could not give it values"


class _ValuesUnknown(RuntimeError):
    """The device pass cannot follow the call (``unfollowed`` in the reply, never read off a message,
    which the learner's own ``raise`` could copy)."""


def _unfollowed(exc: BaseException, folder: str) -> bool:
    """Whether the device pass could not follow the call: a meta tensor it could not give values, or
    PyTorch asked for a generator on the meta device (raised by PyTorch, not by the learner's code)."""
    if isinstance(exc, _ValuesUnknown):
        return True
    frames = traceback.extract_tb(exc.__traceback__)
    by_learner = bool(frames) and frames[-1].filename.startswith(folder)
    return not by_learner and isinstance(exc, RuntimeError) and "not an accelerator" in BaseException.__str__(exc)
# Operators that take CPU tensors beside tensors of another device on a GPU too: indices, copies.
_TAKE_CPU = {"index", "_unsafe_index", "index_put", "index_put_", "_index_put_impl_", "_unsafe_index_put",
             "copy", "copy_", "_to_copy", "_copy_from", "_copy_from_and_resize"}


class Elsewhere(torch.Tensor):
    """A tensor that is on PyTorch's ``meta`` device as far as any code can tell, and still carries
    values (on the CPU, out of sight). Operations that meet a plain tensor or name a device are run
    by PyTorch's meta kernels first, which decide the device rules exactly as for a meta tensor
    (mixing with a CPU tensor, copying out; and a CPU tensor of more than one element refused where
    a GPU refuses it too, which some meta kernels let through); then every operation is run on the
    values. So code that follows the device of its inputs runs to the end with real values
    (``.item()``, ``if t > 0:``, ``.tolist()`` included), and code that does not fails as on a GPU."""

    @staticmethod
    def __new__(cls, values: torch.Tensor):
        return torch.Tensor._make_wrapper_subclass(
            cls, values.size(), strides=values.stride(), storage_offset=values.storage_offset(),
            dtype=values.dtype, layout=values.layout, device="meta", requires_grad=values.requires_grad)

    def __init__(self, values: torch.Tensor):
        self.values = values

    def __repr__(self):
        return f"tensor(..., device='meta', size={tuple(self.shape)}, dtype={self.dtype})"

    def __format__(self, spec):  # f"{loss:.3f}" of a 0-dim tensor works on any device
        return self.values.item().__format__(spec) if self.dim() == 0 else object.__format__(self, spec)

    def __tensor_flatten__(self):
        return ["values"], None

    @staticmethod
    def __tensor_unflatten__(inner, meta, outer_size, outer_stride):
        return Elsewhere(inner["values"])

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func is torch.Tensor.tolist:  # reads values, which works on any device
            return args[0].values.tolist()
        if func in (torch.Tensor.numpy, torch.Tensor.__array__):
            raise TypeError("can't convert meta device type tensor to numpy. Use Tensor.cpu() to copy the tensor "
                            "to host memory first.")
        if func in (torch.Tensor.__getitem__, torch.Tensor.__setitem__) and len(args) > 1:
            args = (args[0], _index(args[1]), *args[2:])
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **(kwargs or {}))

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return _elsewhere(func, args, kwargs or {})


def _as_meta(x) -> torch.Tensor:
    """What the grader is sent of a device pass's result: a plain meta tensor of its shape and dtype
    (any other tensor subclass comes back as it is, for the wire to refuse)."""
    return torch.empty(x.shape, dtype=x.dtype, device="meta") if type(x) is Elsewhere else x


def _index(index):
    """Python lists and ranges of numbers in an index as CPU tensors, which a GPU takes as indices
    too (PyTorch would make them on the meta device, without values)."""
    if isinstance(index, tuple):
        return tuple(_index(i) for i in index)

    def numbers(x):
        return isinstance(x, (bool, int)) or (isinstance(x, (list, range)) and all(numbers(v) for v in x))
    if isinstance(index, (list, range)) and len(index) and numbers(index):
        return torch.tensor(list(index))
    return index


def _meta_device(x) -> bool:
    return (isinstance(x, torch.device) and x.type == "meta") or (isinstance(x, str) and x == "meta")


def _map(x, f):
    """``f`` on every leaf of aten's arguments or results (lists and tuples, as aten nests them)."""
    return type(x)(_map(v, f) for v in x) if isinstance(x, (list, tuple)) else f(x)


def _values(x):
    return x.values if isinstance(x, Elsewhere) else "cpu" if _meta_device(x) else x


def _leaves(x):
    if isinstance(x, (list, tuple)):
        for v in x:
            yield from _leaves(v)
    else:
        yield x


_ALIASING: dict = {}  # operator -> whether it mutates or returns a view (its results need aliasing fixed)


def _elsewhere(func, args, kwargs):
    """Run ``func`` where some tensors are ``Elsewhere`` (or that makes one, ``device=x.device``)."""
    from torch.utils._python_dispatch import return_and_correct_aliasing

    meta_out = None
    leaves = list(_leaves((args, list(kwargs.values()))))
    plain = [t for t in leaves if isinstance(t, torch.Tensor) and not isinstance(t, Elsewhere)]
    if plain or "device" in kwargs or any(isinstance(t, torch.device) for t in leaves):
        if any(t.is_meta for t in plain):
            raise _ValuesUnknown(f"a tensor on the meta device that {VALUES_UNKNOWN} (made in another thread?)")

        def as_meta(x):
            if isinstance(x, Elsewhere):
                return torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device="meta")
            return x.clone() if isinstance(x, torch.Tensor) and x.device.type == "cpu" else x  # left unchanged

        try:  # the device rules, from PyTorch's own meta kernels
            meta_out = func(*_map(args, as_meta), **{k: _map(v, as_meta) for k, v in kwargs.items()})
        except Exception as e:  # noqa: BLE001 - no meta kernel, or values are needed: the values decide
            if any(s in str(e) for s in DEVICES_MIXED + DATA_MOVED):
                raise
        if func._overloadpacket.__name__ not in _TAKE_CPU and any(t.dim() > 0 for t in plain) \
                and any(isinstance(t, Elsewhere) for t in leaves):
            raise RuntimeError("Expected all tensors to be on the same device, but found at least two devices, "
                               "meta and cpu!")
    # Else only Elsewhere tensors meet, and nothing can leave their device: the results stay with them.
    out = func(*_map(args, _values), **{k: _map(v, _values) for k, v in kwargs.items()})
    if meta_out is None:
        out = _map(out, lambda o: Elsewhere(o) if isinstance(o, torch.Tensor) else o)
    else:
        from torch.utils import _pytree as pytree
        flat, spec = pytree.tree_flatten(out)
        flat = [Elsewhere(o) if isinstance(o, torch.Tensor) and getattr(m, "is_meta", False) else o
                for o, m in zip(flat, pytree.tree_leaves(meta_out))]
        out = pytree.tree_unflatten(flat, spec)
    aliasing = _ALIASING.get(func)
    if aliasing is None:
        schema = func._schema
        aliasing = _ALIASING[func] = any(a.alias_info is not None for a in (*schema.arguments, *schema.returns))
    return return_and_correct_aliasing(func, args, kwargs, out) if aliasing else out


class _MadeElsewhere(TorchDispatchMode):
    """Tensors that the learner makes on the device of its inputs (``torch.zeros(..., device=x.device)``)
    are ``Elsewhere`` too."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:  # as the watch's: no torch.compile here
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _meta_device(kwargs.get("device")):
            return _elsewhere(func, args, kwargs)
        return func(*args, **kwargs)


_BUILT_FROM_DATA = (torch.tensor, torch.as_tensor, torch.asarray)


class _BuiltElsewhere(TorchFunctionMode):
    """Tensors built from Python data on the device of the inputs (``torch.tensor(v, device=x.device)``,
    ``x.new_tensor(v)``) never reach the dispatcher as an operator: they are ``Elsewhere`` too."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _BUILT_FROM_DATA and args and _meta_device(kwargs.get("device")):
            return Elsewhere(func(_map(args[0], _values), *args[1:], **{**kwargs, "device": "cpu"}))
        if func in (torch.Tensor.new_tensor, torch.Tensor.new) and args and isinstance(args[0], Elsewhere) \
                and (kwargs.get("device") is None or _meta_device(kwargs.get("device"))):
            made = func(args[0].values, *_map(args[1:], _values), **{**kwargs, "device": "cpu"} if "device" in kwargs
                        else kwargs)
            return Elsewhere(made)
        return func(*args, **kwargs)


def _settled(result):
    """A copy of a call's result, taken while the watch is still on: code the learner left to run
    later (a gc callback, a finalizer) may write into the tensors it returned, but not into these.
    Containers are rebuilt by their base type and tensors cloned; anything else is left for the wire."""
    kind = type(result)
    if kind in wire.PLAIN_TENSORS or kind is Elsewhere:
        return result.detach().clone()
    if issubclass(kind, (list, tuple)):
        items = [_settled(v) for v in (list.__iter__(result) if issubclass(kind, list) else tuple.__iter__(result))]
        return items if issubclass(kind, list) else tuple(items)
    if issubclass(kind, dict):
        return {k: _settled(v) for k, v in dict.items(result)}
    return result


_set_profile, _set_trace, _gc_callbacks = sys.setprofile, sys.settrace, gc.callbacks


def _no_code_for_later() -> None:
    """At the end of a watched call (or import), still under the watch: what would run the learner's
    code after it, unwatched (a profile or trace function, a gc callback), is taken down."""
    _set_profile(None)
    _set_trace(None)
    threading.setprofile(None)
    threading.settrace(None)
    del _gc_callbacks[:]


def _with_values(x, elsewhere: bool, gen: torch.Generator):
    """Meta inputs of the device pass with values, the same ones every time: floats uniform in [0, 1),
    integers 0 (a valid index everywhere), booleans True; ``Elsewhere``, or plain CPU tensors."""
    if isinstance(x, torch.Tensor) and x.device.type == "meta":
        if x.dtype.is_floating_point or x.dtype.is_complex:
            t = torch.rand(x.shape, dtype=x.dtype, generator=gen)
        else:
            t = torch.ones(x.shape, dtype=x.dtype) if x.dtype == torch.bool else torch.zeros(x.shape, dtype=x.dtype)
        return Elsewhere(t) if elsewhere else t
    if isinstance(x, (list, tuple)):
        return type(x)(_with_values(v, elsewhere, gen) for v in x)
    if isinstance(x, dict):
        return {k: _with_values(v, elsewhere, gen) for k, v in x.items()}
    return x


@functools.lru_cache(maxsize=64)
def _compiled(driver: str) -> types.CodeType:
    """The drivers' code (the grader's), compiled once in the fork server."""
    return compile(driver, "driver.py", "exec")


def _prepared(req: dict) -> tuple:
    """What a child makes before any learner file is there: the suite's drivers (a module) and the
    watch of the topic's rules (its refusals: kernels, functions, hooks). A zygote (``_zygote``) makes
    them once for all the children of a request; a child of the server makes its own."""
    driver = None
    if req.get("driver"):
        driver = types.ModuleType("driver")
        exec(_compiled(req["driver"]), driver.__dict__)
    return driver, Watch(req.get("forbidden", []))  # operator rules; the API names are checked statically


def child(req: dict, prepared: tuple | None = None):
    me = os.getpid()
    _limit(req.get("limits", {}))
    folder = _write_files(wire.read_message(IN).get("files", {}))
    os.chdir(folder)
    sys.path.insert(0, folder)
    driver, watch = prepared or _prepared(req)
    watch.folder = folder  # where refusals point to, in the learner's files
    # A second check of autograd in hand-written gradients, that leans on nothing learner code can
    # replace: learner code can reach this module's functions (the objects it is handed, frames) and
    # swap them, the watch's included, but not the locals of this running frame, bound here before
    # it runs, nor autograd's count of the nodes it has made (``_recorded``, C++). A call of a
    # function whose gradient is written by hand makes no node, and neither does anything between calls.
    # (Immutable values and builtins only: a Python function's code, or a dict, could be changed in place.)
    recorded, os_write, out, hand_all, hand = _recorded, os.write, OUT, watch.hand_all, frozenset(watch.hand)
    chan_in, driver_tag = IN, wire.DRIVER  # a driver's call is said by the byte before its message
    graphs = bool(req.get("graphs"))  # a topic's child for the drivers that differentiate its forwards
    by_hand_only = hand_all or bool(hand)
    refused_in_call, refused_between, refused_thread, refused_recording = (
        wire.encode({"error": ErrorKind.FORBIDDEN, "message": m}) for m in (
            "recorded a graph for PyTorch's autograd in a function whose gradient is written by hand, but this "
            "exercise asks you to write the gradient by hand: no credit for it",
            "recorded a graph for PyTorch's autograd between calls (code of yours that ran outside them), but this "
            "exercise asks you to write the gradient by hand: no credit for it",
            "started a thread in a function whose gradient you are asked to write by hand (autograd there would go "
            "unchecked): no credit for it",
            "recorded a graph for PyTorch's autograd outside the suite's own gradient checks: in a topic whose "
            "gradients you write by hand, a graph kept for later could answer them (no credit for it)"))
    refused_import, refused_import_thread = (wire.encode({"error": ErrorKind.IMPORT, "message": m}) for m in (
        f"{req['topic']}.py records a graph for PyTorch's autograd when it is imported: in a topic whose gradients "
        "you write by hand, a graph kept for later could answer them",
        f"{req['topic']}.py leaves a thread running when it is imported: in a topic whose gradients you write by "
        "hand, a thread of its own could run autograd for them"))
    refused_thread_running = wire.encode({"error": ErrorKind.FORBIDDEN, "message": (
        "a thread of your code is running between calls: in a topic whose gradients you write by hand, a thread "
        "of its own could run autograd for them (no credit for it)")})
    _cuda_started()
    unrecorded = recorded()
    # Threads however started (a C library's included): the kernel's list of this process's threads
    os_listdir, count, tasks = os.listdir, len, "/proc/self/task"
    threads = watch.tasks = count(os_listdir(tasks))
    # The count is per thread: in a pid namespace of its own (bubblewrap), the namespace's last pid
    # tells whether a call started a thread (or a process) at all.
    os_open, os_read, os_close, read_only = os.open, os.read, os.close, os.O_RDONLY
    last_pid = "/proc/sys/kernel/ns_last_pid" if req.get("pid_namespace") else None
    # Signal handlers and the CPU-time timers would run learner code after a call, as it is encoded
    # (``_signal``'s own functions: the handlers as they are, without ``signal``'s enum conversions)
    getsignal, setsignal, setitimer = _signal.getsignal, _signal.signal, signal.setitimer
    handlers = tuple((sig, getsignal(sig)) for sig in signal.valid_signals() if sig not in (signal.SIGKILL, signal.SIGSTOP))
    _hide_grader()
    if not req.get("limits", {}).get("processes"):
        _no_new_processes()
        _no_kernel_counters()
    if not req.get("limits", {}).get("ctypes"):
        sys.addaudithook(_no_ctypes(watch))
    try:
        _seed()
        with watch.call(""):
            module = importlib.import_module(req["topic"])
        if watch.refused:
            raise Forbidden(f"{watch.refused}, when the module is imported")
    except BaseException as e:  # noqa: BLE001 - anything the learner's import does is reported
        _send({"error": ErrorKind.IMPORT, "message": _learner_trace(e, folder)})
        return
    if by_hand_only and recorded() != unrecorded:
        os_write(out, refused_import)
        return
    if by_hand_only and count(os_listdir(tasks)) != threads:
        os_write(out, refused_import_thread)
        return
    if not watch.threads_ended():
        _send({"error": ErrorKind.IMPORT, "message": f"{req['topic']}.py starts a thread when it is imported that "
               "is still running afterwards: a module must not leave threads running"})
        return
    _send({"ok": sorted(n for n in dir(module) if not n.startswith("_"))})
    out_of_memory = f"ran out of memory (the limit is {req.get('limits', {}).get('memory_mb', '?')} MiB)"
    settled = recorded()
    while True:
        tag = os_read(chan_in, 1)  # before any code of ours that learner code could have replaced
        if not tag:
            return
        by_driver = tag == driver_tag  # only the suite's drivers (its gradient checks) record graphs
        msg = wire.read_message(IN, device_map=_device, views=True)  # arguments keep their layout
        if msg.get("op") != "call":
            return
        by_hand_call = by_hand_only and not by_driver and (hand_all or msg.get("fn") in hand)
        if graphs and not by_driver:  # the grading side sends these to the child without autograd
            _send({"error": ErrorKind.INTERNAL, "message": "a call of the learner's own sent where autograd is on"})
            return
        _bury(module, msg.get("dead") or {})
        target = driver if by_driver else module
        fn = getattr(target, msg["fn"], None)
        if not callable(fn):
            _send({"error": ErrorKind.MISSING, "message": f"{req['topic']}.py has no function {msg['fn']}"})
            continue
        if not watch.threads_ended(within=0):  # one that only began to run after its call returned
            _send({"error": ErrorKind.FORBIDDEN, "ended": True, "message": "a thread your code started earlier is "
                   "still running: join every thread you start before returning (no credit for this call)"})
            return
        watch.refused = None
        args, kwargs = _materialize(msg.get("args", [])), _materialize(msg.get("kwargs", {}))
        elsewhere = msg.get("values") == "elsewhere"
        if msg.get("values"):  # the device pass: meta inputs get values, Elsewhere or on the CPU
            gen = torch.Generator().manual_seed(0)
            args, kwargs = _with_values(args, elsewhere, gen), _with_values(kwargs, elsewhere, gen)
        if by_driver:
            args = [watch.scoped(module, graphs), *args]
        kept, settings = _inputs(fn, args, kwargs), _settings()
        before = recorded()  # from the end of the last call to here: the worker's own work, no graph
        if by_hand_only and before != settled:
            settled = before
            os_write(out, refused_between)
            continue
        if by_hand_only and count(os_listdir(tasks)) != threads:
            os_write(out, refused_thread_running)
            continue
        pids = None
        if by_hand_call and last_pid:
            fd = os_open(last_pid, read_only)
            pids = os_read(fd, 32)
            os_close(fd)
        try:
            _seed()
            if msg.get("timeout"):  # SIGALRM's default action ends this child; the server lives on
                signal.setitimer(signal.ITIMER_REAL, float(msg["timeout"]))
            try:
                with (_BuiltElsewhere() if elsewhere else contextlib.nullcontext()), \
                        (_MadeElsewhere() if elsewhere else contextlib.nullcontext()), \
                        watch.call("" if by_driver else msg["fn"]):
                    returned = fn(*args, **kwargs)
                    result = _settled(returned)
            finally:
                setitimer(signal.ITIMER_REAL, 0)
                setitimer(signal.ITIMER_PROF, 0)
                setitimer(signal.ITIMER_VIRTUAL, 0)
                for sig, handler in handlers:
                    if getsignal(sig) is not handler:
                        setsignal(sig, handler)
                _contain(me)
                settled = recorded()  # what the call made is the call's; from here on, nothing
                verdict = None
                if by_hand_only and settled != before and not by_driver:
                    verdict = refused_in_call if by_hand_call else refused_recording
                elif pids is not None:
                    fd = os_open(last_pid, read_only)
                    now = os_read(fd, 32)
                    os_close(fd)
                    if now != pids:
                        verdict = refused_thread
                if verdict is not None:  # on every way out of the call, whatever it raised
                    os_write(out, verdict)
                    continue
            if watch.refused:
                raise Forbidden(watch.refused)
            who = "your code" if by_driver else f"`{msg['fn']}`"
            if not watch.threads_ended() or count(os_listdir(tasks)) > threads:
                _send({"error": ErrorKind.FORBIDDEN, "ended": True, "message": f"{who} left a thread running after it "
                       "returned: join every thread you start before returning (no credit for this call)"})
                return  # this process ends: the next call starts from a fresh import
            changed = _side_effect(kept)
            if changed:
                whose = "the" if by_driver else "its"
                _send({"error": ErrorKind.SIDE_EFFECT, "message": f"{who} changed {whose} argument {changed}: do not modify "
                       "inputs; use out-of-place operations such as `x = x - m` instead of `x -= m`"})
                continue
            shared = _shared_memory(returned, kept) if by_hand_call else None
            if shared:
                _send({"error": ErrorKind.SIDE_EFFECT, "message": f"{who} returned {shared}: an in-place update "
                       "of one (an optimizer's step) would change the other; return tensors of their own "
                       "(`.clone()`)"})
                continue
            moved = _settings_moved(settings)
            if moved:
                _send({"error": ErrorKind.SIDE_EFFECT, "message": f"{who} changed {moved} for the whole "
                       "program: a function must leave global settings as it found them"})
                continue
            reply = wire.encode({"ok": result}, subclass=_as_meta if elsewhere else None)
        except NotImplementedError as e:
            last = traceback.extract_tb(e.__traceback__)[-1]
            # raised by the stub itself (its own line says so), not by torch (".cpu() on meta"...) or a driver
            if last.filename.startswith(folder) and "NotImplementedError" in (last.line or ""):
                _send({"error": ErrorKind.NOT_IMPLEMENTED, "message": last.name})
            else:
                _send({"error": ErrorKind.RAISED, "message": _learner_trace(e, folder)})
            continue
        except Forbidden as e:
            _send({"error": ErrorKind.FORBIDDEN, "message": f"{watch.refused or e}: no credit for it"})
            continue
        except _Dead as e:
            _send({"error": e.kind, "message": f"calls {e.name}, which failed before: {e.message}"})
            continue
        except MemoryError as e:
            _release(e)
            _contain(me)  # again: it may have failed for want of memory
            _send({"error": ErrorKind.MEMORY, "message": out_of_memory})
            continue
        except SystemExit as e:
            code = e.code if type(e.code) in (int, str, type(None)) else f"<{type(e.code).__name__}>"
            _send({"error": ErrorKind.EXIT, "message": f"called sys.exit({code!r})"[:500]})
            continue
        except wire.WireError as e:
            _send({"error": ErrorKind.BAD_RETURN, "message": f"returned something that is not tensors or numbers ({e})"})
            continue
        except BaseException as e:  # noqa: BLE001
            if watch.refused:
                _send({"error": ErrorKind.FORBIDDEN, "message": f"{watch.refused}: no credit for it"})
            elif isinstance(e, RuntimeError) and "can't allocate memory" in str(e):  # torch's CPU allocator
                _release(e)
                _send({"error": ErrorKind.MEMORY, "message": out_of_memory})
            elif msg.get("values") and _unfollowed(e, folder):
                _send({"error": ErrorKind.RAISED, "message": _learner_trace(e, folder), "unfollowed": True})
            else:
                _send({"error": ErrorKind.RAISED, "message": _learner_trace(e, folder)})
            continue
        wire.write_all(OUT, reply)


# ---- the fork server and the confinement of each child ----------------------------------------

_LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER = 4, 38, 36
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWIPC = 0x00020000, 0x10000000, 0x20000000, 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE, MS_BIND = 1, 2, 4, 8, 16384, 1 << 18, 4096
SCRATCH = {"tmp_mb": 64, "tmp_files": 2048}  # the private /tmp of one child
UIDS_PER_SLOT = 4096
SHARED_TMP = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")  # the world-writable folders of a system


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


# The system calls that make a process or run a program, per architecture (seccomp's AUDIT_ARCH_*):
# (execve, execveat, clone, clone3, fork and vfork where they exist).
_PROCESS_CALLS = {
    "x86_64": (0xC000003E, {"execve": 59, "execveat": 322, "clone": 56, "clone3": 435, "fork": 57, "vfork": 58,
                            "memfd_create": 319, "shmget": 29, "msgget": 68, "io_uring_setup": 425,
                            "memfd_secret": 447, "add_key": 248, "request_key": 249, "keyctl": 250,
                            "unshare": 272, "setns": 308, "userfaultfd": 323, "perf_event_open": 298, "bpf": 321,
                            "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "pidfd_getfd": 438,
                            "flock": 73, "fcntl": 72, "inotify_init": 253, "inotify_init1": 294,
                            "fanotify_init": 300, "mincore": 27, "preadv2": 327, "pwritev2": 328,
                            "fadvise64": 221, "readahead": 187, "madvise": 28, "socket": 41, "getrusage": 98,
                            "sysinfo": 99, "cachestat": 451, "ioctl": 16}),
    "aarch64": (0xC00000B7, {"execve": 221, "execveat": 281, "clone": 220, "clone3": 435, "memfd_create": 279,
                             "shmget": 194, "msgget": 186, "io_uring_setup": 425,
                             "memfd_secret": 447, "add_key": 217, "request_key": 218, "keyctl": 219,
                             "unshare": 97, "setns": 268, "userfaultfd": 282, "perf_event_open": 241, "bpf": 280,
                             "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "pidfd_getfd": 438,
                             "flock": 32, "fcntl": 25, "inotify_init1": 26, "fanotify_init": 262, "mincore": 232,
                             "preadv2": 286, "pwritev2": 287, "fadvise64": 223, "readahead": 213, "madvise": 233,
                             "socket": 198, "getrusage": 165, "sysinfo": 179, "cachestat": 451, "ioctl": 29}),
}
# What fails with EPERM: programs and processes; memory that no limit of the process counts; what
# outlives the child or reaches past it (the kernel's key store is one for the whole machine, shared
# by every child and every run; a namespace of its own; tracing and reading other processes).
_REFUSED_CALLS = ("execve", "execveat", "fork", "vfork", "memfd_create", "memfd_secret", "shmget", "msgget",
                  "io_uring_setup", "add_key", "request_key", "keyctl", "unshare", "setns", "userfaultfd",
                  "perf_event_open", "bpf", "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
                  # what two children see of the same file, each in its own mount namespace: its locks,
                  # the events of its use, its pages in memory, read without waiting (RWF_NOWAIT) or
                  # evicted (a channel between them; see _FCNTL_REFUSED and _EVICTING)
                  "flock", "inotify_init", "inotify_init1", "fanotify_init", "mincore", "cachestat", "preadv2",
                  "pwritev2", "fadvise64", "readahead",
                  # a socket of any kind: the children of one server share its network namespace, loopback
                  # included, and a connection's state outlives the child (a red-team pass passed a file
                  # to a later classmate in TCP TIME_WAIT entries, read back from /proc/net/tcp)
                  "socket",
                  # the kernel's counters of this process and of the machine (page faults, I/O, free
                  # memory): what a page that another child read, or did not, tells (``_no_kernel_counters``)
                  "getrusage", "sysinfo")
# fcntl's F_GETLK, F_SETLK, F_SETLKW, their F_OFD_ forms, F_SETLEASE, F_GETLEASE and F_NOTIFY
_FCNTL_REFUSED = (5, 6, 7, 36, 37, 38, 1024, 1025, 1026)
_EVICTING = (20, 21)  # madvise's MADV_COLD and MADV_PAGEOUT: a file's pages out of memory
# The only ioctl commands a learner's process may give (where it has no GPU, whose driver works by
# ioctls): a terminal's settings and size (isatty, the terminal's width), what a descriptor holds to
# read, blocking and close-on-exec. A file system's own ones tell what another child left behind: a
# red-team pass read ext4's cache of a file's extents (filled by the first read of the file,
# machine-wide) as one bit per file, between the two children of a topic, and between classmates.
_IOCTLS_ALLOWED = (0x5401, 0x5413, 0x541B, 0x5421, 0x5450, 0x5451)  # TCGETS, TIOCGWINSZ, FIONREAD, FIONBIO, FIONCLEX, FIOCLEX
CLONE_THREAD = 0x10000


def _seccomp_program(arch: int, calls: dict, ioctls: bool = True) -> list[tuple[int, int, int, int]]:
    """A classic-BPF seccomp filter, as ``(code, jt, jf, k)``: ``execve``/``execveat``,
    ``fork``/``vfork``, a ``clone`` without ``CLONE_THREAD``, what holds memory that no limit of the
    process counts (the kernel's out-of-memory killer would then pick another process, a
    classmate's): ``memfd_create`` and ``memfd_secret`` (files in memory), ``shmget`` (System V
    segments keep their pages once detached), ``msgget`` (message queues) and ``io_uring_setup``
    (rings), and what outlives the child or reaches past it: the kernel's key store (``add_key``,
    ``request_key``, ``keyctl``: one for the whole machine, so a key one child writes another reads,
    in this run or a later one), a namespace of its own (``unshare``, ``setns``: in a user namespace
    it could mount a file system in memory), ``userfaultfd``, ``perf_event_open``, ``bpf``,
    ``ptrace``, ``process_vm_readv``/``writev`` and ``pidfd_getfd``, and what two children learn
    of a file they both see (``flock`` and ``fcntl``'s record locks, leases and ``F_NOTIFY``, whose
    holder's range another process reads back, ``inotify``, ``fanotify``, ``mincore``, a read that
    does not wait for the disk, ``preadv2``, and what evicts a file's pages, ``fadvise64``,
    ``readahead``, ``madvise``'s ``MADV_COLD`` and ``MADV_PAGEOUT``, ``cachestat``, and every
    ``ioctl`` but a few (``_IOCTLS_ALLOWED``; all of them on a machine with a GPU): a channel between
    the two children of one student's topic, the one with autograd and the one without) fail with EPERM
    (``_REFUSED_CALLS``);
    ``clone3`` (whose
    flags a filter cannot read) fails with ENOSYS, so that the C library starts threads with
    ``clone``; another architecture's calls (a 32-bit ``int 0x80``, x32) fail with EPERM; every
    other call is allowed."""
    LD, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, ...
    ends = {"allow": 0x7FFF0000, "eperm": 0x00050000 | 1, "enosys": 0x00050000 | 38}  # SECCOMP_RET_*
    code: list[tuple] = []

    def ins(op, k, jt=None, jf=None):  # jt, jf: an end's name, a number of instructions to skip, or None
        code.append((op, jt, jf, k))

    ins(LD, 4)  # seccomp_data.arch
    ins(JEQ, arch, jf="eperm")
    ins(LD, 0)  # seccomp_data.nr
    ins(JGE, 0x40000000, jt="eperm")  # x32 calls on x86_64
    for name in _REFUSED_CALLS:
        if name in calls:
            ins(JEQ, calls[name], jt="eperm")
    # calls judged by one argument: fcntl's command (the low word of its second argument, at 24) and
    # madvise's advice (its third, at 32) refused for the values listed, anything else allowed; ioctl's
    # command (at 24) allowed for the values listed only (every one where ``ioctls`` is False)
    by_argument = [("fcntl", 24, _FCNTL_REFUSED, "eperm"), ("madvise", 32, _EVICTING, "eperm")]
    if ioctls and "ioctl" in calls:
        by_argument.append(("ioctl", 24, _IOCTLS_ALLOWED, "allow"))
    for name, offset, values, listed in by_argument:
        other = "allow" if listed == "eperm" else "eperm"
        ins(JEQ, calls[name], jf=1 + len(values))  # another call: past this one's checks
        ins(LD, offset)
        for k, value in enumerate(values):
            ins(JEQ, value, jt=listed, jf=other if k == len(values) - 1 else None)
    ins(JEQ, calls["clone3"], jt="enosys")
    ins(JEQ, calls["clone"], jf="allow")
    ins(LD, 16)  # clone's flags: the low word of its first argument
    ins(JSET, CLONE_THREAD, jt="allow", jf="eperm")
    at = {name: len(code) + k for k, name in enumerate(ends)}

    def jump(i, to):  # to: an end's name, a number of instructions to skip, or None for the next one
        return at[to] - i - 1 if isinstance(to, str) else to or 0
    program = [(op, jump(i, jt), jump(i, jf), k) for i, (op, jt, jf, k) in enumerate(code)]
    return program + [(RET, 0, 0, value) for value in ends.values()]


def _no_new_processes() -> bool:
    """From now on this process can start threads but no process and no program (seccomp, which
    needs no_new_privs, set by ``_become_learner``): learner code cannot fork a helper that outlives
    its call or ``exec`` a fresh interpreter without the watch, whatever route it takes (``os``,
    ``ctypes``, raw system calls). False where the architecture or the kernel offers no filter."""
    import platform
    if platform.machine() not in _PROCESS_CALLS:
        return False
    program = _seccomp_program(*_PROCESS_CALLS[platform.machine()], ioctls=not torch.cuda.is_available())

    class Instruction(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Instruction))]

    instructions = (Instruction * len(program))(*[Instruction(*i) for i in program])
    PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
    return _LIBC.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(Program(len(program), instructions)),
                       0, 0) == 0


_LANDLOCK_CALLS = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}  # create_ruleset, add_rule, restrict_self
_LL_WRITE_FILE, _LL_READ_FILE, _LL_READ_DIR = 1 << 1, 1 << 2, 1 << 3


def _no_kernel_counters() -> bool:
    """From now on no file under /proc or /sys opens in this process (Landlock, where the kernel has
    it), but what the worker reads, the list of its own threads and its pid namespace's last pid
    (``/proc/self/task`` may be listed, not its files read), and the list of its own descriptors and
    its own address map (nor ``/proc/self/mem``: its own memory, which ctypes is refused for
    too). The kernel counts, per process and for
    the machine, what another child's work leaves behind: a red-team pass read its own major page
    faults to tell which pages of a file were already in memory (a page that a child in the topic's
    other process had read), and carried autograd's backward of a forward to a hand-written gradient
    that way (10/10). ``getrusage`` and ``sysinfo`` are refused by the seccomp filter. How long a read
    takes still tells the same thing: timing is not closed. Not on a machine with a GPU (the driver
    reads /proc and /sys as it goes). False where the kernel or the architecture has no Landlock."""
    import platform
    import stat
    if platform.machine() not in _LANDLOCK_CALLS or torch.cuda.is_available():
        return False
    create, add, restrict = _LANDLOCK_CALLS[platform.machine()]
    handled = _LL_WRITE_FILE | _LL_READ_FILE | _LL_READ_DIR
    attr = ctypes.c_uint64(handled)  # struct landlock_ruleset_attr's first field: enough for every ABI
    ruleset = _LIBC.syscall(create, ctypes.byref(attr), ctypes.sizeof(attr), 0)
    if ruleset < 0:
        return False

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    def allow(path: str, access: int):
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return
        try:
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                access &= _LL_WRITE_FILE | _LL_READ_FILE
            _LIBC.syscall(add, ruleset, 1, ctypes.byref(PathBeneath(access, fd)), 0)  # LANDLOCK_RULE_PATH_BENEATH
        finally:
            os.close(fd)

    try:
        for name in os.listdir("/"):
            if name not in ("proc", "sys"):
                allow("/" + name, handled)
        allow("/proc/self/task", _LL_READ_DIR)
        allow("/proc/sys/kernel/ns_last_pid", _LL_READ_FILE)
        allow("/proc/self/fd", _LL_READ_DIR)  # its own descriptors, and its own address map: no counter
        allow("/proc/self/maps", _LL_READ_FILE)
        return _LIBC.syscall(restrict, ruleset, 0) == 0
    finally:
        os.close(ruleset)


def _runtime_under(top: str) -> list[str]:
    """The folders of the Python runtime (the interpreter's prefixes, ``sys.path``) that live under
    ``top``, outermost only: a virtual environment under /tmp must stay visible to the modules that
    learner code imports later."""
    found = sorted({os.path.realpath(d) for d in (sys.prefix, sys.base_prefix, *sys.path)
                    if d and os.path.isdir(d)})
    out: list[str] = []
    for d in found:
        if d.startswith(top + "/") and not any(d.startswith(o + "/") for o in out):
            out.append(d)
    return out


def _private_tmp(limits: dict):
    """A tmpfs of bounded size and file count on /tmp (and on /dev/shm), seen by this mount namespace
    only; the runtime's folders under /tmp are bound back into it."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    mb, files = limits.get("tmp_mb", SCRATCH["tmp_mb"]), limits.get("tmp_files", SCRATCH["tmp_files"])
    runtime = {d: os.open(d, os.O_PATH | os.O_DIRECTORY) for d in _runtime_under("/tmp")}
    for target in ("/tmp", "/dev/shm"):
        if os.path.isdir(target):
            _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV,
                   f"size={int(mb)}m,nr_inodes={int(files)},mode=1777")
    for d, fd in runtime.items():
        os.makedirs(d, mode=0o755, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", d, None, MS_BIND | MS_REC)
        os.close(fd)
    tempfile.tempdir = "/tmp"
    for d in _HIDDEN:  # a server without autograd: the libraries that differentiate, not on disk
        _mount("tmpfs", d, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=555")


def _run_learner(req: dict, chan: int, uid: int | None, prepared: tuple | None = None):
    global IN, OUT
    code = 0
    IN = OUT = chan
    try:
        _become_learner(chan, uid)
        child(req, prepared)
    except BaseException:  # noqa: BLE001 - the grading side learns what broke
        code = 3
        try:
            _send({"error": ErrorKind.INTERNAL, "message": traceback.format_exc()[-2000:]})
        except BaseException:  # noqa: BLE001
            pass
    os._exit(code)


def _map_own_ids(uid: int, gid: int):
    """In a user namespace just made: our own uid and gid mapped, no other. Not dumpable (the server's
    setting, inherited), a process's /proc/self files belong to root, and a grader that is not root
    could not write them: dumpable for these three writes only, before any learner code runs, in a
    pid namespace that no other learner can name."""
    _prctl(PR_SET_DUMPABLE, 1)
    try:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    finally:
        _prctl(PR_SET_DUMPABLE, 0)


def _namespaced_child(req: dict, chan: int, status_w: int, uid: int | None, prepared: tuple | None = None):
    """In a fresh child of the server: new pid and mount namespaces (and a user namespace when not
    root), the private /tmp, then ``init`` of that pid namespace forks the learner's process and
    reports its wait status. When init ends, the kernel kills everything else in the namespace."""
    me_uid, me_gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWPID | (0 if uid is not None else CLONE_NEWUSER)
    _check(_LIBC.unshare(flags), "unshare")
    if uid is None:  # map our own uid and gid only: enough to own the files of the private /tmp
        _map_own_ids(me_uid, me_gid)
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
            _run_learner(req, chan, uid, prepared)
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


def _sweep_tmp(uids):
    """As root without namespaces: what the learners' ``uids`` (a container) left in the shared
    temporary folders (the grading side calls it too, when it stops a whole sandbox)."""
    for top in SHARED_TMP:
        try:
            names = os.listdir(top)
        except OSError:
            continue
        for name in names:
            path = os.path.join(top, name)
            try:
                if os.lstat(path).st_uid not in uids:
                    continue
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
            except OSError:
                pass


class _Server:
    def __init__(self, ctl: socket.socket, scratch: str | None, uid_base: int | None, uid_count: int = UIDS_PER_SLOT):
        self.ctl, self.scratch, self.uid_base, self.uid_count = ctl, scratch, uid_base, uid_count
        self.namespaces = scratch is None
        self.serial = 0
        self.modules = 0  # how many sys.modules held when _GRADER_MODULES was listed
        self.requests: dict[str, int] = {}  # how many children each request (topic, rules, drivers) had
        self.zygotes: dict[str, socket.socket | None] = {}  # the zygote of a request that comes again (None: failed)

    def uid(self) -> int | None:
        return None if self.uid_base is None else self.uid_base + self.serial % self.uid_count

    def serve(self, req: dict):
        self.serial += 1
        if self.serial == HUGE_PAGES_AFTER:  # a server that has come this far serves a class: worth it now
            _huge_pages()
        try:  # the grader's rules and drivers, worked out once for every child (which redoes what fails)
            warm(req.get("forbidden", []))
            if req.get("driver"):
                _compiled(req["driver"])
        except Exception:  # noqa: BLE001
            pass
        uid = self.uid()
        mine, theirs = socket.socketpair()
        status_r, status_w = os.pipe()
        folder = None
        if not self.namespaces:
            folder = tempfile.mkdtemp(dir=self.scratch)
            if uid is not None:
                os.chown(folder, uid, uid)
        nested = self.namespaces and uid is None  # no uid of its own: a pid namespace shields us
        req = {**req, "pid_namespace": self.namespaces}  # its pids are the child's alone while it runs
        if len(sys.modules) != self.modules:  # only the server's own (trusted) imports change them
            self.modules = len(sys.modules)
            _GRADER_MODULES[:] = [n for n in sys.modules if n == "grader" or n.startswith("grader.")]
        key = json.dumps(req, sort_keys=True) if self.namespaces else None  # the request, for its zygote
        zygote, pid = self.zygote(key, req, theirs.fileno(), status_w, uid, nested)
        if zygote is None:
            pid = os.fork()
            if pid == 0:
                try:
                    mine.close()
                    os.close(status_r)
                    _start(req, theirs.fileno(), status_w, uid, nested, folder)
                finally:
                    os._exit(70)
        theirs.close()
        os.close(status_w)
        socket.send_fds(self.ctl, [b"F"], [mine.fileno()])
        mine.close()
        wire.write_message(self.ctl.fileno(), {"child": self.serial})
        if zygote is None:
            _, status = os.waitpid(pid, 0)
        else:  # the zygote waits for its child and says how it ended
            raw = _read_all(zygote, 4)
            if len(raw) == 4:
                status = struct.unpack("<i", raw)[0]
            else:  # the zygote is gone (whatever killed it): its child, an orphan, comes to us (a subreaper)
                self.drop_zygote(key)
                status = _wait_orphan(pid)
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
                _sweep_tmp((uid,))
        event = {"event": "exit", "child": self.serial}
        if os.WIFSIGNALED(status):
            event["signal"] = os.WTERMSIG(status)
        else:
            event["code"] = os.WEXITSTATUS(status)
        wire.write_message(self.ctl.fileno(), event)

    def zygote(self, key: str | None, req: dict, chan: int, status_w: int, uid: int | None,
               nested: bool) -> tuple[socket.socket | None, int | None]:
        """``(zygote, pid)``: the zygote of ``req`` when it has one, once it has forked the child ``pid``
        for ``chan``; ``(None, None)``: the server forks it. A zygote is made when its request comes
        again after the server's heap moved to huge pages (a class is being graded; the zygote then
        forks as cheaply as the server). With namespaces only: without them the server stops whatever
        its children leave, zygotes included."""
        if key is None:
            return None, None
        self.requests[key] = self.requests.get(key, 0) + 1
        if key not in self.zygotes and self.requests[key] >= 2 and self.serial > HUGE_PAGES_AFTER:
            self.zygotes[key] = _spawn_zygote(req)
        sock = self.zygotes.get(key)
        if sock is None:
            return None, None
        try:
            socket.send_fds(sock, [json.dumps({"uid": uid, "nested": nested}).encode()], [chan, status_w])
            forked = _read_all(sock, 5)
            if forked[:1] == b"F" and len(forked) == 5:
                return sock, struct.unpack("<i", forked[1:])[0]
        except OSError:
            pass
        self.drop_zygote(key)  # it forked nothing: the server does
        return None, None

    def drop_zygote(self, key: str):
        """A zygote that failed is not asked again; the server forks that request's children itself."""
        sock, self.zygotes[key] = self.zygotes.get(key), None
        if sock is not None:
            sock.close()
            _reap()


def _wait_orphan(pid: int) -> int:
    """The wait status of ``pid``, a zygote's child that came to us when its zygote ended (it comes
    once the zygote has ended, which may be just after its channel closed)."""
    for _ in range(1000):
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:
            time.sleep(0.001)
    return 70 << 8


def _read_all(sock: socket.socket, n: int) -> bytes:
    data = b""
    try:
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data


def _start(req: dict, chan: int, status_w: int, uid: int | None, nested: bool, folder: str | None,
           prepared: tuple | None = None):
    """In a fresh child (of the server or of a zygote): its confinement, then the learner's code."""
    if nested:
        _namespaced_child(req, chan, status_w, uid, prepared)
    os.close(status_w)
    if req.get("pid_namespace"):  # System V IPC objects and the mounts of its own
        _check(_LIBC.unshare(CLONE_NEWNS | CLONE_NEWIPC), "unshare")
        _private_tmp(req.get("limits", {}))
    else:
        tempfile.tempdir = folder
    _run_learner(req, chan, uid, prepared)


def _spawn_zygote(req: dict) -> socket.socket | None:
    """A zygote for ``req``: a child of the server that makes what every child of the request makes
    before learner files arrive (``_prepared``: the drivers, the watch's refusals) once, then forks
    each child from there. A child of the server made them again each time: the refusals write to
    thousands of the server's pages (kernels in the dispatcher's tables, functions' code), each
    copied on write, about 12 ms of a 15 ms child. No learner code ever runs in a zygote; its
    children become learners exactly as the server's would. None when it could not start."""
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            _zygote(req, theirs.detach())
        finally:
            os._exit(70)
    theirs.close()
    if _read_all(ours, 1) != b"R":  # it could not make them: the server's children do, each for itself
        ours.close()
        _reap()
        return None
    return ours


def _zygote(req: dict, fd: int):
    _close_fds_but(fd)  # the server's control channel and other zygotes' are not ours
    sock = socket.socket(fileno=fd)
    try:
        prepared = _prepared(req)
    except Exception:  # noqa: BLE001 - each child makes them again, and reports what fails
        os._exit(0)
    gc.collect()
    gc.freeze()
    sock.sendall(b"R")
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(sock, 4096, 2)
        except OSError:
            os._exit(0)
        if not data or len(fds) != 2:
            os._exit(0)
        spec, (chan, status_w) = json.loads(data), fds
        pid = os.fork()
        if pid == 0:
            try:
                sock.close()
                _start(req, chan, status_w, spec["uid"], spec["nested"], None, prepared)
            finally:
                os._exit(70)
        os.close(chan)
        os.close(status_w)
        sock.sendall(b"F" + struct.pack("<i", pid))
        _, status = os.waitpid(pid, 0)
        sock.sendall(struct.pack("<i", status))
        _reap()  # a child that was only stopped (``PTRACE_TRACEME``) when it was reported, killed since


HUGE_PAGES_AFTER = 20  # children served before the server's heap moves to huge pages


def _huge_pages():
    """Back the server's heap with huge pages where the kernel can (``MADV_COLLAPSE``, Linux 6.1+):
    a fork then copies one entry per 2 MiB instead of 512, and a child's fork and exit cost about
    half (12.5 against 5.6 ms for both, measured on a 2-core VM). A child's first write into a huge
    page splits it and copies 4 KiB, as before. The move costs about 0.4 s, once: a server does it
    when it has served enough children to gain that back (``HUGE_PAGES_AFTER``)."""
    madvise = _LIBC.madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    huge = 2 << 20
    try:
        with open("/proc/self/maps") as f:
            regions = [line.split() for line in f]
    except OSError:
        return
    for fields in regions:
        if fields[1].startswith("rw") and (len(fields) == 5 or fields[5] == "[heap]"):  # anonymous memory
            start, end = (int(a, 16) for a in fields[0].split("-"))
            start = -(-start // huge) * huge
            end = end // huge * huge
            if end > start:
                madvise(start, end - start, 25)  # MADV_COLLAPSE; where it fails, nothing changes


def main():
    ctl = socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    _prctl(PR_SET_DUMPABLE, 0)  # no process of our uid may read or write our memory or descriptors
    uid_base = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--uid-base=")), None)
    uid_count = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--uid-count=")), UIDS_PER_SLOT)
    scratch = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--scratch=")), None)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)  # whatever a child leaves running comes back to us
    torch.set_num_threads(1)
    # The meta device's kernels load on first use (seconds): once here, not in every child.
    torch.tanh(torch.empty(1, 1, device="meta") @ torch.empty(1, 1, device="meta"))
    _registered_decompositions()  # what every child's watch looks up, computed once
    if "--without-autograd" in sys.argv:  # after what loads sympy, whose differentiation it takes out too
        _autograd_off()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # Every object made so far is shared with each child until written to: a collection in a child
    # must not walk them (it writes to each one's header, copying most of the heap, page by page).
    gc.collect()
    gc.freeze()
    server = _Server(ctl, None if "--ns" in sys.argv else scratch, uid_base, uid_count)
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
