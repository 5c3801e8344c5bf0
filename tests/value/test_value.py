"""Hidden suite for value: the learner's scalar autograd against PyTorch autograd in float64.

The graphs are built beside the learner's code (``driver.py``); only floats come back: the output's
data and the grad of every node. Each graph is rebuilt here from float64 tensors that require grad.

Every promise of the stub, and the test that holds it to it (fixed ``@example``s and parametrized
cases run in every profile):

===============================================================  ===================================
each operation's data and local derivative (the table)             test_each_operation
relu's gradient 0 for negative inputs and at 0                     test_each_operation (relu_zero)
powers: int, float, negative, fractional exponents; a base of 0   test_each_operation (pow_*)
plain numbers on either side (radd, rsub, rmul, rdiv)              test_each_operation
``+=`` in backward: a node used twice                              test_each_operation (a * a, a + a, *_and_its_input)
``math.tanh``, finite for any input                              test_each_operation (tanh_large)
graphs of any shape, chain rule through all of them                test_random_expression_graphs
the grad of every node, the nodes between leaves and output too    every graph (the driver returns them)
the same grade every run (children visited in a fixed order)      every graph (the driver's ``_fix_order``)
an operation never changes its operands' data                      run_program's check, every graph
a chain 10 000 operations deep (no recursion)                      test_deep_chain_of_10000_operations
``_prev`` a set of exactly the operands, ``_op`` a str, leaves     test_graph_structure
``__repr__``                                                       test_graph_structure
backward twice: leaves add up, intermediate grads reset            test_backward_twice_accumulates
Neuron/Layer/MLP: ReLU hidden, linear last, parameter order        test_mlp_forward_and_backward
Layer: one neuron's Value itself, else the list of Values           test_layer_returns_one_value_or_a_list
weights drawn with ``random.uniform(-1, 1)`` in order, bias 0      test_zero_grad_and_parameters
``zero_grad`` sets every parameter's grad to 0                     test_zero_grad_and_parameters
... on every Module: a Neuron's and a Layer's own, bias included    test_zero_grad_of_a_neuron_and_a_layer
``Neuron(nin)``: ``nonlin=True`` by default (a ReLU)                 test_a_neuron_is_a_relu_by_default
===============================================================  ===================================
"""
import math
import random

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.compare import Mismatch, check, unpack
from tests.references import reference

# ---------------------------------------------------------------------------------------------
# programs: a few leaves and a list of steps, each appending one node (see driver.py)

BINARY = ["add", "sub", "mul", "div"]
UNARY = ["neg", "relu", "tanh", "exp", "log"]
RIGHT = ["addc", "subc", "mulc", "divc", "pow"]
LEFT = ["radd", "rsub", "rmul", "rdiv"]
POWERS = [2, 3, -1, -2, 2.0, 0.5, -0.5, 1.5]
SYMBOL = {"add": "+", "sub": "-", "mul": "*", "div": "/", "addc": "+", "subc": "-", "mulc": "*",
          "divc": "/", "pow": "**", "radd": "+", "rsub": "-", "rmul": "*", "rdiv": "/"}


def _name(k, n_leaves):
    return f"x{k}" if k < n_leaves else f"n{k}"


class Program:
    """Leaves and steps; prints as the Python that builds the graph, e.g.
    ``x0 = Value(1.5); n1 = 2.0 - x0; n2 = n1 * x0; n2.backward()``."""

    def __init__(self, leaves, steps):
        self.leaves, self.steps = leaves, steps

    def __repr__(self):
        n = len(self.leaves)
        parts = [f"{_name(k, n)} = Value({v!r})" for k, v in enumerate(self.leaves)]
        for k, (op, *args) in enumerate(self.steps, start=n):
            if op in BINARY:
                rhs = f"{_name(args[0], n)} {SYMBOL[op]} {_name(args[1], n)}"
            elif op == "neg":
                rhs = f"-{_name(args[0], n)}"
            elif op in UNARY:
                rhs = f"{_name(args[0], n)}.{op}()"
            elif op in RIGHT:
                rhs = f"{_name(args[0], n)} {SYMBOL[op]} {args[1]!r}"
            else:
                rhs = f"{args[0]!r} {SYMBOL[op]} {_name(args[1], n)}"
            parts.append(f"{_name(k, n)} = {rhs}")
        last = _name(n + len(self.steps) - 1, n)
        return "; ".join(parts + [f"{last}.backward()"])


