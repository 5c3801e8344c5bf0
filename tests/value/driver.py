"""Runs beside the learner's code in the sandbox: builds graphs of the learner's ``Value`` objects.

Functions here take the learner's module first and return plain floats (data of outputs, grads of
leaves and of the nodes between), which the hidden suite compares with PyTorch.

A program is a list of steps over a list of nodes (the leaves first); each step appends one node:
``["add", i, j]`` is ``nodes[i] + nodes[j]`` (also ``sub``, ``mul``, ``div``), ``["tanh", i]`` is
``nodes[i].tanh()`` (also ``neg``, ``relu``, ``exp``, ``log``), ``["pow", i, p]`` is
``nodes[i] ** p``, ``["addc", i, c]`` is ``nodes[i] + c`` (also ``subc``, ``mulc``, ``divc``) and
``["radd", c, i]`` is ``c + nodes[i]`` (also ``rsub``, ``rmul``, ``rdiv``). The last node is the output.
"""
import gc
import random

_BINARY = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
           "div": lambda a, b: a / b}
_UNARY = {"neg": lambda a: -a, "relu": lambda a: a.relu(), "tanh": lambda a: a.tanh(),
          "exp": lambda a: a.exp(), "log": lambda a: a.log()}
_RIGHT = {"addc": lambda a, c: a + c, "subc": lambda a, c: a - c, "mulc": lambda a, c: a * c,
          "divc": lambda a, c: a / c, "pow": lambda a, p: a ** p}
_LEFT = {"radd": lambda c, a: c + a, "rsub": lambda c, a: c - a, "rmul": lambda c, a: c * a,
         "rdiv": lambda c, a: c / a}


def _step(nodes, step):
    op, *args = step
    if op in _BINARY:
        return _BINARY[op](nodes[args[0]], nodes[args[1]])
    if op in _UNARY:
        return _UNARY[op](nodes[args[0]])
    if op in _RIGHT:
        return _RIGHT[op](nodes[args[0]], args[1])
    return _LEFT[op](args[0], nodes[args[1]])


class _InOrder(set):
    """A node's children (``_prev``), iterated in a fixed order. A plain set of Values iterates in
    the order of their addresses, which differ from run to run: a backward whose result depends on
    that order (one that overwrites a grad with ``=``) would pass or fail by chance."""

    def __init__(self, items, order):
        super().__init__(items)
        self._order = list(order)

    def __iter__(self):
        return iter(self._order)


def _fix_order(out, known):
    """Give every set ``_prev`` below ``out`` a fixed order: the nodes in ``known`` by their place
    there, then the others (made inside the learner's operations) by data and operation."""
    place = {id(v): k for k, v in enumerate(known)}

    def key(v):
        try:
            data = float(v.data)
        except (TypeError, ValueError, AttributeError):
            data = 0.0
        return place.get(id(v), len(known)), data if data == data else float("inf"), str(getattr(v, "_op", ""))

    stack, seen = [out], set()
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        prev = getattr(v, "_prev", None)
        if not isinstance(prev, (set, frozenset, list, tuple)):
            continue
        if isinstance(prev, set) and len(prev) > 1:
            order = sorted(prev, key=key)
            try:
                v._prev = _InOrder(prev, order)
            except Exception:  # noqa: BLE001 - the learner's Value decides what it accepts
                pass
            prev = order
        stack.extend(prev)


def _run(m, leaves, program, passes):
    nodes = [m.Value(float(x)) for x in leaves]
    made = [float(x) for x in leaves]  # each node's data when it was made
    for step in program:
        nodes.append(_step(nodes, step))
        made.append(float(nodes[-1].data))
    out = nodes[-1]
    _fix_order(out, nodes)
    for _ in range(passes):
        out.backward()
    changed = next(([k, made[k], float(v.data)] for k, v in enumerate(nodes)
                    if float(v.data) != made[k] and made[k] == made[k]), None)
    grads = [float(v.grad) for v in nodes]
    return float(out.data), grads[:len(leaves)], changed, grads[len(leaves):]


def run_program(m, leaves, program, passes=1):
    """``(output data, [grad of each leaf], changed, [grad of each other node])`` after ``passes``
    calls of ``output.backward()``; ``changed`` is ``[node, data when made, data now]`` for the first
    node whose data an operation or ``backward()`` changed afterwards (None when none did)."""
    return _run(m, leaves, program, passes)


def run_programs(m, cases):
    """``run_program`` over ``[[leaves, program], ...]`` in one call."""
    return [_run(m, leaves, program, 1) for leaves, program in cases]


