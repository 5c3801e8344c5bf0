"""Public tests: run ``pytest exercises/bptt``. The graded suite checks much more."""
import torch

from dlkata.compare import check, unpack
from dlkata.gradcheck import check_backward
from bptt import clip_grad_norm, rnn_backward, truncated_bptt

NAMES = ("x", "h0", "W_ih", "W_hh", "b_ih", "b_hh")


def _problem(T=4, B=2, I=3, H=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    return r(T, B, I), r(B, H), [r(H, I) * 0.6, r(H, H) * 0.6, r(H) * 0.6, r(H) * 0.6], r(T, B, H), r(B, H)


def _autograd(x, h0, weights, d_output, d_h_n=None, k=None):
    """Gradients by autograd through ``torch.nn.RNN``, windows of ``k`` steps detached from each other."""
    module = torch.nn.RNN(x.shape[2], h0.shape[1]).double()
    params = [module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0]
    with torch.no_grad():
        for p, w in zip(params, weights):
            p.copy_(w)
    x, h0 = x.clone().requires_grad_(True), h0.clone().requires_grad_(True)
    h, loss, k = h0[None], 0, k or x.shape[0]
    for start in range(0, x.shape[0], k):
        out, h = module(x[start:start + k], h if start == 0 else h.detach())
        loss = loss + (out * d_output[start:start + k]).sum()
    if d_h_n is not None:
        loss = loss + (h[0] * d_h_n).sum()
    return dict(zip(NAMES, torch.autograd.grad(loss, [x, h0, *params])))


def test_rnn_backward_matches_autograd():
    x, h0, weights, d_output, d_h_n = _problem()
    expected = _autograd(x, h0, weights, d_output, d_h_n)
    check_backward("rnn_backward", rnn_backward(x, h0, *weights, d_output, d_h_n), expected, steps="x")


def test_truncated_bptt_matches_detached_windows():
    x, h0, weights, d_output, _ = _problem(T=5)
    expected = _autograd(x, h0, weights, d_output, k=2)
    check_backward("truncated_bptt(k=2)", truncated_bptt(x, h0, *weights, d_output, 2), expected, steps="x")


def test_truncated_bptt_with_one_window_is_full_bptt():
    x, h0, weights, d_output, _ = _problem(T=3, seed=2)
    expected = _autograd(x, h0, weights, d_output)
    check_backward("truncated_bptt(k=5) on 3 steps", truncated_bptt(x, h0, *weights, d_output, 5), expected, steps="x")


def test_clip_grad_norm_matches_torch():
    g = torch.Generator().manual_seed(1)
    grads = [torch.randn(3, 2, generator=g, dtype=torch.float64) * 3, torch.randn(4, generator=g, dtype=torch.float64)]
    params = [torch.zeros_like(t, requires_grad=True) for t in grads]
    for p, t in zip(params, grads):
        p.grad = t.clone()
    expected_norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
    clipped, total_norm = unpack(clip_grad_norm(grads, 1.0), 2, "clip_grad_norm")
    check("clip_grad_norm: total_norm", total_norm, expected_norm)
    for k, (c, p) in enumerate(zip(clipped, params)):
        check(f"clip_grad_norm: clipped[{k}]", c, p.grad)


def test_small_gradients_are_not_scaled_up():
    grads = [torch.tensor([0.3, -0.4], dtype=torch.float64)]
    clipped, total_norm = unpack(clip_grad_norm(grads, 10.0), 2, "clip_grad_norm")
    check("clip_grad_norm: total_norm", total_norm, torch.tensor(0.5, dtype=torch.float64))
    check("clip_grad_norm: clipped[0] (norm 0.5 < max_norm 10: unchanged)", clipped[0], grads[0])
