"""The forbidden-API guard. Static (``grader.guard.violations``): sources that hide the forbidden call
behind aliases, ``from`` imports, helpers and methods. Run time (``Watch`` in the worker): every
route to a forbidden kernel, for every guarded topic, through the sandbox."""
from __future__ import annotations

import ast
import contextlib
import dataclasses
import os
import re

import pytest
import torch

from grader import grade
from grader.guard import violations
from grader.sandbox import LearnerError, Sandbox, isolation
from grader.plugin import runtime_rules
from tests.grader import classroom as c

ROOT = c.ROOT

CE = ["torch.nn.functional.cross_entropy", "torch.nn.functional.log_softmax", ".log_softmax", ".softmax",
      "torch.autograd", ".backward"]


def found(src: str, forbidden=CE) -> dict[str, list[str]]:
    return violations({"m.py": src}, forbidden)


def test_module_alias():
    src = "import torch.nn.functional as F\n\ndef loss(x, t):\n    return F.cross_entropy(x, t)\n"
    assert found(src) == {"loss": ["torch.nn.functional.cross_entropy"]}


def test_from_import_with_and_without_alias():
    src = ("from torch.nn.functional import cross_entropy as ce, log_softmax\n\n"
           "def a(x, t):\n    return ce(x, t)\n\ndef b(x):\n    return log_softmax(x, -1)\n\n"
           "def c(x):\n    return x.exp()\n")
    assert found(src) == {"a": ["torch.nn.functional.cross_entropy"], "b": ["torch.nn.functional.log_softmax"]}


def test_whole_module_by_prefix_and_from_import_of_a_submodule():
    src = ("import torch\nfrom torch import autograd\n\n"
           "def g(y, x):\n    return autograd.grad(y, x)\n\n"
           "def j(f, x):\n    return torch.autograd.functional.jacobian(f, x)\n")
    assert found(src) == {"g": ["torch.autograd"], "j": ["torch.autograd"]}


def test_helpers_pass_their_violations_to_every_caller():
    src = ("import torch.nn.functional as F\n\n"
           "def _inner(x):\n    return F.log_softmax(x, -1)\n\n"
           "def _middle(x):\n    return _inner(x) * 2\n\n"
           "def loss(x, t):\n    return -_middle(x).gather(-1, t[:, None]).mean()\n\n"
           "def unrelated(x):\n    return x + 1\n")
    got = found(src)
    assert set(got) == {"_inner", "_middle", "loss"}
    assert all(v == ["torch.nn.functional.log_softmax"] for v in got.values())


def test_tensor_methods_on_names_and_on_computed_values():
    src = ("def a(loss):\n    loss.backward()\n\n"
           "def b(x):\n    x.sum().backward()\n\n"
           "def c(x):\n    return x.log_softmax(-1)\n\n"
           "def d(x):\n    return (x * 2).softmax(dim=-1)\n")
    assert found(src) == {"a": ["backward"], "b": ["backward"], "c": ["log_softmax"], "d": ["softmax"]}


def test_module_level_use_and_methods_of_classes():
    src = ("import torch.nn.functional as F\n\nCE = F.cross_entropy\n\n"
           "class Model:\n    def loss(self, x):\n        return x.softmax(-1)\n")
    assert found(src) == {"*": ["torch.nn.functional.cross_entropy"], "Model": ["softmax"]}


def test_the_learners_own_helpers_named_like_methods_are_not_flagged():
    src = ("def softmax(x):\n    e = x.exp()\n    return e / e.sum(-1, keepdim=True)\n\n"
           "def log_softmax(x):\n    return x - x.exp().sum(-1, keepdim=True).log()\n\n"
           "def loss(x, t):\n    return -log_softmax(x).gather(-1, t[:, None]).mean() + 0 * softmax(x).sum()\n\n"
           "class Net:\n    def softmax(self, x):\n        return softmax(x)\n\n"
           "    def forward(self, x):\n        return self.softmax(x)\n\n"
           "def backward(h):\n    return h\n\n"
           "def bptt(h):\n    return backward(h)\n")
    assert found(src) == {}


def test_similar_names_strings_and_comments_are_not_flagged():
    src = ("import torch\n# torch.nn.functional.cross_entropy would be easier\n\n"
           "def a(x):\n    return torch.nn.functional.cross_entropy_with_my_twist(x)\n\n"
           "def b():\n    return 'torch.autograd.grad'\n\n"
           "def c(F, x):\n    return F.relu(x)\n\n"
           "def d(x):\n    return torch.autogradient(x)\n")
    assert found(src) == {}


