"""Hidden suite for rnn: the learner's cell, layer and stack against ``torch.nn.RNNCell`` and
``torch.nn.RNN`` loaded with the same weights."""
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from tests.compare import Mismatch, check, unpack
from tests.strategies import Case, cases, dims, randn, seeds

# input != hidden, so that a W_ih used without its transpose cannot go unnoticed.
shapes = cases(batch=dims(1, 3), seq_len=dims(1, 4), input=dims(1, 4), hidden=dims(2, 4), seed=seeds()) \
    .filter(lambda c: c.input != c.hidden)
stacks = cases(batch=dims(1, 3), seq_len=dims(1, 4), input=dims(1, 4), hidden=dims(2, 4), layers=dims(2, 3),
               seed=seeds()).filter(lambda c: c.input != c.hidden)

# Explicit cases, run first: batch and time of different lengths, both larger than 1.
ONE = Case(batch=2, seq_len=3, input=3, hidden=4, seed=1)
STACK = Case(batch=3, seq_len=2, input=2, hidden=3, layers=3, seed=2)


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
def test_rnn_cell(impl, device, dtype, case):
    W_ih, W_hh, b_ih, b_hh = _weights(case, dtype, device)[0]
    x_t = randn(case.batch, case.input, seed=case.seed, dtype=dtype, device=device)
    h_prev = randn(case.batch, case.hidden, seed=case.seed + 1, dtype=dtype, device=device)
    cell = torch.nn.RNNCell(case.input, case.hidden).to(device=device, dtype=dtype)
    with torch.no_grad():
        for p, w in zip((cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh), (W_ih, W_hh, b_ih, b_hh)):
            p.copy_(w)
        expected = cell(x_t, h_prev)
    check("rnn_cell (compared with torch.nn.RNNCell)", impl.rnn_cell(x_t, h_prev, W_ih, W_hh, b_ih, b_hh), expected)


@given(case=shapes, batch_first=st.booleans(), with_h0=st.booleans())
@example(case=ONE, batch_first=False, with_h0=True)
@example(case=ONE, batch_first=True, with_h0=True)
@example(case=ONE, batch_first=True, with_h0=False)
def test_rnn_forward(impl, device, dtype, case, batch_first, with_h0):
    weights = _weights(case, dtype, device)
    x, h0 = _inputs(case, dtype, device, batch_first, with_h0)
    with torch.no_grad():
        expected_output, expected_h_n = _torch_rnn(weights, batch_first, dtype, device)(x, h0)
    result = impl.rnn_forward(x, *weights[0], h0=h0, batch_first=batch_first)
    what = f"rnn_forward(batch_first={batch_first}, h0={'given' if with_h0 else 'None'})"
    _compare(result, expected_output, expected_h_n, what, batch_first)


@given(case=stacks, batch_first=st.booleans(), with_h0=st.booleans())
@example(case=STACK, batch_first=False, with_h0=True)
@example(case=STACK, batch_first=True, with_h0=True)
@example(case=STACK, batch_first=True, with_h0=False)
def test_stacked_rnn_forward(impl, device, dtype, case, batch_first, with_h0):
    weights = _weights(case, dtype, device, layers=case.layers)
    x, h0 = _inputs(case, dtype, device, batch_first, with_h0, layers=case.layers)
    with torch.no_grad():
        expected_output, expected_h_n = _torch_rnn(weights, batch_first, dtype, device)(x, h0)
    result = impl.stacked_rnn_forward(x, weights, h0=h0, batch_first=batch_first)
    what = (f"stacked_rnn_forward({case.layers} layers, batch_first={batch_first}, "
            f"h0={'given' if with_h0 else 'None'})")
    _compare(result, expected_output, expected_h_n, what, batch_first)
