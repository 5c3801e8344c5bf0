"""Public tests: run ``pytest exercises/value``. The graded suite checks much more."""
import math

import torch

from value import MLP, Value


def test_a_node_used_twice_collects_both_gradients():
    a, b = Value(2.0), Value(-3.0)
    c = a * b + a  # dc/da = b + 1, dc/db = a
    c.backward()
    assert c.data == -4.0
    assert (a.grad, b.grad) == (-2.0, 2.0)


def test_plain_numbers_on_either_side():
    x = Value(4.0)
    y = (2 - x) + 1 / x + 3 * x + (2 + x)  # -x + 1/x + 3x + x
    y.backward()
    assert math.isclose(y.data, 2 - 4 + 0.25 + 12 + 6)
    assert math.isclose(x.grad, -1 - 1 / 16 + 3 + 1)


def test_tanh_exp_log_pow_match_torch():
    xv = Value(0.7)
    y = (xv.tanh() * xv.exp() + xv.log() + xv ** -1.5).relu()
    y.backward()
    xt = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    yt = torch.relu(torch.tanh(xt) * torch.exp(xt) + torch.log(xt) + xt ** -1.5)
    yt.backward()
    assert math.isclose(y.data, yt.item(), rel_tol=1e-12)
    assert math.isclose(xv.grad, xt.grad.item(), rel_tol=1e-12)


def test_a_chain_10000_deep_does_not_hit_the_recursion_limit():
    x = Value(1.0)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    assert math.isclose(x.grad, 1.0001 ** 10_000, rel_tol=1e-9)


def test_backward_twice_doubles_the_leaf_gradients():
    a, b = Value(0.5), Value(-1.5)
    c = (a * b).tanh() + a
    c.backward()
    once = (a.grad, b.grad)
    c.backward()
    assert math.isclose(a.grad, 2 * once[0]) and math.isclose(b.grad, 2 * once[1])


def test_mlp_parameters_and_zero_grad():
    model = MLP(3, [4, 4, 1])
    assert len(model.parameters()) == (3 + 1) * 4 + (4 + 1) * 4 + (4 + 1) * 1
    out = model([1.0, -2.0, 0.5])
    assert isinstance(out, Value)
    (out * out).backward()
    model.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())