def test_several_files_and_a_syntax_error():
    files = {"m.py": "from helpers import *\n\ndef a(x):\n    return x\n",
             "helpers.py": "import torch\n\ndef h(y, x):\n    return torch.autograd.grad(y, x)\n",
             "broken.py": "def (:\n"}
    got = violations(files, CE)  # the broken file is left to the import to report
    assert got["h"] == ["torch.autograd"]


def test_nothing_forbidden_nothing_found():
    src = "import torch.nn.functional as F\n\ndef loss(x, t):\n    return F.cross_entropy(x, t)\n"
    assert found(src, []) == {}


def test_sources_too_deep_for_the_parser_are_left_to_the_import_or_refused_with_a_message():
    for src in ["x = " + "(" * 100000 + ")" * 100000, "x = " + "-" * 200000 + "1", "x = 1\0\n",
                "x = " + "[" * 5000 + "]" * 5000]:
        try:
            got = violations({"m.py": src}, CE)
        except LearnerError as e:
            assert e.kind == "import" and "could not be analysed" in e.message
        else:
            assert got == {}


# ---- run time: every route to a forbidden operator, for every guarded topic ----
#
# hostile/forbidden/<topic>.py holds routes to that topic's forbidden kernels and hostile/forbidden/
# autograd.py routes to the autograd engine; each ``via_*`` function, appended to the topic's
# solution, replaces the graded function (TARGET) and is called through the sandbox with the
# topic's rules from grading.toml.

FORBIDDEN = os.path.join(c.HOSTILE, "forbidden")
CONFIG = grade.load_config()


def _routes(path: str) -> list[str]:
    with open(path) as f:
        return [n.name for n in ast.parse(f.read()).body if isinstance(n, ast.FunctionDef) and n.name.startswith("via_")]


def _target(topic: str) -> str:
    with open(os.path.join(FORBIDDEN, f"{topic}.py")) as f:
        return re.search(r'^TARGET = "(\w+)"', f.read(), re.M).group(1)


def _functions(topic: str) -> list[str]:
    with open(os.path.join(ROOT, "solutions", topic, f"{topic}.py")) as f:
        return [n.name for n in ast.parse(f.read()).body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]


def _unwatched(topic: str) -> list[str]:
    """A function of the topic whose gradient is not written by hand, when the routes' TARGET is
    one: the dispatch mode watches only those, the refusing kernels watch everything."""
    hand = CONFIG[topic].get("hand_gradients", [])
    if "*" in hand or _target(topic) not in hand:
        return []
    return [next(f for f in _functions(topic) if f not in hand)]


GUARDED = [t for t in CONFIG if CONFIG[t].get("forbidden_ops") or CONFIG[t].get("hand_gradients")]
ROUTES = [(t, f, r, None) for t in GUARDED for f in [t, "autograd"][:2 if CONFIG[t].get("hand_gradients") else 1]
          for r in _routes(os.path.join(FORBIDDEN, f"{f}.py"))]
ROUTES += [(t, t, r, fn) for t in GUARDED for fn in _unwatched(t) for r in _routes(os.path.join(FORBIDDEN, f"{t}.py"))]


@pytest.fixture(scope="module")
def box():
    b = Sandbox(slot=3980 + os.getpid() % 9, timeout=10)
    # ctypes allowed (graded, it is refused: test_ctypes_is_refused): these routes test the watch behind it
    b.limits = dataclasses.replace(b.limits, ctypes=True)
    yield b
    b.kill()


@contextlib.contextmanager
def _opened(box, topic: str, extra: str = "", driver: str | None = None):
    """The topic's solution with ``extra`` appended, open in the sandbox for the ``with`` block."""
    learner = _open(box, topic, extra, driver)
    try:
        yield learner
    finally:
        learner.close()


def _open(box, topic: str, extra: str = "", driver: str | None = None):
    with open(os.path.join(ROOT, "solutions", topic, f"{topic}.py")) as f:
        source = f.read() + "\n\n" + extra
    return box.open(topic, {f"{topic}.py": source}, driver=driver, forbidden=runtime_rules(topic))


