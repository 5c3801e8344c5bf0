"""Hidden suite for gru: the learner's cell, stacked layers and manual cell backward against
``torch.nn.GRUCell``, ``torch.nn.GRU`` (loaded with the same weights) and ``torch.autograd.grad``.

Promise (stub docstring)                                     -> test
gate order r, z, n; reset gate on W_hn h + b_hn               -> test_gru_cell (biases not zero)
h' = (1 - z) * n + z * h                                      -> test_gru_cell
stack: layer l reads layer l-1, starts from h0[l]             -> test_gru_forward (STACK)
h0 None means zeros                                           -> test_gru_forward (with_h0=False)
batch_first input and output, h_n never batch-first           -> test_gru_forward (batch_first)
T = 1, B = 1 edges; H = 1                                     -> test_gru_forward (EDGE, THIN)
sigmoid and tanh exact for any input (no nan from exp)        -> test_gru_cell_saturated, *_backward_saturated
autograd through saturated gates: gradients 0, no nan        -> test_gru_forward_gradients_saturated
differentiable for x, h0 and every weight                     -> test_gru_forward_gradients
backward: dh gathers both paths; db_ih and db_hh differ in n  -> test_gru_cell_backward
device and dtype of the inputs                                -> every test, over devices and dtypes
the signature's defaults (h0=None, batch_first=False)         -> test_defaults_are_the_stubs
"""
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from tests.compare import Mismatch, check, unpack
from tests.defaults import check_defaults
from tests.strategies import Case, cases, dims, randn, seeds
from tests.references import reference

# input != hidden, so that a weight used without its transpose cannot go unnoticed.
cells = cases(batch=dims(1, 3), input=dims(1, 4), hidden=dims(1, 4), seed=seeds()) \
    .filter(lambda c: c.input != c.hidden)
stacks = cases(batch=dims(1, 3), seq_len=dims(1, 4), input=dims(1, 4), hidden=dims(1, 4), layers=dims(1, 3),
               seed=seeds()).filter(lambda c: c.input != c.hidden)

# Explicit cases, run first: batch and time of different lengths; a stack of 3; single-step edges.
ONE = Case(batch=2, input=3, hidden=4, seed=1)
STACK = Case(batch=3, seq_len=2, input=2, hidden=3, layers=3, seed=2)
LAYER = Case(batch=2, seq_len=3, input=3, hidden=4, layers=1, seed=3)
EDGE = Case(batch=1, seq_len=1, input=2, hidden=3, layers=2, seed=4)
THIN = Case(batch=2, seq_len=3, input=2, hidden=1, layers=2, seed=5)  # H = 1: a squeeze() too many shows

GRADS = ("dx", "dh", "dW_ih", "dW_hh", "db_ih", "db_hh")


def _layer_weights(fan_in, hidden, seed, dtype, device):
    """``(W_ih, W_hh, b_ih, b_hh)`` in the layout of ``torch.nn.GRU``, biases not zero."""
    shapes_ = [(3 * hidden, fan_in), (3 * hidden, hidden), (3 * hidden,), (3 * hidden,)]
    return tuple(randn(*s, seed=seed + k, dtype=dtype, device=device, scale=0.6) for k, s in enumerate(shapes_))


def _weights(case, dtype, device, layers=1):
    return [_layer_weights(case.input if layer == 0 else case.hidden, case.hidden, case.seed + 10 + 4 * layer,
                           dtype, device) for layer in range(layers)]


def _load(module, weights, suffix=lambda layer: ""):
    with torch.no_grad():
        for layer, ws in enumerate(weights):
            for name, w in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), ws):
                getattr(module, name + suffix(layer)).copy_(w)
    return module