def deep_chain(m, x0, n, c, d):
    """``y = (...((x * c + d) * c + d)...)``, ``n`` times (a chain of ``2 n`` operations deep)."""
    gc.disable()  # 20000 new nodes in cycles (closures): the collector would rescan them many times
    try:
        x = m.Value(float(x0))
        y = x
        for _ in range(n):
            y = y * c + d
        y.backward()
        return float(y.data), float(x.grad)
    finally:
        gc.enable()


def graph_structure(m):
    """What each simple operation records: its type, its children (``_prev``) and ``_op``."""
    a, b = m.Value(2.0), m.Value(-3.0)
    named = {id(a): "a", id(b): "b"}
    built = {"a + b": lambda: a + b, "a * b": lambda: a * b, "a * a": lambda: a * a,
             "a ** 2": lambda: a ** 2, "a.tanh()": lambda: a.tanh(), "a.exp()": lambda: a.exp(),
             "a.log()": lambda: a.log(), "b.relu()": lambda: b.relu(), "a + 2.0": lambda: a + 2.0,
             "a * 3.0": lambda: a * 3.0}
    report = {}
    for expr, make in built.items():
        out = make()
        prev = getattr(out, "_prev", None)
        report[expr] = {
            "type": type(out).__name__,
            "prev_is_set": isinstance(prev, set),
            "children": sorted(named.get(id(p), "other") for p in prev) if isinstance(prev, (set, list, tuple)) else None,
            "op_is_str": isinstance(getattr(out, "_op", None), str),
        }
    leaf = m.Value(2.0)
    fresh = repr(leaf)
    leaf.grad = 0.5
    report["leaf"] = {"prev": repr(getattr(leaf, "_prev", None)), "op": repr(getattr(leaf, "_op", None)),
                      "repr": fresh, "repr_with_grad": repr(leaf)}
    return report


def layer_outputs(m, x):
    """What ``Layer(len(x), nout)(x)`` returns for one neuron and for three: ``[kind, count]`` each,
    kind "Value" or "list" (of Values: count) or the type's name."""
    random.seed(0)
    shapes = []
    for nout in (1, 3):
        out = m.Layer(len(x), nout)([m.Value(float(v)) for v in x])
        if isinstance(out, m.Value):
            shapes.append(["Value", 1])
        elif isinstance(out, list) and all(isinstance(v, m.Value) for v in out):
            shapes.append(["list", len(out)])
        else:
            shapes.append([type(out).__name__, len(out) if isinstance(out, (list, tuple)) else 1])
    return shapes


def mlp_step(m, seed, xs, ys):
    """Build ``MLP(3, [4, 4, 1])`` (weights drawn after ``random.seed(seed)``), run the squared-error
    loss over the examples and backward; then ``zero_grad()``."""
    random.seed(seed)
    model = m.MLP(3, [4, 4, 1])
    params = list(model.parameters())
    weights = [float(p.data) for p in params]
    outputs = [model(list(x)) for x in xs]
    loss = (outputs[0] - ys[0]) ** 2
    for out, y in zip(outputs[1:], ys[1:]):
        loss = loss + (out - y) ** 2
    _fix_order(loss, params)
    loss.backward()
    grads = [float(p.grad) for p in params]
    model.zero_grad()
    return {"n_params": len(params), "weights": weights, "outputs": [float(o.data) for o in outputs],
            "loss": float(loss.data), "grads": grads, "after_zero_grad": [float(p.grad) for p in params]}


def module_zero_grad(m, seed):
    """A ``Neuron(3)`` and a ``Layer(3, 2)``: backward through each, then its own ``zero_grad()``;
    the grads of ``parameters()`` after it."""
    random.seed(seed)
    out = {}
    for name, module in (("Neuron(3)", m.Neuron(3, nonlin=False)), ("Layer(3, 2)", m.Layer(3, 2, nonlin=False))):
        y = module([0.5, -1.0, 2.0])
        ys = y if isinstance(y, list) else [y]
        loss = ys[0]
        for v in ys[1:]:
            loss = loss + v
        loss.backward()
        before = [float(p.grad) for p in module.parameters()]
        module.zero_grad()
        out[name] = (before, [float(p.grad) for p in module.parameters()])
    return out


def default_nonlinearity(m):
    """``Neuron(2)`` and ``Layer(2, 1)`` built without ``nonlin``, every weight 1 and bias 0, on
    ``[-1, -1]``: their outputs (a ReLU neuron gives 0.0, a linear one -2.0)."""
    out = {}
    for name, module in (("Neuron(2)", m.Neuron(2)), ("Layer(2, 1)", m.Layer(2, 1))):
        for p in module.parameters():
            p.data = 0.0
        for p in module.parameters()[:-1]:
            p.data = 1.0
        y = module([-1.0, -1.0])
        y = y[0] if isinstance(y, list) else y
        out[name] = float(y.data)
    return out
