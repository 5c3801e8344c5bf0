"""Hidden suite for rnn: the learner's cell, layer and stack against ``torch.nn.RNNCell`` and
``torch.nn.RNN`` loaded with the same weights: values, gradients through them, and devices.

What the stub promises, and where it is tested:

| promise (exercises/rnn/rnn.py) | test |
|---|---|
| ``tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``, both biases, (H, I) layout | ``test_rnn_cell`` (I != H) |
| a forward a student trains through: gradients of x, h0 and every weight | ``test_*_gradients`` |
| ``batch_first`` with and without ``h0``, all four combinations | ``test_rnn_forward`` examples |
| ``h0`` / ``h_n`` never batch-first, even with ``batch_first`` | examples with B != T and ``h0`` |
| ``h0=None`` is a zero state | ``with_h0=False`` examples |
| ``h_n`` ``(num_layers, B, H)``, the last step's state | ``_compare`` |
| edges: T = 1, B = 1, H = 1, I = 1 | ``EDGE``, ``THIN`` examples; strategies reach them |
| ``tanh`` exact for any input (no ``nan`` from an ``exp`` that overflows), its gradient too | ``test_rnn_cell_saturated``, ``test_rnn_cell_gradients_saturated`` |
| a stack: layer l > 0 reads layer l - 1, starts from ``h0[l]``; ``L = 1`` allowed | ``test_stacked_*`` |
| ``batch_first`` in a stack | ``STACK`` examples |
| dtype of the inputs | every test, float64 and float32 |
| device of the inputs | ``test_device_propagation`` (meta device) |
| inputs not changed in place | every call (the sandbox compares inputs) and the gradient tests |
| the signature's defaults (``h0=None``, ``batch_first=False``) | ``test_defaults_are_the_stubs`` |
| ``x`` a view (a transposed batch-first tensor): no ``x.view(T * B, I)`` | ``test_non_contiguous_x``, ``test_stacked_of_a_non_contiguous_x`` |
"""
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from tests.compare import Mismatch, check, unpack
from tests.defaults import check_defaults
from tests.devices import check_devices
from tests.gradients import check_gradients, reference_grads, upstream
from tests.references import reference
from tests.strategies import Case, cases, dims, randn, seeds

# input != hidden, so that a W_ih used without its transpose cannot go unnoticed.
shapes = cases(batch=dims(1, 3), seq_len=dims(1, 4), input=dims(1, 4), hidden=dims(1, 4), seed=seeds()) \
    .filter(lambda c: c.input != c.hidden)
stacks = cases(batch=dims(1, 3), seq_len=dims(1, 4), input=dims(1, 4), hidden=dims(1, 4), layers=dims(1, 3),
               seed=seeds()).filter(lambda c: c.input != c.hidden)

# Explicit cases, run first: batch and time of different lengths, both larger than 1; the edges.
ONE = Case(batch=2, seq_len=3, input=3, hidden=4, seed=1)
EDGE = Case(batch=1, seq_len=1, input=2, hidden=3, seed=3)  # one sequence of one step
THIN = Case(batch=3, seq_len=2, input=2, hidden=1, seed=4)  # a hidden state of size 1
STACK = Case(batch=3, seq_len=2, input=2, hidden=3, layers=3, seed=2)
SINGLE = Case(batch=2, seq_len=3, input=3, hidden=2, layers=1, seed=5)  # a stack of one layer


def _weights(case, dtype, device, layers=1):
    """Per layer ``(W_ih, W_hh, b_ih, b_hh)``, the layout of ``torch.nn.RNN``; biases not zero."""
    out, seed = [], case.seed + 10
    for layer in range(layers):
        fan_in = case.input if layer == 0 else case.hidden
        shapes_ = [(case.hidden, fan_in), (case.hidden, case.hidden), (case.hidden,), (case.hidden,)]
        tensors = []
        for shape in shapes_:
            tensors.append(randn(*shape, seed=seed, dtype=dtype, device=device, scale=0.6))
            seed += 1
        out.append(tuple(tensors))
    return out