def _apply(op, args, nodes, lib):
    """One step on floats (``lib=math``) or on tensors (``lib=torch``)."""
    if op in BINARY:
        a, b = nodes[args[0]], nodes[args[1]]
        return {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b, "div": lambda: a / b}[op]()
    if op in UNARY:
        a = nodes[args[0]]
        if op == "neg":
            return -a
        if op == "relu":
            return torch.relu(a) if lib is torch else max(a, 0.0)
        return getattr(lib, op)(a)
    if op in RIGHT:
        a, c = nodes[args[0]], args[1]
        return {"addc": lambda: a + c, "subc": lambda: a - c, "mulc": lambda: a * c,
                "divc": lambda: a / c, "pow": lambda: a ** c}[op]()
    c, a = args
    a = nodes[a]
    return {"radd": lambda: c + a, "rsub": lambda: c - a, "rmul": lambda: c * a, "rdiv": lambda: c / a}[op]()


def _safe(op, args, vals) -> bool:
    """Keep every step in its domain: log of positive numbers, fractional powers of positive bases,
    divisions away from 0, relu away from its kink, no overflow."""
    if op in ("div", "divc", "rdiv"):
        den = vals[args[1]] if op != "divc" else args[1]
        if abs(den) < 0.25:
            return False
    if op == "log" and vals[args[0]] < 0.1:
        return False
    if op == "exp" and vals[args[0]] > 4.0:
        return False
    if op == "relu" and abs(vals[args[0]]) < 1e-3:
        return False
    if op == "pow":
        base, p = vals[args[0]], args[1]
        if (p != int(p) and base < 0.1) or (p < 0 and abs(base) < 0.25):
            return False
    try:
        r = _apply(op, args, vals, math)
    except (ValueError, ZeroDivisionError, OverflowError):
        return False
    return isinstance(r, float) and math.isfinite(r) and abs(r) < 100.0


consts = st.sampled_from([-2.0, -0.5, 0.5, 1.5, 3.0])


@st.composite
def programs(draw, min_ops=1, max_ops=8):
    leaves = draw(st.lists(st.floats(0.2, 2.0).map(lambda v: round(v, 3)) | st.floats(-2.0, -0.2).map(lambda v: round(v, 3)),
                           min_size=1, max_size=4))
    vals = [float(v) for v in leaves]
    steps = []
    for _ in range(draw(st.integers(min_ops, max_ops))):
        last = len(vals) - 1
        i = last - draw(st.integers(0, last))  # shrinks towards the newest node: a chain
        j = draw(st.integers(0, last))  # shrinks towards x0: reused
        op = draw(st.sampled_from(BINARY + UNARY + RIGHT + LEFT))
        if op in BINARY:
            args = [i, j]
        elif op in UNARY:
            args = [i]
        elif op == "pow":
            args = [i, draw(st.sampled_from(POWERS))]
        elif op in RIGHT:
            args = [i, draw(consts)]
        else:
            args = [draw(consts), i]
        if not _safe(op, args, vals):
            op, args = "tanh", [i]
        vals.append(_apply(op, args, vals, math))
        steps.append([op, *args])
    return Program(leaves, steps)


def _torch_reference(prog, passes=1):
    """The output's data, the leaves' grads after ``passes`` backward passes (they add up), and the
    other nodes' grads (those of one pass: backward() resets them first)."""
    return _program_reference(prog.leaves, prog.steps, passes)


@reference
def _program_reference(values, steps, passes):
    leaves = [torch.tensor(float(v), dtype=torch.float64, requires_grad=True) for v in values]
    nodes = list(leaves)
    for op, *args in steps:
        nodes.append(_apply(op, args, nodes, torch))
        if nodes[-1].requires_grad:
            nodes[-1].retain_grad()
    out = nodes[-1]
    inner = None
    for _ in range(passes):
        out.backward(retain_graph=True)
        if inner is None:
            inner = [x.grad.clone() if x.grad is not None else torch.zeros((), dtype=torch.float64)
                     for x in nodes[len(leaves):]]
    zero = torch.zeros((), dtype=torch.float64)
    grads = torch.stack([x.grad if x.grad is not None else zero for x in leaves])
    return out.item(), grads, torch.stack(inner) if inner else torch.zeros(0, dtype=torch.float64)