def test_every_guarded_topic_has_routes():
    assert set(GUARDED) >= {"value", "bigram", "cross_entropy", "rnn", "bptt", "lstm", "norms"}
    assert {t for t, _, _, _ in ROUTES} == set(GUARDED)
    assert {t for t, _, _, fn in ROUTES if fn} >= {"bigram", "norms"}  # their TARGETs are hand gradients


@pytest.mark.parametrize("topic, kind, route, function", ROUTES,
                         ids=[f"{t}-{k}-{r}" + (f"-in-{fn}" if fn else "") for t, k, r, fn in ROUTES])
def test_every_route_to_a_forbidden_operator_is_refused(box, topic, kind, route, function):
    if route == "via_a_thread_started_below_the_watch" and isolation() != "bwrap":
        pytest.skip("a thread is seen by the pid namespace's last pid: only a sandbox of its own has one")
    with open(os.path.join(FORBIDDEN, f"{kind}.py")) as f:
        routes = f.read()
    hand = CONFIG[topic].get("hand_gradients", [])
    target = hand[0] if kind == "autograd" and hand != ["*"] else _target(topic)  # a hand-gradient function
    target = function or target
    with _opened(box, topic, routes + f"\n\n{target} = {route}\n") as learner:
        with pytest.raises(LearnerError) as e:
            learner.call(target)
        assert e.value.kind == "forbidden", e.value.message
        assert "no credit" in e.value.message
        assert any(w in e.value.message for w in ("write", "plain Python", "switches off the check", "another program")), e.value.message


@pytest.mark.parametrize("call, named", [("F.cross_entropy(x, t)", "torch.nn.functional.cross_entropy"),
                                         ("torch._C._nn.cross_entropy_loss(x, t)", "aten.cross_entropy_loss")])
def test_a_refusal_names_the_operator_and_the_function_that_reached_it(box, call, named):
    extra = f"import torch.nn.functional as F\n\ndef cross_entropy(x, t, **kw):\n    return {call}\n"
    with _opened(box, "cross_entropy", extra) as learner:
        with pytest.raises(LearnerError) as e:
            learner.call("cross_entropy", torch.randn(2, 3), torch.tensor([0, 1]))
        assert f"uses {named}," in e.value.message, e.value.message
        assert "cross_entropy.py, line" in e.value.message and call in e.value.message
        x = torch.randn(2, 3, dtype=torch.float64)  # what is written by hand still runs, in the same worker
        assert torch.allclose(learner.call("log_softmax", x), torch.log_softmax(x, -1))


def test_a_graph_recorded_outside_the_suites_gradient_checks_is_refused(box):
    """norms: the blocks may be differentiated by autograd, by the suite's drivers; a graph that a
    forward records when called on its own is refused (kept, its nodes could be called later in a
    hand-written gradient, making no node of their own), and the backward may not use it either."""
    extra = ("_SAVED = []\n\n"
             "def pre_norm_block(x, *a, **k):\n"
             "    x = x.clone().requires_grad_(True)\n"
             "    _SAVED[:] = [x, (x * x).sum()]\n"
             "    return torch.autograd.grad(_SAVED[1], x, retain_graph=True)[0]\n\n"
             "def layer_norm_backward(*a):\n"
             "    return torch.autograd.grad(_SAVED[1], _SAVED[0])[0]\n")
    with _opened(box, "norms", extra) as learner:
        x = torch.randn(3, dtype=torch.float64)
        with pytest.raises(LearnerError) as e:
            learner.call("pre_norm_block", x)
        assert e.value.kind == "forbidden" and "outside the suite's own gradient checks" in e.value.message
        with pytest.raises(LearnerError) as e:
            learner.call("layer_norm_backward")
        assert e.value.kind == "forbidden" and "autograd" in e.value.message


def test_a_graph_recorded_at_import_is_a_failed_import(box):
    """A module that records graphs when imported (to call their nodes later, in a hand-written
    gradient, where calling a node makes none) does not import in a topic of hand-written gradients."""
    extra = "_x = torch.ones(3, requires_grad=True)\n_GRAPH = (_x * _x).sum()\n"
    with pytest.raises(LearnerError) as e:
        _open(box, "norms", extra)
    assert e.value.kind == "import" and "records a graph" in e.value.message, e.value.message


