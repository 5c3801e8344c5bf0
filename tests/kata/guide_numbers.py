"""The numbers of the guides' worked examples, computed from the reference solutions (and torch).

Every number of a worked example in ``exercises/<topic>/GUIDE.md`` and ``GUIDE.zh.md`` sits between
two markers that name it::

    <!--num:rnn.h_1-->[0.9376, -0.6399]<!--/num-->

This module defines each topic's tiny example, runs it through ``solutions/<topic>`` (checked against
torch where torch is the reference) and formats every named value for display (4 decimals, trailing
zeros dropped). ``tests/kata/test_guides.py`` recomputes them and fails when a guide disagrees, so the
numbers cannot go stale; after changing an example or a solution, rewrite the guides with

    python -m tests.kata.guide_numbers --write

It lives with the kata's other guarantees (``tests/kata/``): it needs the solutions, which students do
not get, and it is run by whoever maintains the topics, not by students or the grader.
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import math
import re
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"<!--num:([A-Za-z0-9_.]+)-->(.*?)<!--/num-->")
GUIDES = ("GUIDE.md", "GUIDE.zh.md")
EXAMPLES = {}  # topic -> function returning {name: value}

D = torch.float64


def example(fn):
    """Register ``fn`` as the worked example of the topic it is named after (``rnn_example``)."""
    EXAMPLES[fn.__name__.removesuffix("_example")] = fn
    return fn


def solution(topic: str):
    """The reference solution of ``topic``, imported by path (not as a package)."""
    path = ROOT / "solutions" / topic / f"{topic}.py"
    spec = importlib.util.spec_from_file_location(f"_guide_solution_{topic}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=D)


def agree(ours, reference, what: str) -> None:
    """The solution and torch must agree before a number goes into a guide."""
    if isinstance(ours, torch.Tensor):
        if not torch.allclose(ours, reference, rtol=1e-10, atol=1e-12, equal_nan=True):
            raise AssertionError(f"{what}: the solution gives {ours}, torch {reference}")
    elif ours != reference:
        raise AssertionError(f"{what}: the solution gives {ours!r}, torch {reference!r}")


def fmt(value) -> str:
    """How a value is displayed: 4 decimals without trailing zeros (below 1e-3: ``1e-6``), lists in
    brackets, strings quoted."""
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if abs(value) < 1e-12:  # rounding noise of a value that is 0 in exact arithmetic
        return "0"
    if abs(value) < 1e-3:  # small values in scientific notation: 1e-6, not 0
        mantissa, exponent = f"{value:.4e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


class Raw(str):
    """A value displayed as it is (no quotes): a formula or a word computed elsewhere."""


def display(value) -> str:
    return str(value) if isinstance(value, Raw) else fmt(value)


# ----------------------------------------------------------------------------------------------------
@example
def value_example():
    sol = solution("value")
    V = sol.Value
    a, b = V(2.0), V(-1.5)
    c = a * b
    d = c + a  # a is used twice: along c and directly
    e = d.tanh()
    L = e ** 2
    L.backward()
    out = dict(a=a.data, b=b.data, c=c.data, d=d.data, e=e.data, L=L.data,
               dL_de=e.grad, dL_dd=d.grad, dL_dc=c.grad, dL_da=a.grad, dL_db=b.grad,
               dL_da_via_c=c.grad * b.data, dL_da_direct=d.grad)
    ta, tb = torch.tensor(2.0, dtype=D, requires_grad=True), torch.tensor(-1.5, dtype=D, requires_grad=True)
    tL = torch.tanh(ta * tb + ta) ** 2
    tL.backward()
    agree(L.data, tL.item(), "value: L")
    agree(round(a.grad, 12), round(ta.grad.item(), 12), "value: dL/da")
    agree(round(b.grad, 12), round(tb.grad.item(), 12), "value: dL/db")
    L.backward()  # a second pass adds the gradients to the leaves again
    out.update(dL_da_twice=a.grad, dL_db_twice=b.grad)

    x = V(4.0)
    u = 2 - x
    w = 1 / x
    y = u * w
    y.backward()
    tx = torch.tensor(4.0, dtype=D, requires_grad=True)
    ty = (2 - tx) * (1 / tx)
    ty.backward()
    agree(round(x.grad, 12), round(tx.grad.item(), 12), "value: dy/dx")
    out.update(x=x.data, u=u.data, w=w.data, y=y.data, dy_du=u.grad, dy_dw=w.grad, dy_dx=x.grad,
               u_wrong=x.data - 2)
    return out


@example
def bigram_example():
    sol = solution("bigram")
    words = ["ab", "b"]
    vocab = sol.build_vocab(words)
    N = sol.count_matrix(words, vocab)
    P1 = sol.probabilities(N, k=1.0, dtype=D)
    P0 = sol.probabilities(N, k=0.0, dtype=D)
    gen = torch.Generator().manual_seed(2147483647)
    names = sol.sample(P1, 4, gen, vocab)
    xs = torch.tensor([0, 1, 2, 0, 2])
    ys = torch.tensor([1, 2, 0, 2, 0])
    W = torch.zeros(3, 3, dtype=D)
    W[2, 0] = 1.0
    reg = 0.1
    loss = sol.neural_bigram_loss(W, xs, ys, reg)
    grad = sol.neural_bigram_grad(W, xs, ys, reg)
    tW = W.clone().requires_grad_()
    tloss = torch.nn.functional.cross_entropy(tW[xs], ys) + reg * (tW ** 2).mean()
    tloss.backward()
    agree(loss, tloss.detach(), "bigram: loss")
    agree(grad, tW.grad, "bigram: grad")
    probs_row2 = torch.softmax(W[2], dim=0)
    return dict(
        vocab=Raw("[" + ", ".join(f"'{c}'" for c in vocab) + "]"), V=len(vocab),
        N_row_dot=N[0], N_row_a=N[1], N_row_b=N[2],
        P1_row_dot=P1[0], P1_row_a=P1[1], P1_row_b=P1[2], P0=P0,
        nll_k1=sol.nll(words, P1, vocab), nll_k0=sol.nll(words, P0, vocab),
        nll_ba_k0=sol.nll(["ba"], P0, vocab), nll_ba_k1=sol.nll(["ba"], P1, vocab),
        log_V=math.log(len(vocab)),
        names=Raw("[" + ", ".join(f'"{n}"' for n in names) + "]"),
        xs=xs, ys=ys, one_hot_xs=sol.one_hot(xs, 3, D), W=W, reg=reg,
        logits_row2=W[2], probs_row2=probs_row2, nll_row2=-torch.log(probs_row2[0]),
        probs_uniform=1 / 3, nll_uniform=math.log(3),
        reg_term=reg * (W ** 2).mean(), loss=loss, loss_no_reg=loss - reg * (W ** 2).mean(),
        grad_row0=grad[0], grad_row1=grad[1], grad_row2=grad[2],
        grad_row2_data=2 * (probs_row2 - t([1, 0, 0])) / 5, grad_reg=2 * reg * 1.0 / 9,
    )


@example
def cross_entropy_example():
    sol = solution("cross_entropy")
    F = torch.nn.functional
    z = t([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    y = torch.tensor([0, 2])
    y_ign = torch.tensor([0, -100])
    lsm = sol.log_softmax(z, dim=1)
    agree(lsm, F.log_softmax(z, dim=1), "cross_entropy: log_softmax")
    out = dict(z=z, z0=z[0], z1=z[1], y=y, y_ign=y_ign,
               lse0=torch.logsumexp(z[0], 0), lsm0=lsm[0], lsm1=lsm[1], p0=lsm[0].exp(), p1=lsm[1].exp())
    for name, kwargs, target in [("none", dict(reduction="none"), y), ("mean", {}, y),
                                 ("sum", dict(reduction="sum"), y), ("ign_mean", {}, y_ign),
                                 ("ign_none", dict(reduction="none"), y_ign),
                                 ("ls_none", dict(reduction="none", label_smoothing=0.3), y)]:
        loss = sol.cross_entropy(z, target, **kwargs)
        agree(loss, F.cross_entropy(z, target, **kwargs), f"cross_entropy: {name}")
        out[f"loss_{name}"] = loss
    out["loss_ign_wrong_mean"] = out["loss_ign_none"].sum() / 2
    for name, kwargs, target in [("mean", {}, y), ("ign_mean", {}, y_ign)]:
        grad = sol.cross_entropy_grad(z, target, **kwargs)
        tz = z.clone().requires_grad_()
        F.cross_entropy(tz, target, **kwargs).backward()
        agree(grad, tz.grad, f"cross_entropy: grad {name}")
        out[f"grad_{name}_row0"] = grad[0]
        out[f"grad_{name}_row1"] = grad[1]
    q = t([[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    loss_q = sol.cross_entropy(z, q, reduction="none")
    agree(loss_q, F.cross_entropy(z, q, reduction="none"), "cross_entropy: probability targets")
    out.update(q0=q[0], loss_q=loss_q, q_ls0=0.7 * t([1.0, 0.0, 0.0]) + 0.3 / 3, eps=0.3)
    big = t([[1e4, 0.0, -1e4]])
    lsm_big = sol.log_softmax(big, dim=1)
    agree(lsm_big, F.log_softmax(big, dim=1), "cross_entropy: large logits")
    out.update(big=big[0], lsm_big=lsm_big[0], naive_big=torch.exp(big[0, 0]))
    return out


@example
def perplexity_example():
    sol = solution("perplexity")
    F = torch.nn.functional
    logits = t([[[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])  # (B=1, T=4, V=3)
    targets = torch.tensor([[0, 0, 1, -100]])
    nll = sol.token_nll(logits, targets)
    agree(nll[0, :3], F.cross_entropy(logits[0, :3], targets[0, :3], reduction="none"), "perplexity: token_nll")
    ppl = sol.perplexity(logits, targets, ignore_index=-100)
    mask = torch.tensor([[True, True, True, False]])
    ppl_mask = sol.perplexity(logits, targets, mask=mask)
    agree(ppl, torch.exp(F.cross_entropy(logits[0], targets[0], ignore_index=-100)), "perplexity: perplexity")
    counted = nll[0, :3]
    total = counted.sum()
    uniform = sol.perplexity(torch.zeros(1, 5, 3, dtype=D), torch.tensor([[0, 1, 2, 1, 0]]))
    return dict(
        logits_t0=logits[0, 0], logits_t1=logits[0, 1], logits_t2=logits[0, 2], logits_t3=logits[0, 3],
        targets=targets[0], tgt_t0=targets[0, 0], tgt_t1=targets[0, 1], tgt_t2=targets[0, 2], mask=mask[0],
        p_t1=torch.softmax(logits[0, 1], 0), nll=counted,
        nll_t0=nll[0, 0], nll_t1=nll[0, 1], nll_t2=nll[0, 2], total=total, mean=total / 3,
        ppl=ppl, ppl_mask=ppl_mask, from_nll=sol.perplexity_from_nll(total, 3),
        wrong_all_positions=torch.exp(total / 4),
        wrong_padding_scored=torch.exp((total + nll[0, 3]) / 4), wrong_exp_sum=torch.exp(total),
        wrong_mean_exp=torch.exp(counted).mean(), wrong_bits=2 ** (total / 3), uniform=uniform,
        e2=math.exp(2), denom=math.exp(2) + 2,
    )


def _rnn_weights():
    W_ih = t([[1.0], [-1.0]])            # (H=2, I=1)
    W_hh = t([[0.5, -1.0], [0.0, 0.5]])  # (H, H), not symmetric: W_hh and W_hh^T differ
    b_ih = t([0.0, 0.1])
    b_hh = t([0.1, 0.0])
    x = t([[[1.0]], [[0.5]]])            # (T=2, B=1, I=1)
    return x, W_ih, W_hh, b_ih, b_hh


@example
def embedding_example():
    sol = solution("embedding")
    F = torch.nn.functional
    weight = t([[0.5, 0.5], [1.0, 2.0], [-1.0, 0.5], [2.0, -1.0]])  # (V=4, D=2); row 0 is the padding row
    ids = torch.tensor([[1, 3, 1], [2, 0, 0]])                      # (B=2, L=3): id 1 twice, padding id 0
    d_out = t([[[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], [[1.0, 1.0], [2.0, 0.0], [0.0, 3.0]]])
    out = sol.embedding(ids, weight, padding_idx=0)
    agree(out, F.embedding(ids, weight, padding_idx=0), "embedding: lookup")
    d_weight = sol.embedding_backward(ids, d_out, 4, padding_idx=0)
    tw = weight.clone().requires_grad_()
    (F.embedding(ids, tw, padding_idx=0) * d_out).sum().backward()
    agree(d_weight, tw.grad, "embedding: backward")
    ow = weight.clone().requires_grad_()
    (sol.embedding(ids, ow, padding_idx=0) * d_out).sum().backward()
    agree(ow.grad, tw.grad, "embedding: autograd through the forward")
    agree(sol.embedding_backward(ids, d_out, 4, padding_idx=-4), d_weight, "embedding: negative padding_idx")
    no_pad = sol.embedding_backward(ids, d_out, 4)
    nw = weight.clone().requires_grad_()
    (F.embedding(ids, nw) * d_out).sum().backward()
    agree(no_pad, nw.grad, "embedding: backward without padding_idx")
    flat_ids, flat_d = ids.reshape(-1).tolist(), d_out.reshape(-1, 2)
    assigned = torch.zeros(4, 2, dtype=D)
    for v, row in zip(flat_ids, flat_d):  # an assignment keeps one write per row (the CPU: the last)
        assigned[v] = row
    assigned[0] = 0
    bags = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)])    # a third bag of padding only
    mean = sol.embedding_bag(bags, weight, mode="mean", padding_idx=0)
    total = sol.embedding_bag(bags, weight, mode="sum", padding_idx=0)
    agree(mean, F.embedding_bag(bags, weight, mode="mean", padding_idx=0), "embedding: bag mean")
    agree(total, F.embedding_bag(bags, weight, mode="sum", padding_idx=0), "embedding: bag sum")
    bw, tbw = weight.clone().requires_grad_(), weight.clone().requires_grad_()
    sol.embedding_bag(bags, bw, mode="mean", padding_idx=0).sum().backward()
    F.embedding_bag(bags, tbw, mode="mean", padding_idx=0).sum().backward()
    agree(bw.grad, tbw.grad, "embedding: bag gradient")
    return dict(
        weight=weight, w0=weight[0], w1=weight[1], w2=weight[2], w3=weight[3], ids=ids,
        out0=out[0], out1=out[1], one_hot=F.one_hot(ids[0, 0], 4).to(D), one_hot_w=F.one_hot(ids[0, 0], 4).to(D) @ weight,
        d_out0=d_out[0], d_out1=d_out[1],
        dw=d_weight, dw0=d_weight[0], dw1=d_weight[1], dw2=d_weight[2], dw3=d_weight[3],
        dw0_no_pad=no_pad[0], dw1_assigned=assigned[1], dw1_mean=(d_out[0, 0] + d_out[0, 2]) / 2,
        neg_pad=-4, bag2=bags[2],
        mean0=mean[0], mean1=mean[1], mean2=mean[2], sum0=total[0], sum1=total[1],
        mean1_counts_padding=total[1] / 3, mean1_sums_padding=total[1] + 2 * weight[0],
        mean2_zero_div=total[2] / (bags[2] != 0).sum(), bag_grad=bw.grad,
    )


@example
def rnn_example():
    sol = solution("rnn")
    x, W_ih, W_hh, b_ih, b_hh = _rnn_weights()
    h0 = torch.zeros(1, 1, 2, dtype=D)
    output, h_n = sol.rnn_forward(x, W_ih, W_hh, b_ih, b_hh)
    ref = torch.nn.RNN(1, 2).double()
    with torch.no_grad():
        for p, w in zip((ref.weight_ih_l0, ref.weight_hh_l0, ref.bias_ih_l0, ref.bias_hh_l0), (W_ih, W_hh, b_ih, b_hh)):
            p.copy_(w)
        ref_out, ref_h = ref(x, h0)
    agree(output, ref_out, "rnn: output")
    agree(h_n, ref_h, "rnn: h_n")
    h_first = output[0, 0]
    a0 = x[0, 0] @ W_ih.T + b_ih + b_hh
    a1 = x[1, 0] @ W_ih.T + b_ih + h_first @ W_hh.T + b_hh
    wrong_a1 = x[1, 0] @ W_ih.T + b_ih + h_first @ W_hh + b_hh
    return dict(
        W_ih=W_ih, W_hh=W_hh, b_ih=b_ih, b_hh=b_hh, x0=x[0, 0, 0], x1=x[1, 0, 0],
        d2l_W_xh=W_ih.T, d2l_b_h=b_ih + b_hh,
        x0_W_ih_T=x[0, 0] @ W_ih.T, a0=a0, h_0=h_first,
        x1_W_ih_T=x[1, 0] @ W_ih.T, h0_W_hh_T=h_first @ W_hh.T, a1=a1, h_1=output[1, 0],
        h0_W_hh_wrong=h_first @ W_hh, h_1_wrong=torch.tanh(wrong_a1),
        h_n=h_n[0, 0], no_b_hh_h_0=torch.tanh(a0 - b_hh),
        relu_h_0=torch.relu(a0),
    )


@example
def bptt_example():
    sol = solution("bptt")
    x, W_ih, W_hh, b_ih, b_hh = _rnn_weights()
    h0 = torch.zeros(1, 2, dtype=D)
    d_output = t([[[0.0, 1.0]], [[1.0, 0.0]]])
    d_h_n = torch.zeros(1, 2, dtype=D)
    g = sol.rnn_backward(x, h0, W_ih, W_hh, b_ih, b_hh, d_output, d_h_n)
    params = [p.clone().requires_grad_() for p in (x, h0, W_ih, W_hh, b_ih, b_hh)]
    tx, th0, tW_ih, tW_hh, tb_ih, tb_hh = params
    hs, h = [], th0
    for step in range(2):
        h = torch.tanh(tx[step] @ tW_ih.T + tb_ih + h @ tW_hh.T + tb_hh)
        hs.append(h)
    (torch.stack(hs) * d_output).sum().backward()
    for name, p in zip(("x", "h0", "W_ih", "W_hh", "b_ih", "b_hh"), params):
        agree(g[name], p.grad, f"bptt: d{name}")
    h_a, h_b = hs[0].detach()[0], hs[1].detach()[0]
    dh1 = d_output[1, 0]
    da1 = dh1 * (1 - h_b ** 2)
    dh_next = da1 @ W_hh
    dh0_total = d_output[0, 0] + dh_next
    da0 = dh0_total * (1 - h_a ** 2)
    tr = sol.truncated_bptt(x, h0, W_ih, W_hh, b_ih, b_hh, d_output, 1)
    full = sol.truncated_bptt(x, h0, W_ih, W_hh, b_ih, b_hh, d_output, 2)
    for name in g:
        agree(full[name], g[name], f"bptt: truncated with k >= T is full BPTT ({name})")
    grads = [t([3.0, 0.0]), t([[4.0]])]
    clipped, norm = sol.clip_grad_norm(grads, 1.0)
    kept, _ = sol.clip_grad_norm(grads, 10.0)  # max_norm 1 and 10: clip_max, kept_max below
    tg = [p.clone() for p in grads]
    ps = [torch.nn.Parameter(torch.zeros_like(p)) for p in tg]
    for p, gr in zip(ps, tg):
        p.grad = gr.clone()
    agree(norm, torch.nn.utils.clip_grad_norm_(ps, 1.0), "bptt: total norm")
    for ours, p in zip(clipped, ps):
        agree(ours, p.grad, "bptt: clipped")
    return dict(
        h_0=h_a, h_1=h_b, d_output0=d_output[0, 0], d_output1=d_output[1, 0],
        one_minus_h1_sq=1 - h_b ** 2, da1=da1, dW_ih_step1=da1.unsqueeze(1) * x[1, 0],
        dW_hh_step1=da1.unsqueeze(1) * h_a.unsqueeze(0), dx1=da1 @ W_ih, dh_next=dh_next,
        dh0_total=dh0_total, one_minus_h0_sq=1 - h_a ** 2, da0=da0, dx0=da0 @ W_ih,
        dx=g["x"][:, 0, 0], dh0=g["h0"][0], dW_ih=g["W_ih"], dW_hh=g["W_hh"], db=g["b_ih"],
        tr_da0=d_output[0, 0] * (1 - h_a ** 2), tr_dx=tr["x"][:, 0, 0], tr_dh0=tr["h0"][0],
        tr_dW_ih=tr["W_ih"], tr_dW_hh=tr["W_hh"], tr_db=tr["b_ih"],
        d_h_n=d_h_n[0], clip_max=1.0, kept_max=10.0,
        clip_in_a=grads[0], clip_in_b=grads[1], clip_norm=norm, clip_factor=1.0 / (norm + 1e-6),
        clip_a=clipped[0], clip_b=clipped[1], kept_a=kept[0], kept_b=kept[1],
        wrong_each_a=grads[0] / grads[0].norm(), wrong_each_b=grads[1] / grads[1].norm(),
    )


@example
def lstm_example():
    sol = solution("lstm")
    W_ih = t([[0.5], [1.0], [0.5], [-1.0]])   # (4H=4, I=1): rows i, f, g, o
    W_hh = t([[-2.0], [1.0], [1.0], [0.0]])   # (4H=4, H=1)
    b_ih = t([0.5, 0.0, 0.0, 0.0])
    b_hh = t([0.0, 0.5, 0.0, 0.0])
    x, h, c = t([[1.0]]), t([[0.5]]), t([[0.5]])
    i, f, g, o = sol.lstm_gates(x, h, W_ih, W_hh, b_ih, b_hh)
    h1, c1 = sol.lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh)
    cell = torch.nn.LSTMCell(1, 1).double()
    with torch.no_grad():
        for p, w in zip((cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh), (W_ih, W_hh, b_ih, b_hh)):
            p.copy_(w)
        rh, rc = cell(x, (h, c))
    agree(h1, rh, "lstm: h'")
    agree(c1, rc, "lstm: c'")
    z = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    # CS231n's order (i, f, o, g) read from torch's layout: the last two chunks swap roles
    o_w, g_w = torch.sigmoid(z[0, 2]), torch.tanh(z[0, 3])
    c_w = f[0, 0] * c[0, 0] + i[0, 0] * g_w
    d_h_next, d_c_next = t([[1.0]]), t([[0.5]])
    grads = sol.lstm_cell_backward(x, h, c, W_ih, W_hh, b_ih, b_hh, d_h_next, d_c_next)
    ps = [p.clone().requires_grad_() for p in (x, h, c, W_ih, W_hh, b_ih, b_hh)]
    th, tc = sol.lstm_cell(*ps)
    ((th * d_h_next).sum() + (tc * d_c_next).sum()).backward()
    for name, ours, p in zip(("dx", "dh", "dc", "dW_ih", "dW_hh", "db_ih", "db_hh"), grads, ps):
        agree(ours, p.grad, f"lstm: {name}")
    dx, dh, dc, dW_ih, dW_hh, db_ih, _ = grads
    tanh_c = torch.tanh(c1)
    d_c_new = d_h_next * o * (1 - tanh_c ** 2) + d_c_next
    xs = t([[[1.0]], [[-1.0]]])
    output, (h_n, c_n) = sol.lstm_forward(xs, W_ih, W_hh, b_ih, b_hh, (h.unsqueeze(0), c.unsqueeze(0)))
    ref = torch.nn.LSTM(1, 1).double()
    with torch.no_grad():
        for p, w in zip((ref.weight_ih_l0, ref.weight_hh_l0, ref.bias_ih_l0, ref.bias_hh_l0), (W_ih, W_hh, b_ih, b_hh)):
            p.copy_(w)
        r_out, (r_h, r_c) = ref(xs, (h.unsqueeze(0), c.unsqueeze(0)))
    agree(output, r_out, "lstm: output")
    agree(c_n, r_c, "lstm: c_n")
    s = lambda v: v[0, 0]  # noqa: E731  (the (1, 1) tensors of this example, as scalars)
    return dict(
        W_ih=W_ih[:, 0], W_hh=W_hh[:, 0], b_ih=b_ih, b_hh=b_hh, x=s(x), h=s(h), c=s(c),
        z=z[0], i=s(i), f=s(f), g=s(g), o=s(o), fc=s(f * c), ig=s(i * g), c1=s(c1), tanh_c1=s(tanh_c), h1=s(h1),
        wrong_o=o_w, wrong_g=g_w, wrong_c1=c_w, wrong_c1_no_forget=s(c + i * g), wrong_h1_no_tanh=s(o * c1),
        d_h_next=s(d_h_next), d_c_next=s(d_c_next), d_c_via_h=s(d_h_next * o * (1 - tanh_c ** 2)),
        d_c_new=s(d_c_new), d_i=s(d_c_new * g), d_f=s(d_c_new * c), d_g=s(d_c_new * i), d_o=s(d_h_next * tanh_c),
        dz=db_ih, dx=s(dx), dh=s(dh), dc=s(dc), dW_ih=dW_ih[:, 0], dW_hh=dW_hh[:, 0],
        seq_x=xs[:, 0, 0], seq_out=output[:, 0, 0], seq_c_n=s(c_n[0]),
    )


def _gru_weights():
    W_ih = t([[1.0], [-1.0], [0.0], [1.0], [0.5], [-1.0]])                               # (3H=6, I=1): r, z, n
    W_hh = t([[1.0, 0.0], [0.0, 1.0], [0.0, -2.0], [1.0, 0.0], [1.0, -1.0], [2.0, 0.0]])  # (3H=6, H=2)
    b_ih = t([0.0, 0.0, 0.0, 0.0, 0.5, 0.0])
    b_hh = t([0.0, 0.5, 0.0, 0.0, 0.0, 1.0])
    return W_ih, W_hh, b_ih, b_hh


@example
def gru_example():
    sol = solution("gru")
    W_ih, W_hh, b_ih, b_hh = _gru_weights()
    x, h = t([[1.0]]), t([[0.5, -0.5]])
    h1 = sol.gru_cell(x, h, W_ih, W_hh, b_ih, b_hh)
    cell = torch.nn.GRUCell(1, 2).double()
    with torch.no_grad():
        for p, w in zip((cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh), (W_ih, W_hh, b_ih, b_hh)):
            p.copy_(w)
        agree(h1, cell(x, h), "gru: h'")
    gi, gh = (x @ W_ih.T + b_ih)[0], (h @ W_hh.T + b_hh)[0]
    r, z = torch.sigmoid(gi[0:2] + gh[0:2]), torch.sigmoid(gi[2:4] + gh[2:4])
    n = torch.tanh(gi[4:6] + r * gh[4:6])
    hv = h[0]
    # the usual slips, one at a time
    n_paper = torch.tanh(gi[4:6] + (r * hv) @ W_hh[4:6].T + b_hh[4:6])       # d2l / the paper: (r * h) W_hn^T
    n_bias_out = torch.tanh(gi[4:6] + r * (gh[4:6] - b_hh[4:6]) + b_hh[4:6])  # b_hn outside r * (...)
    r_zrn, z_zrn = z, r                                                        # chunks read as z, r, n
    n_zrn = torch.tanh(gi[4:6] + r_zrn * gh[4:6])
    d_h_next = t([[1.0, 0.5]])
    grads = sol.gru_cell_backward(x, h, W_ih, W_hh, b_ih, b_hh, d_h_next)
    ps = [p.clone().requires_grad_() for p in (x, h, W_ih, W_hh, b_ih, b_hh)]
    tcell = torch.nn.GRUCell(1, 2).double()
    with torch.no_grad():
        for p, w in zip((tcell.weight_ih, tcell.weight_hh, tcell.bias_ih, tcell.bias_hh), (W_ih, W_hh, b_ih, b_hh)):
            p.copy_(w)
    (tcell(ps[0], ps[1]) * d_h_next).sum().backward()
    refs = (ps[0].grad, ps[1].grad, tcell.weight_ih.grad, tcell.weight_hh.grad, tcell.bias_ih.grad, tcell.bias_hh.grad)
    for name, ours, ref in zip(("dx", "dh", "dW_ih", "dW_hh", "db_ih", "db_hh"), grads, refs):
        agree(ours, ref, f"gru: {name}")
    dx, dh, dW_ih, dW_hh, db_ih, db_hh = grads
    g = d_h_next[0]
    d_n, d_z, d_h_direct = g * (1 - z), g * (hv - n), g * z
    d_a_n = d_n * (1 - n ** 2)
    d_r = d_a_n * gh[4:6]
    xs = t([[[1.0]], [[-1.0]]])
    output, h_n = sol.gru_forward(xs, [(W_ih, W_hh, b_ih, b_hh)], h.unsqueeze(0))
    ref = torch.nn.GRU(1, 2).double()
    with torch.no_grad():
        for p, w in zip((ref.weight_ih_l0, ref.weight_hh_l0, ref.bias_ih_l0, ref.bias_hh_l0), (W_ih, W_hh, b_ih, b_hh)):
            p.copy_(w)
        r_out, r_h = ref(xs, h.unsqueeze(0))
    agree(output, r_out, "gru: output")
    agree(h_n, r_h, "gru: h_n")
    return dict(
        W_ih=W_ih[:, 0], W_hh_r=W_hh[0:2], W_hh_z=W_hh[2:4], W_hh_n=W_hh[4:6], b_ih=b_ih, b_hh=b_hh,
        x=x[0, 0], h=hv, gi=gi, gh=gh, a_r=gi[0:2] + gh[0:2], a_z=gi[2:4] + gh[2:4], r=r, z=z,
        i_n=gi[4:6], h_n=gh[4:6], r_h_n=r * gh[4:6], a_n=gi[4:6] + r * gh[4:6], n=n,
        one_minus_z_n=(1 - z) * n, z_h=z * hv, h1=h1[0],
        paper_n=n_paper, paper_h1=(1 - z) * n_paper + z * hv,
        bias_out_n=n_bias_out, bias_out_h1=(1 - z) * n_bias_out + z * hv,
        swapped_h1=z * n + (1 - z) * hv, zrn_h1=(1 - z_zrn) * n_zrn + z_zrn * hv,
        d2l_W_xr=W_ih[0:2].T, d2l_W_hz=W_hh[2:4].T,
        d_h_next=g, d_n=d_n, d_z=d_z, d_h_direct=d_h_direct, d_an=d_a_n, d_r=d_r,
        d_ar=db_ih[0:2], d_az=db_ih[2:4], d_an_r=d_a_n * r,
        db_ih=db_ih, db_hh=db_hh, dx=dx[0, 0], dh=dh[0], dh_no_direct=dh[0] - d_h_direct,
        dW_ih=dW_ih[:, 0], dW_hh_n=dW_hh[4:6],
        seq_x=xs[:, 0, 0], seq_out0=output[0, 0], seq_out1=output[1, 0],
    )


@example
def norms_example():
    sol = solution("norms")
    F = torch.nn.functional
    x = t([[2.0, 4.0, 6.0]])
    weight, bias = t([1.0, 2.0, 0.5]), t([0.0, 0.0, 1.0])
    d_out = t([[1.0, 0.0, 0.0]])
    y = sol.layer_norm(x, 3, weight, bias)
    agree(y, F.layer_norm(x, (3,), weight, bias), "norms: layer_norm")
    x_hat = sol.layer_norm(x, 3)
    dx, dw, db = sol.layer_norm_backward(x, 3, weight, bias, 1e-5, d_out)
    ps = [p.clone().requires_grad_() for p in (x, weight, bias)]
    (F.layer_norm(ps[0], (3,), ps[1], ps[2]) * d_out).sum().backward()
    for name, ours, p in zip(("dx", "dweight", "dbias"), (dx, dw, db), ps):
        agree(ours, p.grad, f"norms: layer_norm {name}")
    r = sol.rms_norm(x, 3, weight)
    agree(r, F.rms_norm(x, (3,), weight), "norms: rms_norm")
    r_hat = sol.rms_norm(x, 3)
    rdx, rdw = sol.rms_norm_backward(x, 3, weight, None, d_out)
    ps = [p.clone().requires_grad_() for p in (x, weight)]
    (F.rms_norm(ps[0], (3,), ps[1]) * d_out).sum().backward()
    for name, ours, p in zip(("dx", "dweight"), (rdx, rdw), ps):
        agree(ours, p.grad, f"norms: rms_norm {name}")
    g = d_out * weight
    small = t([[1e-3, -1e-3]])
    ln_small = sol.layer_norm(small, 2)
    agree(ln_small, F.layer_norm(small, (2,)), "norms: small inputs")
    ones, zeros, eye = torch.ones(3, dtype=D), torch.zeros(3, dtype=D), torch.eye(3, dtype=D)
    pre = sol.pre_norm_block(x, ones, zeros, eye, zeros)
    post = sol.post_norm_block(x, ones, zeros, eye, zeros)
    return dict(
        x=x[0], weight=weight, bias=bias, mean=x.mean(), xc=(x - x.mean())[0], var=x.var(correction=0),
        std=torch.sqrt(x.var(correction=0) + 1e-5), x_hat=x_hat[0], y=y[0],
        var_unbiased=x.var(), x_hat_unbiased=((x - x.mean()) / x.std())[0],
        d_out=d_out[0], g=g[0], mean_g=g.mean(), mean_g_xhat=(g * x_hat).mean(),
        dx_numerator=(g - g.mean() - x_hat * (g * x_hat).mean())[0], dx=dx[0], dweight=dw, dbias=db,
        dx_sum=dx.sum(), dx_wrong_only_std=(g / torch.sqrt(x.var(correction=0) + 1e-5))[0],
        ms=(x ** 2).mean(), rms=torch.sqrt((x ** 2).mean()), r_hat=r_hat[0], r=r[0],
        r_mean_g_xhat=(g * r_hat).mean(), rdx=rdx[0], rdweight=rdw,
        small=small[0], small_var=small.var(correction=0), ln_small=ln_small[0],
        ln_small_wrong=(small / (small.std(correction=0) + 1e-5))[0],
        f_x=torch.relu(x)[0], pre=pre[0], post=post[0], relu_x_hat=torch.relu(x_hat)[0],
        two_x=(2 * x)[0],
    )


# ----------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def compute(topic: str) -> dict[str, str]:
    """``{"topic.name": displayed text}`` for every named value of ``topic``'s worked example."""
    with torch.random.fork_rng(devices=[]):  # torch modules built here draw their initial weights
        values = EXAMPLES[topic]()
    return {f"{topic}.{name}": display(value) for name, value in values.items()}