def _compare(result, prog, what, passes=1, names=None, advice=""):
    data, grads, changed, inner = unpack(result, 4, "the driver")
    ref_data, ref_grads, ref_inner = _torch_reference(prog, passes)
    names = names or [f"x{k}" for k in range(len(prog.leaves))]
    if changed is not None:
        k, before, after = changed
        node = names[k] if k < len(names) else _name(k, len(prog.leaves))
        raise Mismatch(f"{what}: the data of {node} changed from {before!r} to {after!r} after it was made. An "
                       "operation or backward() must not modify the Values it is given: build a new Value "
                       "(`out = Value(...)`) instead of changing `self.data` or `other.data`")
    check(f"{what}: the output's data", data, ref_data)
    check(f"{what}: [{', '.join(n + '.grad' for n in names)}]{advice}", torch.tensor(grads, dtype=torch.float64),
          ref_grads)
    others = [_name(k, len(prog.leaves)) for k in range(len(prog.leaves), len(prog.leaves) + len(inner))]
    check(f"{what}: the grads of the nodes between the leaves and the output [{', '.join(n + '.grad' for n in others)}]"
          " (backward() fills the grad of every node the output depends on)",
          torch.tensor(inner, dtype=torch.float64).reshape(-1), ref_inner)


CHAIN_WITH_REUSE = Program([1.3, -0.6], [["mul", 0, 1], ["tanh", 2], ["rsub", 2.0, 3], ["mul", 4, 0],
                                         ["pow", 5, 2], ["add", 6, 3], ["div", 7, 0], ["log", 0],
                                         ["mul", 8, 9], ["relu", 1], ["add", 10, 11]])
REUSE = Program([0.7, -1.1], [["mul", 0, 1], ["add", 2, 0], ["exp", 3], ["mul", 4, 2], ["rdiv", 1.5, 0],
                              ["add", 5, 6]])

EQUAL_NODES = Program([0.5, 0.5], [["tanh", 0], ["tanh", 1], ["mul", 2, 3]])  # two nodes, one number
SUB_REUSED = Program([1.5, 2.0], [["sub", 0, 1], ["add", 2, 1], ["add", 3, 0]])  # (a - b) + b + a: both reused


@settings(report_multiple_bugs=False)
@given(prog=programs())
@example(prog=CHAIN_WITH_REUSE)
@example(prog=EQUAL_NODES)
@example(prog=SUB_REUSED)
def test_random_expression_graphs(impl, prog):
    _compare(impl.drive("run_program", prog.leaves, prog.steps), prog, f"graph `{prog!r}`")


@settings(report_multiple_bugs=False)
@given(prog=programs(min_ops=3))
@example(prog=REUSE)
def test_backward_twice_accumulates(impl, prog):
    _compare(impl.drive("run_program", prog.leaves, prog.steps, 2), prog,
             f"graph `{prog!r}` and backward() a second time", passes=2,
             advice=" (as in PyTorch, each leaf should hold twice its gradient: backward() resets the grads "
                    "of the intermediate nodes, those with children, to 0 before each pass, as its docstring "
                    "asks, and leaves the leaves' grads alone)")


# ---------------------------------------------------------------------------------------------
# each operation on its own, at a few inputs