def test_no_operator_records_a_graph_in_a_child_of_the_server_without_autograd(box):
    """Where a topic's gradients are written by hand, the learner's functions run in children of a
    server whose dispatcher has no autograd kernel left: code no check sees (no rules at all here)
    turns gradients on and records nothing, and so has nothing to differentiate."""
    source = ("import torch\n\ndef graph(x):\n    with torch.enable_grad():\n"
              "        y = x.detach().requires_grad_()\n        z = (y * y.sin()).sum()\n"
              "    return torch.tensor([float(z.requires_grad), float(z.grad_fn is not None)])\n\n"
              "def differentiate(x):\n    with torch.enable_grad():\n        y = x.detach().requires_grad_()\n"
              "        return torch.autograd.grad((y * y).sum(), y)[0]\n")
    for server, recorded in ((box, [1.0, 1.0]), (box.without_autograd(), [0.0, 0.0])):
        learner = server.open("plain", {"plain.py": source})
        try:
            assert learner.call("graph", torch.ones(3)).tolist() == recorded
            if not recorded[0]:
                with pytest.raises(LearnerError) as e:
                    learner.call("differentiate", torch.ones(3))
                assert e.value.kind == "raised" and "does not require grad" in e.value.message, e.value.message
        finally:
            learner.close()


@pytest.mark.parametrize("route, name", [("getattr(y, 'back' + 'ward')()", "backward"),
                                         ("getattr(torch.autograd, 'gr' + 'ad')(y, x)", "grad"),
                                         ("torch.autograd.backward([y])", "backward"),
                                         ("x.requires_grad_()", "requires_grad_")])
def test_autograd_named_in_a_hand_written_gradient_where_there_is_none(box, route, name):
    """In a child of the server without autograd, a hand-written gradient runs without the watch's
    modes (there is no graph to keep it from): a call of autograd's entry points, by whatever name,
    is still refused with the name of what it used, rather than autograd's own complaint."""
    extra = ("def layer_norm_backward(x, *a):\n"
             "    x = x.detach()\n"
             "    x.requires_grad = True\n"
             "    with torch.enable_grad():\n"
             "        y = (x * x).sum()\n"
             f"        {route}\n"
             "    return x, x, x\n")
    with _opened(box.without_autograd(), "norms", extra) as learner:
        x = torch.randn(2, 3, dtype=torch.float64)
        with pytest.raises(LearnerError) as e:
            learner.call("layer_norm_backward", x, [3], None, None, 1e-5, x)
        assert e.value.kind == "forbidden" and f"uses PyTorch's autograd ({name})" in e.value.message, e.value.message
        assert learner.call("layer_norm", x, [3]).shape == (2, 3)  # what is not a hand-written gradient runs


