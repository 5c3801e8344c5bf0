"""A scalar autograd engine, micrograd style: every number remembers how it was computed.

A ``Value`` wraps one Python float (``data``) and, once ``backward()`` has run on some output,
``grad`` = d(output)/d(this value). Each operation creates a new ``Value`` that records

  * ``_prev``: the set of Values it was computed from (its children in the graph),
  * ``_op``: a short string naming the operation (``'+'``, ``'*'``, ``'**2'``, ``'tanh'``, ...; a
    Value made by hand has ``_op == ''`` and ``_prev == set()``),
  * ``_backward``: a function that, given ``out.grad``, ADDS each child's share to ``child.grad``
    by the chain rule (local derivative times ``out.grad``).

Local derivatives (``out = f(a, b)``; ``g = out.grad``)::

    a + b      a.grad += g                  b.grad += g
    a * b      a.grad += b.data * g         b.grad += a.data * g
    a / b      a.grad += g / b.data         b.grad -= g * a.data / b.data**2
    a ** n     a.grad += n * a.data**(n - 1) * g          (n an int or float, not a Value)
    relu(a)    a.grad += g if a.data > 0 else 0
    tanh(a)    a.grad += (1 - t**2) * g     where t = tanh(a.data)
    exp(a)     a.grad += exp(a.data) * g    (that is out.data * g)
    log(a)     a.grad += g / a.data

``+``, ``*``, ``**``, ``relu``, ``tanh``, ``exp`` and ``log`` each make ONE new node whose ``_prev``
holds exactly its Value operands (``(a * a)._prev == {a}``; a plain number operand is wrapped in a
new ``Value`` first). ``-``, ``/`` and the reflected forms may be built from the others, as micrograd
does (``a - b`` is ``a + (-b)``, ``-a`` is ``a * -1``).

``backward()`` on an output: order every node it depends on so that each node comes after all the
nodes it was computed from (a topological order), set the output's grad to 1.0, then call
``_backward`` of each node from the output back to the leaves.

Pitfalls:
  * ``+=``, never ``=``: a node used twice (``a * a``, ``b = a + 1; c = a * b``) receives a
    contribution along every path, and the contributions add up;
  * deep graphs: a chain of 10 000 operations must work. A recursive depth-first search recurses
    once per node and hits Python's recursion limit (1000): build the order with an explicit stack;
  * plain numbers on either side: ``x + 2``, ``2 + x``, ``2 - x`` (that is ``2 - x``, not ``x - 2``),
    ``3 * x``, ``x / 4``, ``1 / x`` all work; Python calls ``__radd__``, ``__rsub__``, ``__rmul__``,
    ``__rtruediv__`` when the Value is on the right;
  * do not define ``__eq__`` or ``__hash__``: Values live in sets by identity;
  * calling ``backward()`` twice: see its docstring (PyTorch semantics);
  * inputs are read-only, in every exercise of this course: an operation never changes the Values it
    is given (no ``self.data = ...`` in ``relu`` or ``__neg__``): it returns a NEW Value. The graded
    suite checks every node's ``data`` after each graph and its ``backward()``.

Use only Python's ``math`` and ``random`` here: no torch, no numpy (the grader refuses them).
The graded suite compares data and gradients with PyTorch autograd in float64.

The second half is a tiny neural-network library (micrograd's ``nn``): ``Neuron``, ``Layer`` and
``MLP``, all ``Module``s with ``parameters()`` and ``zero_grad()``.
Guide: GUIDE.md (English), GUIDE.zh.md (中文).
"""
import math
import random