ANY = [[1.5, -0.7], [-0.8, 2.5], [0.3, 1.2]]
POSITIVE = [[1.5, 0.7], [0.4, 2.5], [2.2, 1.2]]
OPERATIONS = {  # id: (expression, step, inputs)
    "add": ("a + b", ["add", 0, 1], ANY),
    "sub": ("a - b", ["sub", 0, 1], ANY),
    "mul": ("a * b", ["mul", 0, 1], ANY),
    "div": ("a / b", ["div", 0, 1], ANY),
    "neg": ("-a", ["neg", 0], ANY),
    "square_by_mul": ("a * a", ["mul", 0, 0], ANY),
    "double_by_add": ("a + a", ["add", 0, 0], ANY),
    "div_self": ("a / a", ["div", 0, 0], ANY),
    "pow_2": ("a ** 2", ["pow", 0, 2], ANY),
    "pow_3": ("a ** 3", ["pow", 0, 3], ANY),
    "pow_minus_1": ("a ** -1", ["pow", 0, -1], ANY),
    "pow_minus_2": ("a ** -2", ["pow", 0, -2], ANY),
    "pow_half": ("a ** 0.5", ["pow", 0, 0.5], POSITIVE),
    "pow_minus_half": ("a ** -0.5", ["pow", 0, -0.5], POSITIVE),
    "pow_1.5": ("a ** 1.5", ["pow", 0, 1.5], POSITIVE),
    "pow_at_zero": ("a ** 2 at a = 0 (gradient 0; no division by a)", ["pow", 0, 2], [[0.0, 1.0]]),
    "pow_float_at_zero": ("a ** 2.0 at a = 0 (gradient 0; no division by a)", ["pow", 0, 2.0], [[0.0, 1.0]]),
    "relu_negative": ("a.relu() with a < 0", ["relu", 0], [[-1.5, 0.0], [-0.2, 0.0]]),
    "relu_positive": ("a.relu() with a > 0", ["relu", 0], [[1.5, 0.0], [0.2, 0.0]]),
    "relu_zero": ("a.relu() with a = 0 (gradient 0 there, as in torch)", ["relu", 0], [[0.0, 0.0]]),
    "tanh": ("a.tanh()", ["tanh", 0], ANY + [[3.0, 0.0]]),
    "exp": ("a.exp()", ["exp", 0], ANY),
    "log": ("a.log()", ["log", 0], POSITIVE),
    "add_float": ("a + 2.0", ["addc", 0, 2.0], ANY),
    "radd": ("2.0 + a", ["radd", 2.0, 0], ANY),
    "sub_float": ("a - 2.0", ["subc", 0, 2.0], ANY),
    "rsub": ("2.0 - a", ["rsub", 2.0, 0], ANY),
    "mul_float": ("a * 3.0", ["mulc", 0, 3.0], ANY),
    "rmul": ("3.0 * a", ["rmul", 3.0, 0], ANY),
    "div_float": ("a / 4.0", ["divc", 0, 4.0], ANY),
    "rdiv": ("1.0 / a", ["rdiv", 1.0, 0], ANY),
    "tanh_large": ("a.tanh() at |a| = 400 (math.tanh; exp(2a) overflows)", ["tanh", 0], [[400.0, 0.0], [-400.0, 0.0]]),
    # Each operation's result added to its own input: whatever the order of the backward steps,
    # the add's contribution to a.grad reaches it first, so one that `=` overwrites shows at once.
    "tanh_and_its_input": ("a.tanh() + a", [["tanh", 0], ["add", 2, 0]], ANY),
    "exp_and_its_input": ("a.exp() + a", [["exp", 0], ["add", 2, 0]], ANY),
    "log_and_its_input": ("a.log() + a", [["log", 0], ["add", 2, 0]], POSITIVE),
    "relu_and_its_input": ("a.relu() + a", [["relu", 0], ["add", 2, 0]], [[1.5, 0.0], [-0.8, 0.0]]),
    "pow_and_its_input": ("a ** 3 + a", [["pow", 0, 3], ["add", 2, 0]], ANY),
    "mul_float_and_its_input": ("a * 3.0 + a", [["mulc", 0, 3.0], ["add", 2, 0]], ANY),
    "div_float_and_its_input": ("a / 4.0 + a", [["divc", 0, 4.0], ["add", 2, 0]], ANY),
}


@pytest.mark.parametrize("op", list(OPERATIONS))
def test_each_operation(impl, op):
    expr, step, inputs = OPERATIONS[op]
    steps = step if isinstance(step[0], list) else [step]
    progs = [Program(list(ab), steps) for ab in inputs]
    results = impl.drive("run_programs", [[p.leaves, p.steps] for p in progs])
    for prog, result in zip(progs, results):
        a, b = prog.leaves
        _compare(result, prog, f"{expr} at a={a}, b={b}", names=["a", "b"])


# ---------------------------------------------------------------------------------------------
# a deep graph: backward must not recurse once per node

@pytest.mark.parametrize("x0, c, d", [(0.5, 1.0001, 0.0), (-1.2, 0.9999, 0.001)])
def test_deep_chain_of_10000_operations(impl, x0, c, d):
    n = 5000
    what = f"x = Value({x0}); y = x; {n} times y = y * {c} + {d} (10000 operations deep); y.backward()"
    try:
        result = impl.drive("deep_chain", x0, n, c, d)
    except Exception as e:  # noqa: BLE001 - the learner's function raised
        if "RecursionError" in str(e):
            raise Mismatch(f"{what}: hit Python's recursion limit (RecursionError). Build the topological "
                           "order with an explicit stack, not a recursive function") from None
        raise
    data, grad = unpack(result, 2, "the driver")
    cn = math.pow(c, n)
    expected = cn * x0 + d * (cn - 1.0) / (c - 1.0)
    check(f"{what}: y.data", data, expected)
    check(f"{what}: x.grad", grad, cn)