def _torch_rnn(weights, batch_first, dtype, device):
    """``torch.nn.RNN`` (tanh) holding ``weights``."""
    hidden, inputs = weights[0][0].shape
    module = torch.nn.RNN(inputs, hidden, num_layers=len(weights), batch_first=batch_first)
    module = module.to(device=device, dtype=dtype)
    with torch.no_grad():
        for layer, (W_ih, W_hh, b_ih, b_hh) in enumerate(weights):
            getattr(module, f"weight_ih_l{layer}").copy_(W_ih)
            getattr(module, f"weight_hh_l{layer}").copy_(W_hh)
            getattr(module, f"bias_ih_l{layer}").copy_(b_ih)
            getattr(module, f"bias_hh_l{layer}").copy_(b_hh)
    return module


@reference
def _rnn_outputs(weights, batch_first, dtype, device, x, h0):
    """``(output, h_n)`` of ``torch.nn.RNN`` holding ``weights`` on ``x`` and ``h0``."""
    with torch.no_grad():
        return _torch_rnn(weights, batch_first, dtype, device)(x, h0)


def _inputs(case, dtype, device, batch_first, with_h0, layers=1):
    shape = (case.batch, case.seq_len, case.input) if batch_first else (case.seq_len, case.batch, case.input)
    x = randn(*shape, seed=case.seed, dtype=dtype, device=device)
    h0 = randn(layers, case.batch, case.hidden, seed=case.seed + 1, dtype=dtype, device=device) if with_h0 else None
    return x, h0


def _compare(result, expected_output, expected_h_n, what, batch_first):
    output, h_n = unpack(result, 2, what)
    layout = "(B, T, H) with batch_first=True" if batch_first else "(T, B, H) with batch_first=False"
    if isinstance(output, torch.Tensor) and output.shape != expected_output.shape:
        raise Mismatch(f"{what}: output has shape {tuple(output.shape)}, expected {tuple(expected_output.shape)}, "
                       f"that is {layout}")
    check(f"{what}: output", output, expected_output)
    check(f"{what}: h_n (the last step's state of every layer, (num_layers, B, H))", h_n, expected_h_n)


@given(case=shapes)
@example(case=ONE)
@example(case=THIN)
def test_rnn_cell(impl, device, dtype, case):
    W_ih, W_hh, b_ih, b_hh = _weights(case, dtype, device)[0]
    x_t = randn(case.batch, case.input, seed=case.seed, dtype=dtype, device=device)
    h_prev = randn(case.batch, case.hidden, seed=case.seed + 1, dtype=dtype, device=device)
    expected = _torch_cell(x_t, h_prev, W_ih, W_hh, b_ih, b_hh)
    check("rnn_cell (compared with torch.nn.RNNCell)", impl.rnn_cell(x_t, h_prev, W_ih, W_hh, b_ih, b_hh), expected)


@reference
def _torch_cell(x_t, h_prev, W_ih, W_hh, b_ih, b_hh):
    """``torch.nn.RNNCell`` loaded with the weights, on ``x_t``'s device and dtype, applied once."""
    H, I = W_ih.shape
    cell = torch.nn.RNNCell(I, H).to(device=x_t.device, dtype=x_t.dtype)
    with torch.no_grad():
        for p, w in zip((cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh), (W_ih, W_hh, b_ih, b_hh)):
            p.copy_(w)
        return cell(x_t, h_prev)


@given(case=shapes, batch_first=st.booleans(), with_h0=st.booleans())
@example(case=ONE, batch_first=False, with_h0=True)
@example(case=ONE, batch_first=True, with_h0=True)
@example(case=ONE, batch_first=True, with_h0=False)
@example(case=ONE, batch_first=False, with_h0=False)
@example(case=EDGE, batch_first=True, with_h0=True)
@example(case=THIN, batch_first=False, with_h0=True)
def test_rnn_forward(impl, device, dtype, case, batch_first, with_h0):
    weights = _weights(case, dtype, device)
    x, h0 = _inputs(case, dtype, device, batch_first, with_h0)
    expected_output, expected_h_n = _rnn_outputs(weights, batch_first, dtype, device, x, h0)
    result = impl.rnn_forward(x, *weights[0], h0=h0, batch_first=batch_first)
    what = f"rnn_forward(batch_first={batch_first}, h0={'given' if with_h0 else 'None'})"
    _compare(result, expected_output, expected_h_n, what, batch_first)