def test_the_child_that_differentiates_forwards_runs_no_hand_written_gradient(box):
    """The drivers that differentiate a topic's forwards run in a child of their own, with autograd:
    the functions written by hand are not there for them, and the learner's own calls never go there."""
    learner = box.open("norms", {"norms.py": open(os.path.join(ROOT, "solutions", "norms", "norms.py")).read()},
                       driver="def backward(m, *a):\n    return m.layer_norm_backward(*a)\n\n"
                              "def forward(m, *a):\n    return m.layer_norm(*a)\n",
                       forbidden=runtime_rules("norms"), graphs=True)
    x, w = torch.randn(2, 3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    try:
        assert learner.call("forward", x, [3], driver=True).shape == (2, 3)
        with pytest.raises(LearnerError) as e:
            learner.call("backward", x, [3], w, w, 1e-5, x, driver=True)
        assert e.value.kind == "forbidden" and "does not run where autograd does" in e.value.message, e.value.message
        with pytest.raises(LearnerError) as e:
            learner.call("layer_norm", x, [3])
        assert e.value.kind == "internal", e.value.message
    finally:
        learner.close()



def test_a_hand_written_gradient_may_print_its_tensors(box):
    """Printing a tensor switches PyTorch's modes off for the formatting: there it keeps the watch's
    modes on instead, and a student's debug print is no refusal."""
    extra = ("_by_hand = layer_norm_backward\n\n"
             "def layer_norm_backward(x, *a):\n"
             "    print(x, repr(x * 2), f'{x.sum():.3f}', str(x[0]))\n"
             "    return _by_hand(x, *a)\n")
    with _opened(box, "norms", extra) as learner:
        x, g = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
        dx = learner.call("layer_norm_backward", x, [3], None, None, 1e-5, g)[0]
        xr = x.clone().requires_grad_(True)
        (want,) = torch.autograd.grad(torch.nn.functional.layer_norm(xr, [3]), xr, g)
        assert torch.allclose(dx, want)


@pytest.mark.parametrize("off", ["torch.randn(3).requires_grad_(False)", "torch.nn.Linear(2, 2).requires_grad_(False)",
                                 "torch.randn(3).requires_grad_(requires_grad=False)"])
def test_a_hand_written_gradient_may_switch_gradients_off_but_not_on(box, off):
    extra = ("_by_hand = layer_norm_backward\n\n"
             "def layer_norm_backward(x, *a):\n"
             f"    {off}\n"
             "    return _by_hand(x, *a)\n\n"
             "def rms_norm_backward(*a):\n"
             "    torch.randn(3).requires_grad_(False)\n"
             "    return torch.randn(3).requires_grad_()\n")
    with _opened(box, "norms", extra) as learner:
        x, g = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
        learner.call("layer_norm_backward", x, [3], None, None, 1e-5, g)
        with pytest.raises(LearnerError) as e:
            learner.call("rms_norm_backward")
        assert e.value.kind == "forbidden" and "requires_grad_" in e.value.message


@pytest.mark.parametrize("later", ["gc.callbacks.append(job); gc.set_threshold(1)", "sys.setprofile(job)"],
                         ids=["gc callback", "profile function"])
def test_code_left_to_run_after_a_call_changes_neither_its_result_nor_the_next_call(box, later):
    """A hand-written gradient that returns empty tensors and leaves code to fill them in once the
    watch is off (when the call's alarm is cancelled): the result is taken while the watch is on, and
    the code left behind is taken down with the call."""
    extra = ("import gc, signal, sys\n\n"
             "def layer_norm_backward(x, *a):\n"
             "    out = torch.zeros_like(x)\n"
             "    def job(*_):\n"
             "        if signal.getitimer(signal.ITIMER_REAL)[0] == 0.0:\n"
             "            out.fill_(7.0)\n"
             f"    {later}\n"
             "    return out, None, None\n\n"
             "def rms_norm_backward(*a):\n"
             "    return torch.tensor([float(len(gc.callbacks)), float(sys.getprofile() is not None)])\n")
    with _opened(box, "norms", extra) as learner:
        x, g = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
        dx = learner.call("layer_norm_backward", x, [3], None, None, 1e-5, g)[0]
        assert dx.eq(0).all(), dx
        assert learner.call("rms_norm_backward").tolist() == [0.0, 0.0]  # nothing of it left


_AUTOGRAD = ("\n\ndef _grads(x, *a):\n"
             "    with torch.enable_grad():\n"
             "        y = x.detach().requires_grad_()\n"
             "        return torch.autograd.grad((y.tanh() * y).sum(), y)[0], None, None\n")
_AUTOGRAD_BY_HAND = _AUTOGRAD + "\nlayer_norm_backward = _grads\n"


def _backward_after_a_forward(box, extra: str, driver: str | None = None):
    """norms with ``extra``: ``layer_norm`` called (autograd allowed there), then ``layer_norm_backward``
    on the same ``x``: its result, or the ``LearnerError`` it raised."""
    with _opened(box, "norms", extra, driver) as learner:
        x = torch.linspace(-1.0, 2.0, 6, dtype=torch.float64).reshape(2, 3)  # the same every time
        learner.call("layer_norm", x, [3])
        try:
            return learner.call("layer_norm_backward", x, [3], None, None, 1e-5, torch.ones_like(x))
        except LearnerError as e:
            return e


def _refused(result, words: str) -> None:
    assert isinstance(result, LearnerError), result
    assert result.kind == "forbidden" and words in result.message, result.message


def _reached_through_frames(code: str) -> str:
    """A forward (autograd allowed there) that reaches the worker's module through the frame that
    called it and runs ``code`` with ``W`` its globals: what learner code can always do in its process."""
    return ("import sys\n\n_forward = layer_norm\n\n"
            "def layer_norm(*a, **k):\n"
            "    f = sys._getframe(1)\n"
            "    while f is not None and 'Watch' not in f.f_globals:\n"
            "        f = f.f_back\n"
            "    W = f.f_globals\n"
            f"    {code}\n"
            "    return _forward(*a, **k)\n")


@pytest.mark.parametrize("code", [
    "W['Watch'].by_hand = W['contextlib'].contextmanager(lambda self: (yield))",  # the watch switched off
    "W['Watch'].call = W['contextlib'].contextmanager(lambda self, fn: (yield))",
], ids=["by_hand", "call"])
def test_a_watch_switched_off_from_a_forward_still_refuses_autograd_in_a_hand_gradient(box, code):
    """The watch's own code can be swapped by learner code in a call where autograd is allowed; the
    check that follows every call of a hand-written gradient leans on nothing it can reach."""
    _refused(_backward_after_a_forward(box, _reached_through_frames(code) + _AUTOGRAD_BY_HAND), "autograd")


def test_a_hand_written_gradient_cannot_pass_for_a_drivers_call(box):
    """Drivers (the suite's gradient checks) may record graphs: learner code that rewrites how the
    worker reads its messages, so that a call of a hand-written gradient reads as a driver's (one that
    it put in the driver module), is not believed: the byte before each message says whose call it is."""
    code = ("wire = W['wire']\n"
            "    read = wire.read_message\n"
            "    g = f\n"
            "    while g is not None and 'driver' not in g.f_locals:\n"
            "        g = g.f_back\n"
            "    drv = g.f_locals['driver']\n"
            "    drv.layer_norm_backward = lambda m, *a: _grads(*a)\n"
            "    def forged(*args, **kwargs):\n"
            "        msg = read(*args, **kwargs)\n"
            "        if msg.get('fn') == 'layer_norm_backward':\n"
            "            msg['driver'] = True\n"
            "        return msg\n"
            "    wire.read_message = forged")
    got = _backward_after_a_forward(box, _reached_through_frames(code) + _AUTOGRAD,
                                    driver="def helper(m, x):\n    return x\n")
    right = _backward_after_a_forward(box, "")  # the solution's own layer_norm_backward, the same inputs
    assert isinstance(got, LearnerError) or torch.equal(got[0], right[0]), "the driver module's function answered"


def test_a_thread_started_by_a_c_library_at_import_is_a_failed_import(box):
    """A thread made with pthread_create (through ctypes) runs outside every check of Python's and
    has an autograd count of its own: in a topic of hand-written gradients, a module may not leave one
    running (the kernel's list of the process's threads tells)."""
    extra = ("import ctypes as _ct, time as _time\n"
             "_CB = _ct.CFUNCTYPE(_ct.c_void_p, _ct.c_void_p)(lambda _: _time.sleep(30))\n"
             "_ct.CDLL(None).pthread_create(_ct.byref(_ct.c_ulong()), None, _CB, None)\n")
    with pytest.raises(LearnerError) as e:
        _open(box, "norms", extra)
    assert e.value.kind == "import" and "leaves a thread running" in e.value.message, e.value.message


def test_autograd_between_calls_is_refused(box):
    """A function of Python's that the worker calls between calls (to read the next call's message),
    replaced from a forward: it runs the learner's code outside any call, where it could differentiate
    the next call's inputs (found through the frames) for a hand-written gradient to return."""
    code = ("json = W['wire'].json\n"
            "    loads = json.loads\n"
            "    def spy(*args, **kwargs):\n"
            "        with torch.enable_grad():\n"
            "            y = torch.ones(2).requires_grad_()\n"
            "            torch.autograd.grad((y * y).sum(), y)\n"
            "        return loads(*args, **kwargs)\n"
            "    json.loads = spy")
    _refused(_backward_after_a_forward(box, _reached_through_frames(code)), "between calls")


def test_an_audit_hook_of_the_learners_is_refused(box):
    extra = ("import sys\n\n"
             "def layer_norm_backward(*a):\n"
             "    sys.addaudithook(lambda event, args: None)\n")
    with _opened(box, "norms", extra) as learner:
        with pytest.raises(LearnerError) as e:
            learner.call("layer_norm_backward")
        assert e.value.kind == "forbidden" and "addaudithook" in e.value.message


def test_a_hand_written_gradient_may_use_torch_distributions(box):
    """Categorical's lazy properties switch gradient mode on over tensors that do not require grad:
    nothing is recorded, nothing is refused."""
    extra = ("_by_hand = layer_norm_backward\n\n"
             "def layer_norm_backward(x, *a):\n"
             "    d = torch.distributions.Bernoulli(probs=torch.full((3,), 0.25, dtype=x.dtype))\n"
             "    d.log_prob(torch.ones(3, dtype=x.dtype)); d.entropy()\n"
             "    return _by_hand(x, *a)\n")
    with _opened(box, "norms", extra) as learner:
        x, g = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
        learner.call("layer_norm_backward", x, [3], None, None, 1e-5, g)


def test_helpers_that_allowed_operators_share_stay_usable(box):
    """The Python meta kernels of allowed losses share helpers with forbidden decompositions
    (``apply_loss_reduction``): only what forbidden code alone uses is refused."""
    extra = ("_by_hand = log_softmax\n\n"
             "def log_softmax(x, dim=-1):\n"
             "    m = torch.empty(3, device='meta')\n"
             "    torch.nn.functional.mse_loss(m, m); torch.nn.functional.smooth_l1_loss(m, m)\n"
             "    return _by_hand(x, dim)\n")
    with _opened(box, "cross_entropy", extra) as learner:
        x = torch.randn(2, 3, dtype=torch.float64)
        torch.testing.assert_close(learner.call("log_softmax", x), torch.log_softmax(x, -1))

def test_a_backward_pass_over_a_graph_built_earlier_is_refused_at_the_operator_level():
    """The engine called directly (no torch function names it): its backward operators run on this
    thread (CPU) inside a graph task, under the watch."""
    from grader.worker import Forbidden, Watch
    watch = Watch(["autograd:by_hand"])
    x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    y = (x.tanh() * x).sum()
    with pytest.raises(Forbidden):
        with watch.call("by_hand"):
            torch._C._ImperativeEngine().run_backward((y,), (torch.ones((), dtype=y.dtype),), False, False, (x,),
                                                      False, False)
    assert "autograd" in watch.refused
    watch.refused = None
    with watch.call("other"):  # outside the functions whose gradient is written by hand, autograd works
        (g,) = torch.autograd.grad(y, x)
    assert watch.refused is None and torch.allclose(g, x.tanh() + x * (1 - x.tanh() ** 2))


@pytest.mark.parametrize("reach", ["frames", "mode stack"])
def test_forbidden_kernels_refuse_even_when_the_live_watch_is_switched_off(box, reach):
    """The watch lives in the learner's process: code that walks the caller's frames, or reads the
    dispatch mode off PyTorch's stack, reaches it. Switching its refusals off still leaves every
    kernel of a forbidden operator refusing on its own, and nothing left to undo them."""
    find = ("    f = sys._getframe(1)\n"
            "    while 'watch' not in f.f_locals:\n"
            "        f = f.f_back\n"
            "    watch = f.f_locals['watch']\n") if reach == "frames" else \
        "    watch = torch._C._get_dispatch_stack_at(0).watch\n"
    extra = ("import sys\n\n"
             "def cross_entropy_grad(*a, **k):\n" + find +
             "    type(watch).refuse = lambda self, what: None\n"
             "    for name in [n for n in vars(watch) if 'librar' in n]:\n"
             "        setattr(watch, name, None)\n"
             "    return torch.ops.aten._log_softmax.default(torch.randn(2, 3), 1, False)\n")
    with _opened(box, "cross_entropy", extra) as learner:
        with pytest.raises(LearnerError) as e:
            learner.call("cross_entropy_grad")
        assert e.value.kind == "forbidden" and "aten._log_softmax" in e.value.message, e.value.message


def test_autograd_stays_refused_when_the_live_watch_is_reached_through_the_mode_stack(box):
    """The watch runs in the learner's process, which can read it off PyTorch's mode stack and tell it
    that autograd is allowed again; autograd's own count of the nodes it made still tells."""
    extra = ("def cross_entropy_grad(*a, **k):\n"
             "    watch = torch._C._get_dispatch_stack_at(0).watch\n"
             "    type(watch).refuse = lambda self, what: None\n"
             "    watch.strict = False\n"
             "    with torch.enable_grad():\n"
             "        x = torch.randn(2, 3, requires_grad=True)\n"
             "        return torch.autograd.grad((x * x).sum(), x)[0]\n")
    with _opened(box, "cross_entropy", extra) as learner:
        with pytest.raises(LearnerError) as e:
            learner.call("cross_entropy_grad")
        assert e.value.kind == "forbidden", e.value.message
