"""The worker's side-effect check: a learner function that changes one of its inputs in place fails
that call with a message naming the argument, whatever the topic; a function that leaves its inputs
alone (NaNs included) is not flagged."""
from __future__ import annotations

import os

import pytest
import torch

from grader.sandbox import LearnerError, Sandbox

SOURCE = '''
import torch


def center(x, m=None):
    x -= x.mean()
    return x


def transpose(x):
    return x.transpose_(0, 1).sum()


def pure(x, xs, scale=2.0):
    return (x - x.mean()) * scale + xs[0]


def nested(xs):
    xs[1].mul_(2)
    return 1


def keyword(x, *, state):
    state["h"].zero_()
    return x


def appends(words):
    words.append("z")
    return len(words)


def nan_in_nan_out(x):
    return x.sum()


def sets_grad(x):
    x.grad = torch.ones_like(x)
    return x.sum()


def float64_from_now_on(x):
    torch.set_default_dtype(torch.float64)
    return x.sum()


def no_autograd_from_now_on(x):
    torch.set_grad_enabled(False)
    return x.sum()


def on_meta_from_now_on(x):
    torch.set_default_device("meta")
    return x.sum()


def deeper_from_now_on(x):
    import sys
    sys.setrecursionlimit(100000)  # a recursive topological sort's "fix"
    return x.sum()


def zeros_like_default():
    return torch.zeros(2)
'''


@pytest.fixture(scope="module")
def learner():
    box = Sandbox(slot=3980 + os.getpid() % 9, timeout=10)
    yield box.open("inplace", {"inplace.py": SOURCE})
    box.kill()


def _x():
    return torch.arange(6, dtype=torch.float64).reshape(2, 3)


@pytest.mark.parametrize("fn, args, kwargs, named, how", [
    ("center", [_x()], {}, "`x`", "its values changed"),
    ("transpose", [_x()], {}, "`x`", "its shape went from (2, 3) to (3, 2)"),
    ("nested", [[_x(), _x()]], {}, "`xs[1]`", "its values changed"),
    ("keyword", [_x()], {"state": {"h": _x()}}, "`state['h']`", "its values changed"),
    ("appends", [["a", "b"]], {}, "`words`", "its items changed"),
    ("sets_grad", [_x()], {}, "`x`", "its .grad or requires_grad was set"),
])
def test_an_input_changed_in_place_fails_the_call_naming_the_argument(learner, fn, args, kwargs, named, how):
    with pytest.raises(LearnerError) as e:
        learner.call(fn, *args, **kwargs)
    assert e.value.kind == "side_effect"
    assert e.value.message.startswith(f"`{fn}` changed its argument {named} in place ({how})"), e.value.message
    assert "x = x - m" in e.value.message


def test_inputs_left_alone_are_not_flagged(learner):
    x = _x()
    torch.testing.assert_close(learner.call("pure", x, [x, x], scale=3.0), (x - x.mean()) * 3.0 + x)
    assert learner.call("nan_in_nan_out", torch.tensor([float("nan"), 1.0])).isnan()
    assert learner.call("center", torch.zeros(2, 3)).eq(0).all()  # changed in place, but to the same values


@pytest.mark.parametrize("fn, setting", [("float64_from_now_on", "default dtype (torch.float32 -> torch.float64)"),
                                         ("no_autograd_from_now_on", "gradient mode (torch.set_grad_enabled) (True -> False)"),
                                         ("on_meta_from_now_on", "default device (cpu -> meta)"),
                                         ("deeper_from_now_on", "recursion limit (sys.setrecursionlimit) (1000 -> 100000)")])
def test_a_global_setting_changed_fails_the_call_and_is_put_back(learner, fn, setting):
    """PyTorch's global settings, and Python's recursion limit, are the caller's: a function that leaves
    the default dtype, the default device or autograd changed breaks the rest of the student's program
    (and a recursion limit raised past what the C stack holds crashes it on a deep enough graph)."""
    with pytest.raises(LearnerError) as e:
        learner.call(fn, _x())
    assert e.value.kind == "side_effect"
    owner = "Python's" if "recursion" in setting else "PyTorch's"
    assert e.value.message.startswith(f"`{fn}` changed {owner} {setting} for the whole program"), e.value.message
    made = learner.call("zeros_like_default")  # the next call finds the settings as they were
    assert made.dtype == torch.float32 and made.device.type == "cpu"


GRADIENTS = '''
import torch


def same_tensor_twice(x):
    g = x * 2
    return g, g


def halves_of_one(x):
    g = torch.cat([x, x]) * 2
    return g[:2], g[2:]


def the_argument_itself(x, d_out):
    return x * d_out, d_out


def fresh(x, d_out):
    return x * d_out, d_out.clone()
'''


@pytest.mark.parametrize("fn, args, shared", [
    ("same_tensor_twice", 1, "result[0] and result[1] in the same memory"),
    ("the_argument_itself", 2, "result[1] in the memory of its argument d_out"),
    ("halves_of_one", 1, None),  # two views of one tensor, no element in common
    ("fresh", 2, None),
])
def test_gradients_written_by_hand_are_tensors_of_their_own(fn, args, shared):
    """A gradient that is another returned gradient (``db_ih`` and ``db_hh`` one tensor) or an
    argument itself (``dbias`` the caller's ``d_out``) fails its call: an optimizer's in-place step on
    one would change the other."""
    box = Sandbox(slot=3980 + os.getpid() % 9, timeout=10)
    try:
        learner = box.open("grads", {"grads.py": GRADIENTS}, forbidden=["autograd:*"])
        inputs = [torch.arange(2.0), torch.ones(2)][:args]
        if shared is None:
            assert all(isinstance(t, torch.Tensor) for t in learner.call(fn, *inputs))
        else:
            with pytest.raises(LearnerError) as e:
                learner.call(fn, *inputs)
            assert e.value.kind == "side_effect" and shared in e.value.message, e.value.message
    finally:
        box.kill()