def test_non_contiguous_x(impl, device, dtype):
    """``x`` a time-major view of a batch-first tensor, as a model that transposes its input passes it: ``x.view(T * B, I)`` refuses it, ``reshape`` and indexing by step do not."""
    weights = _weights(ONE, dtype, device)
    x = randn(ONE.batch, ONE.seq_len, ONE.input, seed=ONE.seed, dtype=dtype, device=device).transpose(0, 1)
    h0 = randn(1, ONE.batch, ONE.hidden, seed=ONE.seed + 1, dtype=dtype, device=device)
    expected_output, expected_h_n = _rnn_outputs(weights, False, dtype, device, x, h0)
    _compare(impl.rnn_forward(x, *weights[0], h0=h0), expected_output, expected_h_n,
             "rnn_forward of x given as a non-contiguous view (T, B, I)", False)


def test_stacked_of_a_non_contiguous_x(impl, device, dtype):
    """The stack's ``x`` a time-major view of a batch-first tensor: every layer's input projected at
    once with ``layer_input.view(T * B, -1)`` refuses it."""
    weights = _weights(STACK, dtype, device, layers=STACK.layers)
    x = randn(STACK.batch, STACK.seq_len, STACK.input, seed=STACK.seed, dtype=dtype, device=device).transpose(0, 1)
    h0 = randn(STACK.layers, STACK.batch, STACK.hidden, seed=STACK.seed + 1, dtype=dtype, device=device)
    expected_output, expected_h_n = _rnn_outputs(weights, False, dtype, device, x, h0)
    _compare(impl.stacked_rnn_forward(x, weights, h0=h0), expected_output, expected_h_n,
             f"stacked_rnn_forward({STACK.layers} layers) of x given as a non-contiguous view (T, B, I)", False)


@given(case=stacks, batch_first=st.booleans(), with_h0=st.booleans())
@example(case=STACK, batch_first=False, with_h0=True)
@example(case=STACK, batch_first=True, with_h0=True)
@example(case=STACK, batch_first=True, with_h0=False)
@example(case=SINGLE, batch_first=False, with_h0=True)
def test_stacked_rnn_forward(impl, device, dtype, case, batch_first, with_h0):
    weights = _weights(case, dtype, device, layers=case.layers)
    x, h0 = _inputs(case, dtype, device, batch_first, with_h0, layers=case.layers)
    expected_output, expected_h_n = _rnn_outputs(weights, batch_first, dtype, device, x, h0)
    result = impl.stacked_rnn_forward(x, weights, h0=h0, batch_first=batch_first)
    what = (f"stacked_rnn_forward({case.layers} layers, batch_first={batch_first}, "
            f"h0={'given' if with_h0 else 'None'})")
    _compare(result, expected_output, expected_h_n, what, batch_first)


def test_rnn_cell_saturated(impl, device, dtype):
    """Pre-activations in the thousands: tanh is +-1 there (a tanh written with exp overflows to nan)."""
    W_ih, W_hh, b_ih, b_hh = _weights(ONE, dtype, device)[0]
    x_t = randn(ONE.batch, ONE.input, seed=ONE.seed, dtype=dtype, device=device, scale=1e4)
    h_prev = randn(ONE.batch, ONE.hidden, seed=ONE.seed + 1, dtype=dtype, device=device)
    expected = _torch_cell(x_t, h_prev, W_ih, W_hh, b_ih, b_hh)
    check("rnn_cell with pre-activations of size 1e3 to 1e4 (tanh saturates at +-1, no nan)",
          impl.rnn_cell(x_t, h_prev, W_ih, W_hh, b_ih, b_hh), expected)