def guide_paths(topic: str) -> list[Path]:
    return [ROOT / "exercises" / topic / name for name in GUIDES]


def rewrite(text: str, values: dict[str, str]) -> str:
    """``text`` with the number between every marker replaced by its computed value."""
    def sub(m):
        if m.group(1) not in values:
            raise KeyError(f"no value named {m.group(1)!r}")
        return f"<!--num:{m.group(1)}-->{values[m.group(1)]}<!--/num-->"
    return MARKER.sub(sub, text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.kata.guide_numbers", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the numbers in every guide")
    parser.add_argument("topics", nargs="*", help="topics (default: all)")
    args = parser.parse_args(argv)
    stale = 0
    for topic in args.topics or list(EXAMPLES):
        values = compute(topic)
        for path in guide_paths(topic):
            if not path.exists():
                print(f"{path.relative_to(ROOT)}: missing")
                stale += 1
                continue
            old = path.read_text(encoding="utf-8")
            new = rewrite(old, values)
            if new != old:
                stale += 1
                if args.write:
                    path.write_text(new, encoding="utf-8")
                print(f"{path.relative_to(ROOT)}: {'rewritten' if args.write else 'stale'}")
        if not args.write:
            for key, text in values.items():
                print(f"{key} = {text}")
    return 0 if args.write or not stale else 1


if __name__ == "__main__":
    sys.exit(main())