# ---------------------------------------------------------------------------------------------
# the graph as micrograd records it

def test_graph_structure(impl):
    report = impl.drive("graph_structure")
    expected_children = {"a + b": ["a", "b"], "a * b": ["a", "b"], "a * a": ["a"], "a ** 2": ["a"],
                         "a.tanh()": ["a"], "a.exp()": ["a"], "a.log()": ["a"], "b.relu()": ["b"],
                         # a number operand is wrapped in a Value of its own first, which the graph holds
                         "a + 2.0": ["a", "other"], "a * 3.0": ["a", "other"]}
    for expr, children in expected_children.items():
        got = report[expr]
        if got["type"] != "Value":
            raise Mismatch(f"{expr} should return a Value, got a {got['type']}")
        if not got["prev_is_set"]:
            raise Mismatch(f"({expr})._prev should be a set of the Values it was computed from")
        if got["children"] != children:
            raise Mismatch(f"({expr})._prev should hold exactly {{{', '.join(children)}}}, "
                           f"holds {got['children']} ('other' is a Value that is neither a nor b)")
        if not got["op_is_str"]:
            raise Mismatch(f"({expr})._op should be a str naming the operation")
    leaf = report["leaf"]
    if leaf["prev"] != "set()" or leaf["op"] != "''":
        raise Mismatch(f"a new Value(2.0) should have _prev == set() and _op == '', got {leaf['prev']} and {leaf['op']}")
    for got, grads in ((leaf["repr"], ["0.0", "0"]), (leaf["repr_with_grad"], ["0.5"])):
        wants = [f"Value(data=2.0, grad={g})" for g in grads]
        if got not in wants:
            raise Mismatch(f"repr of Value(2.0) with grad {grads[0]} should be {wants[0]!r} (the stub's __repr__), "
                           f"got {got!r}")


# ---------------------------------------------------------------------------------------------
# the neural-network part: MLP(3, [4, 4, 1]) against the same network in PyTorch

SIZES = [3, 4, 4, 1]
N_PARAMS = sum((nin + 1) * nout for nin, nout in zip(SIZES, SIZES[1:]))

batches = st.integers(1, 3).flatmap(lambda n: st.tuples(
    st.lists(st.lists(st.floats(-2.0, 2.0), min_size=3, max_size=3), min_size=n, max_size=n),
    st.lists(st.floats(-1.0, 1.0), min_size=n, max_size=n)))


def _mlp_result(impl, seed, xs, ys):
    r = impl.drive("mlp_step", seed, xs, ys)
    if r["n_params"] != N_PARAMS:
        raise Mismatch(f"MLP(3, [4, 4, 1]).parameters() should list {N_PARAMS} Values "
                       f"(every neuron: its weights, then its bias), got {r['n_params']}")
    return r


@settings(report_multiple_bugs=False)
@given(seed=st.integers(0, 2**16), batch=batches)
@example(seed=1, batch=([[0.5, -1.0, 2.0], [1.5, 0.3, -0.4]], [0.25, -0.5]))
@example(seed=7, batch=([[-1.2, 0.8, 0.1]], [1.0]))
def test_mlp_forward_and_backward(impl, seed, batch):
    xs, ys = batch
    r = _mlp_result(impl, seed, xs, ys)
    # rebuild the network from the learner's weights, in parameter order: layer by layer, neuron by
    # neuron, each neuron's nin weights and then its bias
    flat = torch.tensor(r["weights"], dtype=torch.float64)
    params, at = [], 0
    for nin, nout in zip(SIZES, SIZES[1:]):
        block = flat[at:at + (nin + 1) * nout].reshape(nout, nin + 1)
        at += (nin + 1) * nout
        params.append(block.clone().requires_grad_(True))
    x = torch.tensor(xs, dtype=torch.float64)
    h = x
    for k, p in enumerate(params):
        h = h @ p[:, :-1].T + p[:, -1]
        if k < len(params) - 1:
            h = torch.relu(h)
    out = h[:, 0]
    loss = ((out - torch.tensor(ys, dtype=torch.float64)) ** 2).sum()
    grads = torch.autograd.grad(loss, params)
    check("MLP outputs (ReLU hidden layers, linear last layer)", torch.tensor(r["outputs"], dtype=torch.float64),
          out.detach())
    check("squared-error loss over the batch", r["loss"], loss.item())
    check("gradients of the MLP's parameters (in parameters() order)", torch.tensor(r["grads"], dtype=torch.float64),
          torch.cat([g.reshape(-1) for g in grads]))