def _params(module, layers):
    return [getattr(module, f"{n}_l{layer}") for layer in range(layers)
            for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def _param_names(layers):
    suffix = (lambda l: f" of layer {l}") if layers > 1 else (lambda l: "")
    return [f"{n}{suffix(l)}" for l in range(layers) for n in ("W_ih", "W_hh", "b_ih", "b_hh")]


@given(case=shapes)
@example(case=ONE)
def test_rnn_cell_gradients(impl, device, dtype, case):
    W_ih, W_hh, b_ih, b_hh = _weights(case, dtype, device)[0]
    x_t = randn(case.batch, case.input, seed=case.seed, dtype=dtype, device=device)
    h_prev = randn(case.batch, case.hidden, seed=case.seed + 1, dtype=dtype, device=device)
    out, d_outs, expected = _cell_gradients(x_t, h_prev, W_ih, W_hh, b_ih, b_hh, case.seed + 20)
    check_gradients(impl, "rnn_cell", (x_t, h_prev, W_ih, W_hh, b_ih, b_hh), {}, d_outs, [out], expected,
                    outputs=["h"], inputs=["x_t", "h_prev", *_param_names(1)], what="rnn_cell")


def test_rnn_cell_gradients_saturated(impl, device, dtype):
    """Pre-activations in the thousands: tanh is +-1 and its derivative 0 there. ``tanh`` written as
    ``2 / (1 + exp(-2a)) - 1`` has the right values, but autograd through it gives ``0 * inf = nan``."""
    W_ih, W_hh, b_ih, b_hh = _weights(ONE, dtype, device)[0]
    x_t = randn(ONE.batch, ONE.input, seed=ONE.seed, dtype=dtype, device=device, scale=1e4)
    h_prev = randn(ONE.batch, ONE.hidden, seed=ONE.seed + 1, dtype=dtype, device=device)
    out, d_outs, expected = _cell_gradients(x_t, h_prev, W_ih, W_hh, b_ih, b_hh, ONE.seed + 20)
    check_gradients(impl, "rnn_cell", (x_t, h_prev, W_ih, W_hh, b_ih, b_hh), {}, d_outs, [out], expected,
                    outputs=["h"], inputs=["x_t", "h_prev", *_param_names(1)],
                    what="rnn_cell with pre-activations of size 1e3 to 1e4 (tanh saturates: gradients 0, no nan)")


@reference
def _cell_gradients(x_t, h_prev, W_ih, W_hh, b_ih, b_hh, seed):
    """``torch.nn.RNNCell`` holding the weights: its output, upstream gradients drawn from ``seed``,
    and the gradients of ``x_t``, ``h_prev`` and every weight."""
    H, I = W_ih.shape
    cell = torch.nn.RNNCell(I, H).to(device=x_t.device, dtype=x_t.dtype)
    params = [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
    with torch.no_grad():
        for p, w in zip(params, (W_ih, W_hh, b_ih, b_hh)):
            p.copy_(w)
    leaves = [t.detach().requires_grad_(True) for t in (x_t, h_prev)]
    out = cell(*leaves)
    d_outs = upstream([out], seed)
    return out.detach(), d_outs, reference_grads([out], [*leaves, *params], d_outs)


def _forward_gradients(impl, fn, case, dtype, device, batch_first, with_h0, layers):
    weights = _weights(case, dtype, device, layers=layers)
    x, h0 = _inputs(case, dtype, device, batch_first, with_h0, layers=layers)
    outputs, d_outs, expected = _layer_gradients(weights, batch_first, dtype, device, x, h0, case.seed + 20)
    args = (x, *weights[0]) if fn == "rnn_forward" else (x, weights)
    kwargs = {"batch_first": batch_first, **({"h0": h0} if with_h0 else {})}
    inputs = ["x", *_param_names(layers), *(["h0"] if with_h0 else [])]
    what = f"{fn}(batch_first={batch_first}, h0={'given' if with_h0 else 'None'})"
    check_gradients(impl, fn, args, kwargs, d_outs, outputs, expected,
                    outputs=["output", "h_n"], inputs=inputs, what=what)


@reference
def _layer_gradients(weights, batch_first, dtype, device, x, h0, seed):
    """``torch.nn.RNN`` holding ``weights``: ``[output, h_n]``, upstream gradients drawn from ``seed``,
    and the gradients in the order the driver lists them: ``x``, the weights, then ``h0`` if given."""
    module = _torch_rnn(weights, batch_first, dtype, device)
    leaves = [t.detach().requires_grad_(True) for t in (x, h0) if t is not None]
    output, h_n = module(*leaves, *([] if h0 is not None else [None]))
    d_outs = upstream([output, h_n], seed)
    grads = reference_grads([output, h_n], [*leaves, *_params(module, len(weights))], d_outs)
    given = h0 is not None  # the driver lists gradients in the order of the arguments: h0 (a keyword) last
    return [output.detach(), h_n.detach()], d_outs, [grads[0], *grads[2 if given else 1:], *(grads[1:2] if given else [])]


@given(case=shapes, batch_first=st.booleans(), with_h0=st.booleans())
@example(case=ONE, batch_first=False, with_h0=True)
@example(case=ONE, batch_first=True, with_h0=False)
def test_rnn_forward_gradients(impl, device, dtype, case, batch_first, with_h0):
    _forward_gradients(impl, "rnn_forward", case, dtype, device, batch_first, with_h0, 1)


@given(case=stacks, batch_first=st.booleans(), with_h0=st.booleans())
@example(case=STACK, batch_first=True, with_h0=True)
@example(case=STACK, batch_first=False, with_h0=False)
def test_stacked_rnn_forward_gradients(impl, device, dtype, case, batch_first, with_h0):
    _forward_gradients(impl, "stacked_rnn_forward", case, dtype, device, batch_first, with_h0, case.layers)


def _device_case(fn, case, batch_first=False, with_h0=False, layers=1):
    weights = _weights(case, torch.float32, "cpu", layers=layers)
    x, h0 = _inputs(case, torch.float32, "cpu", batch_first, with_h0, layers=layers)
    if fn == "rnn_cell":
        return (x[0], randn(case.batch, case.hidden, seed=0, dtype=torch.float32), *weights[0]), {}
    kwargs = {"batch_first": batch_first, **({"h0": h0} if with_h0 else {})}
    return ((x, *weights[0]) if fn == "rnn_forward" else (x, weights)), kwargs


# The device pass (tests/devices.py): every input on the meta device. A zero initial state made
# without device= (h0=None) is the usual culprit.
DEVICE_CASES = {
    "rnn_cell": lambda: _device_case("rnn_cell", ONE),
    "rnn_forward(h0=None)": lambda: _device_case("rnn_forward", ONE),
    "rnn_forward(h0, batch_first=True)": lambda: _device_case("rnn_forward", ONE, True, True),
    "stacked_rnn_forward(h0=None, batch_first=True)": lambda: _device_case("stacked_rnn_forward", STACK, True,
                                                                          False, STACK.layers),
    "stacked_rnn_forward(h0)": lambda: _device_case("stacked_rnn_forward", STACK, False, True, STACK.layers),
}


@pytest.mark.gated  # a check of how the functions are called, not of what they compute
@pytest.mark.parametrize("fn", ["rnn_forward", "stacked_rnn_forward"])
def test_defaults_are_the_stubs(impl, fn):
    """Called without ``h0`` and ``batch_first``, on a batch and a time of different lengths."""
    case = ONE if fn == "rnn_forward" else STACK
    weights = _weights(case, torch.float64, "cpu", layers=getattr(case, "layers", None) or 1)
    x, _ = _inputs(case, torch.float64, "cpu", False, False)
    check_defaults(impl, "rnn", fn, *((x, *weights[0]) if fn == "rnn_forward" else (x, weights)))


@pytest.mark.gated  # device handling counts as far as the topic's values are right
@pytest.mark.parametrize("case", DEVICE_CASES)
def test_device_propagation(impl, case):
    fn = case.split("(")[0]
    args, kwargs = DEVICE_CASES[case]()
    check_devices(impl, fn, *args, **kwargs)
