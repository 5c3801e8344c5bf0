"""Public tests: run ``pytest exercises/bptt``. The graded suite checks much more."""
import torch

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
    grads = rnn_backward(x, h0, *weights, d_output, d_h_n)
    for name in NAMES:
        torch.testing.assert_close(grads[name], expected[name], msg=f"gradient of {name}")


def test_truncated_bptt_matches_detached_windows():
    x, h0, weights, d_output, _ = _problem(T=5)
    expected = _autograd(x, h0, weights, d_output, k=2)
    grads = truncated_bptt(x, h0, *weights, d_output, 2)
    for name in NAMES:
        torch.testing.assert_close(grads[name], expected[name], msg=f"gradient of {name}")


def test_clip_grad_norm_matches_torch():
    g = torch.Generator().manual_seed(1)
    grads = [torch.randn(3, 2, generator=g, dtype=torch.float64) * 3, torch.randn(4, generator=g, dtype=torch.float64)]
    params = [torch.zeros_like(t, requires_grad=True) for t in grads]
    for p, t in zip(params, grads):
        p.grad = t.clone()
    expected_norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
    clipped, total_norm = clip_grad_norm(grads, 1.0)
    torch.testing.assert_close(total_norm, expected_norm)
    for c, p in zip(clipped, params):
        torch.testing.assert_close(c, p.grad)