def _torch_gru(weights, batch_first, dtype, device):
    hidden3, inputs = weights[0][0].shape
    module = torch.nn.GRU(inputs, hidden3 // 3, num_layers=len(weights), batch_first=batch_first)
    return _load(module.to(device=device, dtype=dtype), weights, suffix=lambda layer: f"_l{layer}")


@reference
def _gru_outputs(weights, batch_first, dtype, device, x, h0):
    """``(output, h_n)`` of ``torch.nn.GRU`` holding ``weights`` on ``x`` and ``h0``."""
    with torch.no_grad():
        return _torch_gru(weights, batch_first, dtype, device)(x, h0)


def _sequence(case, dtype, device, batch_first, with_h0):
    shape = (case.batch, case.seq_len, case.input) if batch_first else (case.seq_len, case.batch, case.input)
    x = randn(*shape, seed=case.seed, dtype=dtype, device=device)
    h0 = randn(case.layers, case.batch, case.hidden, seed=case.seed + 1, dtype=dtype, device=device) \
        if with_h0 else None
    return x, h0


def _what(case, batch_first, with_h0):
    return (f"gru_forward({case.layers} layer(s), batch_first={batch_first}, h0={'given' if with_h0 else 'None'}, "
            "compared with torch.nn.GRU)")


@given(case=cells)
@example(case=ONE)
def test_gru_cell(impl, device, dtype, case):
    weights = _weights(case, dtype, device)[0]
    x = randn(case.batch, case.input, seed=case.seed, dtype=dtype, device=device)
    h = randn(case.batch, case.hidden, seed=case.seed + 1, dtype=dtype, device=device)
    check("gru_cell (compared with torch.nn.GRUCell): h'", impl.gru_cell(x, h, *weights), _cell_output(x, h, weights))


@reference
def _cell_output(x, h, weights):
    """``h'`` of ``torch.nn.GRUCell`` holding ``weights``."""
    cell = _load(torch.nn.GRUCell(x.shape[-1], h.shape[-1]).to(device=x.device, dtype=x.dtype), [weights])
    with torch.no_grad():
        return cell(x, h)


def test_gru_cell_saturated(impl, device, dtype):
    """Pre-activations in the thousands: the gates and tanh saturate (exp written out overflows to nan)."""
    weights = _weights(ONE, dtype, device)[0]
    x = randn(ONE.batch, ONE.input, seed=ONE.seed, dtype=dtype, device=device, scale=1e4)
    h = randn(ONE.batch, ONE.hidden, seed=ONE.seed + 1, dtype=dtype, device=device)
    check("gru_cell with pre-activations of size 1e3 to 1e4 (sigmoid and tanh saturate, no nan): h'",
          impl.gru_cell(x, h, *weights), _cell_output(x, h, weights))


@given(case=stacks, batch_first=st.booleans(), with_h0=st.booleans())
@example(case=STACK, batch_first=False, with_h0=True)
@example(case=STACK, batch_first=True, with_h0=True)
@example(case=LAYER, batch_first=True, with_h0=False)
@example(case=EDGE, batch_first=True, with_h0=True)
@example(case=THIN, batch_first=False, with_h0=True)
def test_gru_forward(impl, device, dtype, case, batch_first, with_h0):
    weights = _weights(case, dtype, device, layers=case.layers)
    x, h0 = _sequence(case, dtype, device, batch_first, with_h0)
    expected_output, expected_h_n = _gru_outputs(weights, batch_first, dtype, device, x, h0)
    what = _what(case, batch_first, with_h0)
    output, h_n = unpack(impl.gru_forward(x, weights, h0=h0, batch_first=batch_first), 2, what)
    layout = "(B, T, H) with batch_first=True" if batch_first else "(T, B, H)"
    if isinstance(output, torch.Tensor) and output.shape != expected_output.shape:
        raise Mismatch(f"{what}: output has shape {tuple(output.shape)}, expected "
                       f"{tuple(expected_output.shape)}, that is {layout}")
    check(f"{what}: output", output, expected_output)
    check(f"{what}: h_n (every layer's last state, (L, B, H))", h_n, expected_h_n)


def test_non_contiguous_x(impl, device, dtype):
    """``x`` a time-major view of a batch-first tensor, as a model that transposes its input passes it: ``x.view(T * B, I)`` refuses it, ``reshape`` and indexing by step do not."""
    weights = _weights(STACK, dtype, device, layers=STACK.layers)
    x = randn(STACK.batch, STACK.seq_len, STACK.input, seed=STACK.seed, dtype=dtype, device=device).transpose(0, 1)
    expected_output, expected_h_n = _gru_outputs(weights, False, dtype, device, x, None)
    what = "gru_forward of x given as a non-contiguous view (T, B, I)"
    output, h_n = unpack(impl.gru_forward(x, weights), 2, what)
    check(f"{what}: output", output, expected_output)
    check(f"{what}: h_n", h_n, expected_h_n)


@given(case=stacks, batch_first=st.booleans(), with_h0=st.booleans())
@example(case=STACK, batch_first=False, with_h0=True)
@example(case=LAYER, batch_first=True, with_h0=True)
def test_gru_forward_gradients(impl, device, dtype, case, batch_first, with_h0):
    weights = _weights(case, dtype, device, layers=case.layers)
    x, h0 = _sequence(case, dtype, device, batch_first, with_h0)
    d_output, d_h_n, expected = _layer_gradients(weights, batch_first, dtype, device, x, h0, case.seed)
    names = ["x", *(["h0"] if with_h0 else []),
             *[f"{n} of layer {layer}" for layer in range(case.layers) for n in ("W_ih", "W_hh", "b_ih", "b_hh")]]
    what = _what(case, batch_first, with_h0)
    _, grads = unpack(impl.drive("forward_and_grads", x, weights, h0, batch_first, d_output, d_h_n), 2, what)
    if grads is None:
        raise Mismatch(f"{what} is not differentiable (a detach, an .item(), or a tensor rebuilt from "
                       "Python numbers?): autograd through it must reach x, h0 and every weight")
    for name, got, want in zip(names, grads, expected):
        if got is None:
            raise Mismatch(f"{what}: the result does not depend on {name}, but it should")
        check(f"{what}: gradient with respect to {name}", got, want)


def test_gru_forward_gradients_saturated(impl, device, dtype):
    """Pre-activations in the thousands: the gates are 0 or 1, tanh +-1, their derivatives 0. A
    sigmoid written as ``1 / (1 + exp(-u))`` (or tanh as ``2 sigmoid(2u) - 1``) has the right values,
    but autograd through it gives ``0 * inf = nan``, which then reaches every earlier step."""
    weights = _weights(LAYER, dtype, device, layers=LAYER.layers)
    x, h0 = _sequence(LAYER, dtype, device, False, True)
    x = x * 1e4
    d_output, d_h_n, expected = _layer_gradients(weights, False, dtype, device, x, h0, LAYER.seed)
    what = "gru_forward with pre-activations of size 1e3 to 1e4 (the gates saturate: gradients 0, no nan)"
    _, grads = unpack(impl.drive("forward_and_grads", x, weights, h0, False, d_output, d_h_n), 2, what)
    if grads is None:
        raise Mismatch(f"{what} is not differentiable: autograd through it must reach x, h0 and every weight")
    names = ["x", "h0", *[f"{n} of layer {layer}" for layer in range(LAYER.layers) for n in ("W_ih", "W_hh", "b_ih", "b_hh")]]
    for name, got, want in zip(names, grads, expected):
        if got is None:
            raise Mismatch(f"{what}: the result does not depend on {name}, but it should")
        check(f"{what}: gradient with respect to {name}", got, want)


@given(case=cells)
@example(case=ONE)
def test_gru_cell_backward(impl, device, dtype, case):
    _check_cell_backward(impl, device, dtype, case, 1.0, "gru_cell_backward (compared with autograd on "
                                                         "torch.nn.GRUCell)")


def test_gru_cell_backward_saturated(impl, device, dtype):
    """Pre-activations in the thousands: the gates' derivatives are 0, not nan (a backward that
    recomputes the gates with exp written out overflows)."""
    _check_cell_backward(impl, device, dtype, ONE, 1e4, "gru_cell_backward with pre-activations of size 1e3 to 1e4 "
                                                        "(compared with autograd on torch.nn.GRUCell; no nan)")


@reference
def _layer_gradients(weights, batch_first, dtype, device, x, h0, seed):
    """``torch.nn.GRU`` holding ``weights``: upstream gradients of ``output`` and ``h_n`` drawn from
    ``seed``, and the gradients of ``x``, ``h0`` if given, and every weight."""
    module = _torch_gru(weights, batch_first, dtype, device)
    leaves = [t.detach().requires_grad_(True) for t in (x, h0) if t is not None]
    output, h_n = module(leaves[0], leaves[1] if h0 is not None else None)
    d_output = randn(*output.shape, seed=seed + 2, dtype=dtype, device=device)
    d_h_n = randn(*h_n.shape, seed=seed + 3, dtype=dtype, device=device)
    params = [getattr(module, f"{n}_l{layer}") for layer in range(len(weights))
              for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    return d_output, d_h_n, torch.autograd.grad((output * d_output).sum() + (h_n * d_h_n).sum(), [*leaves, *params])


@reference
def _cell_gradients(x, h, weights, d_h_next):
    """The gradients of ``sum(h' * d_h_next)`` through ``torch.nn.GRUCell`` holding ``weights``:
    ``x``, ``h``, then every weight."""
    cell = _load(torch.nn.GRUCell(x.shape[-1], h.shape[-1]).to(device=x.device, dtype=x.dtype), [weights])
    leaves = [t.detach().requires_grad_(True) for t in (x, h)]
    return torch.autograd.grad((cell(*leaves) * d_h_next).sum(),
                               [*leaves, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh])


def _check_cell_backward(impl, device, dtype, case, x_scale, what):
    weights = _weights(case, dtype, device)[0]
    x = randn(case.batch, case.input, seed=case.seed, dtype=dtype, device=device, scale=x_scale)
    h = randn(case.batch, case.hidden, seed=case.seed + 1, dtype=dtype, device=device)
    d_h_next = randn(case.batch, case.hidden, seed=case.seed + 2, dtype=dtype, device=device)
    expected = _cell_gradients(x, h, weights, d_h_next)
    grads = unpack(impl.gru_cell_backward(x, h, *weights, d_h_next), 6, "gru_cell_backward")
    wrong, first = [], None
    for name, got, want in zip(GRADS, grads, expected):
        try:
            check(name, got, want)
        except Mismatch as e:
            wrong.append(name)
            first = first or str(e)
    if wrong:
        right = [n for n in GRADS if n not in wrong]
        raise Mismatch(f"{what}: wrong {', '.join(wrong)}"
                       + (f" (right: {', '.join(right)})" if right else "") + f". First, {first}")


# The device pass (tests/devices.py): every input on the meta device; a zero initial state made
# without device= (h0=None) is the usual culprit.
import pytest  # noqa: E402  (kept with the test it serves, at the end of the module)

from tests.devices import check_devices, meta  # noqa: E402


def _meta_weights(inputs, hidden, layers):
    return [(meta(3 * hidden, inputs if layer == 0 else hidden), meta(3 * hidden, hidden), meta(3 * hidden),
             meta(3 * hidden)) for layer in range(layers)]


DEVICE_CASES = {
    "gru_cell": lambda: ((meta(2, 3), meta(2, 4), *_meta_weights(3, 4, 1)[0]), {}),
    "gru_forward(h0=None, batch_first=True)": lambda: ((meta(2, 3, 3), _meta_weights(3, 4, 2)), {"batch_first": True}),
    "gru_forward(h0)": lambda: ((meta(3, 2, 3), _meta_weights(3, 4, 2)), {"h0": meta(2, 2, 4)}),
    "gru_cell_backward": lambda: ((meta(2, 3), meta(2, 4), *_meta_weights(3, 4, 1)[0], meta(2, 4)), {}),
}


@pytest.mark.gated  # a check of how the functions are called, not of what they compute
def test_defaults_are_the_stubs(impl):
    """``gru_forward`` called without ``h0`` and ``batch_first``, on a batch and a time of different lengths."""
    weights = _weights(STACK, torch.float64, "cpu", layers=STACK.layers)
    x, _ = _sequence(STACK, torch.float64, "cpu", False, False)
    check_defaults(impl, "gru", "gru_forward", x, weights)


@pytest.mark.gated  # device handling counts as far as the topic's values are right
@pytest.mark.parametrize("case", DEVICE_CASES)
def test_device_propagation(impl, case):
    args, kwargs = DEVICE_CASES[case]()
    check_devices(impl, case.split("(")[0], *args, **kwargs)