def _expected_weights(seed):
    """The draws of ``random.uniform(-1, 1)`` after ``random.seed(seed)``: every neuron's ``nin``
    weights in turn, layer by layer; each bias 0."""
    state = random.getstate()
    try:
        random.seed(seed)
        return [random.uniform(-1, 1) if k not in _bias_positions() else 0.0 for k in range(N_PARAMS)]
    finally:
        random.setstate(state)


def test_layer_returns_one_value_or_a_list(impl):
    one, three = unpack(impl.drive("layer_outputs", [0.5, -1.0, 2.0]), 2, "the driver")
    if list(one) != ["Value", 1]:
        raise Mismatch(f"Layer(3, 1)(x) returned {_kind(one)}: with one neuron, a layer returns that neuron's "
                       "Value itself, not a list")
    if list(three) != ["list", 3]:
        raise Mismatch(f"Layer(3, 3)(x) returned {_kind(three)}: a layer of three neurons returns the list of "
                       "their three Values")


def _kind(shape):
    kind, count = shape
    return f"a list of {count} Values" if kind == "list" else "a Value" if kind == "Value" else f"a {kind}"


@settings(report_multiple_bugs=False)
@given(seed=st.integers(0, 2**16))
@example(seed=1)
def test_zero_grad_and_parameters(impl, seed):
    r = _mlp_result(impl, seed, [[0.5, -1.0, 2.0], [1.0, 0.3, -0.4]], [0.25, -0.5])
    if not any(g != 0.0 for g in r["grads"]):
        raise Mismatch("after loss.backward() on a nonzero squared-error loss every parameter's grad is 0: "
                       "the gradient does not reach the parameters (a ReLU on the last layer, or a broken backward?)")
    nonzero = [k for k, g in enumerate(r["after_zero_grad"]) if g != 0.0]
    if nonzero:
        raise Mismatch(f"after model.zero_grad() {len(nonzero)} of {N_PARAMS} parameters still have a "
                       f"nonzero grad (first at parameters()[{nonzero[0]}])")
    expected = _expected_weights(seed)
    bad = next((k for k, (w, e) in enumerate(zip(r["weights"], expected)) if w != e), None)
    if bad is not None:
        what = "a bias, which should start at 0.0" if bad in _bias_positions() else "a weight"
        raise Mismatch(f"after random.seed({seed}), MLP(3, [4, 4, 1]).parameters()[{bad}] ({what}) starts at "
                       f"{r['weights'][bad]!r}, expected {expected[bad]!r}: each neuron draws its nin weights "
                       "with random.uniform(-1, 1), in order, and nothing else (its bias is Value(0.0))")


def test_zero_grad_of_a_neuron_and_a_layer(impl):
    """Every Module's zero_grad, not only the MLP's: a Neuron and a Layer reset all their parameters."""
    for name, (before, after) in impl.drive("module_zero_grad", 3).items():
        if not any(g != 0.0 for g in before):
            raise Mismatch(f"{name}: after backward() every parameter's grad is 0")
        nonzero = [k for k, g in enumerate(after) if g != 0.0]
        if nonzero:
            raise Mismatch(f"after {name}.zero_grad() {len(nonzero)} of {len(after)} parameters still have a nonzero "
                           f"grad (first at parameters()[{nonzero[0]}]; the bias is a parameter too)")


def test_a_neuron_is_a_relu_by_default(impl):
    """``Neuron(nin)`` and ``Layer(nin, nout)`` without ``nonlin``: ReLU, micrograd's default (``MLP``
    always says which, so only a neuron or a layer built on its own shows the default)."""
    for name, got in impl.drive("default_nonlinearity").items():
        check(f"{name} with every weight 1 and bias 0, on [-1, -1] (nonlin left to its default: True, a ReLU)",
              got, 0.0)


def _bias_positions():
    pos, at = set(), 0
    for nin, nout in zip(SIZES, SIZES[1:]):
        for _ in range(nout):
            at += nin
            pos.add(at)
            at += 1
    return pos
