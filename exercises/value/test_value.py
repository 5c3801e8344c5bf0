"""Public tests: run ``pytest exercises/value``. The graded suite checks much more."""
import math
import random

import torch

from value import MLP, Layer, Neuron, Value


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


def test_nodes_record_their_operands():
    a = Value(3.0)
    assert a._op == "" and a._prev == set(), f"a Value made by hand: _op '' and _prev set(), got {a._op!r}, {a._prev!r}"
    sq = a * a
    assert sq._prev == {a}, f"(a * a)._prev should be {{a}}, got {sq._prev!r}"
    s = a + 2
    assert a in s._prev and len(s._prev) == 2, \
        f"a + 2: the 2 is wrapped in a new Value, _prev holds both, got {s._prev!r}"


def test_relu_gradient_is_zero_for_negative_inputs_and_at_zero():
    for x, grad in [(-2.0, 0.0), (0.0, 0.0), (1.5, 1.0)]:
        v = Value(x)
        out = v.relu()
        out.backward()
        assert (out.data, v.grad) == (max(x, 0.0), grad), \
            f"Value({x}).relu(): data {out.data}, grad {v.grad}; expected {max(x, 0.0)}, {grad}"


def test_neuron_draws_its_weights_in_order_and_the_last_layer_is_linear():
    random.seed(0)
    neuron = Neuron(3)
    random.seed(0)
    expected = [random.uniform(-1, 1) for _ in range(3)] + [0.0]
    got = [p.data for p in neuron.parameters()]
    assert got == expected, f"Neuron(3).parameters(): weights drawn in order, then the bias 0.0; got {got}"
    layer = Layer(2, 1, nonlin=False)
    w = [p.data for p in layer.parameters()]
    x = [-1.0 if w[0] > 0 else 1.0, 0.0]  # makes the pre-activation negative
    out = layer(x)
    assert isinstance(out, Value), "a Layer of one neuron returns that Value itself"
    assert math.isclose(out.data, w[0] * x[0]), "Layer(..., nonlin=False): no relu, the output can be negative"
    mlp = MLP(1, [1])  # a single layer: the last one, so linear
    w = mlp.parameters()[0].data
    assert math.isclose(mlp([-1.0 if w > 0 else 1.0]).data, -abs(w)), "the last layer of an MLP is linear (no relu)"