class Value:
    """A scalar in a computation graph: ``data`` (a float) and ``grad`` (d output / d this)."""

    def __init__(self, data, _children=(), _op=''):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None  # a leaf passes nothing on
        self._prev = set(_children)
        self._op = _op

    def __add__(self, other):
        """``self + other``; ``other`` a Value or a plain number (wrap it: ``Value(other)``)."""
        raise NotImplementedError

    def __mul__(self, other):
        """``self * other``; ``other`` a Value or a plain number."""
        raise NotImplementedError

    def __pow__(self, other):
        """``self ** other`` for an int or float exponent (negative and fractional ones included);
        the base must stay positive for fractional exponents. ``_op`` like ``'**2'``."""
        raise NotImplementedError

    def __truediv__(self, other):
        """``self / other``; ``other`` a Value or a plain number. Either its own backward (see the
        table above) or ``self * other**-1``."""
        raise NotImplementedError

    def relu(self):
        """``max(data, 0)``; its gradient is 0 for negative inputs (and at 0)."""
        raise NotImplementedError

    def tanh(self):
        """``math.tanh(data)``."""
        raise NotImplementedError

    def exp(self):
        """``math.exp(data)``."""
        raise NotImplementedError

    def log(self):
        """Natural log, for positive ``data``."""
        raise NotImplementedError

    def backward(self):
        """Fill ``grad`` of every node this output depends on.

        1. Topological order of the graph below ``self``, built WITHOUT recursion (an explicit
           stack), so that a chain 10 000 nodes deep works.
        2. Reset the grad of every intermediate node (a node with children) to 0.0: these grads are
           the working buffers of this pass. Leave the leaves' grads alone.
        3. ``self.grad = 1.0``, then each node's ``_backward()`` from the output back to the leaves.

        Calling backward() twice: the gradients are added to the leaves again, so after two calls
        every leaf holds twice its gradient, exactly as PyTorch does for
        ``out.backward(retain_graph=True)`` called twice (micrograd accumulates too, but it also
        re-adds the previous pass's intermediate grads, which step 2 prevents). Gradients
        accumulate: call ``zero_grad()`` (or set the leaves' grads to 0) between training steps.
        """
        raise NotImplementedError

    def __neg__(self):  # -self
        raise NotImplementedError

    def __radd__(self, other):  # other + self
        raise NotImplementedError

    def __sub__(self, other):  # self - other
        raise NotImplementedError

    def __rsub__(self, other):  # other - self
        raise NotImplementedError

    def __rmul__(self, other):  # other * self
        raise NotImplementedError

    def __rtruediv__(self, other):  # other / self
        raise NotImplementedError

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"


class Module:
    """Base of the network classes: ``parameters()`` lists the Values to train."""

    def zero_grad(self):
        """Set the grad of every parameter to 0.0."""
        raise NotImplementedError

    def parameters(self):
        return []


class Neuron(Module):
    """``act = sum(w_i * x_i) + b``, then ``act.relu()`` if ``nonlin`` else ``act`` itself.

    Weights: ``nin`` Values drawn with ``random.uniform(-1, 1)`` (in this order); bias ``Value(0.0)``.
    ``parameters()``: the weights in order, then the bias. ``__call__(x)`` takes a list of ``nin``
    numbers or Values and returns one Value.
    """

    def __init__(self, nin, nonlin=True):
        raise NotImplementedError

    def __call__(self, x):
        raise NotImplementedError

    def parameters(self):
        raise NotImplementedError


class Layer(Module):
    """``nout`` Neurons of ``nin`` inputs each (``**kwargs`` passed on to them, e.g. ``nonlin``).

    ``__call__(x)``: the list of the neurons' outputs, or the single Value when ``nout == 1``.
    ``parameters()``: neuron by neuron, in order.
    """

    def __init__(self, nin, nout, **kwargs):
        raise NotImplementedError

    def __call__(self, x):
        raise NotImplementedError

    def parameters(self):
        raise NotImplementedError


class MLP(Module):
    """A multi-layer perceptron: ``MLP(3, [4, 4, 1])`` has layers 3->4, 4->4, 4->1.

    Every layer is ReLU except the last, which is linear. ``__call__(x)`` feeds ``x`` through the
    layers (``MLP(3, [4, 4, 1])(x)`` returns one Value). ``parameters()``: layer by layer, in order.
    """

    def __init__(self, nin, nouts):
        raise NotImplementedError

    def __call__(self, x):
        raise NotImplementedError

    def parameters(self):
        raise NotImplementedError
