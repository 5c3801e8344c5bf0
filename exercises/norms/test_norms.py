"""Public tests: run ``pytest exercises/norms``. The graded suite checks much more."""
import torch
import torch.nn.functional as F

from norms import layer_norm, layer_norm_backward, post_norm_block, pre_norm_block, rms_norm, rms_norm_backward


def _data(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def test_layer_norm_matches_torch():
    x, w, b = _data(2, 3, 4), _data(4, seed=1), _data(4, seed=2)
    torch.testing.assert_close(layer_norm(x, (4,), w, b), F.layer_norm(x, (4,), w, b))
    torch.testing.assert_close(layer_norm(x, (3, 4)), F.layer_norm(x, (3, 4)))


def test_rms_norm_matches_torch_with_default_eps():
    x, w = _data(2, 5), _data(5, seed=1)
    torch.testing.assert_close(rms_norm(x, 5, w), F.rms_norm(x, (5,), w))
    tiny = x * 1e-4  # eps matters here
    torch.testing.assert_close(rms_norm(tiny, (5,), w, 1e-6), F.rms_norm(tiny, (5,), w, 1e-6))


def test_layer_norm_backward_matches_autograd():
    x, w, b, d_out = _data(3, 4), _data(4, seed=1), _data(4, seed=2), _data(3, 4, seed=3)
    leaves = [t.clone().requires_grad_(True) for t in (x, w, b)]
    expected = torch.autograd.grad(F.layer_norm(leaves[0], (4,), leaves[1], leaves[2]), leaves, d_out)
    for got, want in zip(layer_norm_backward(x, (4,), w, b, 1e-5, d_out), expected):
        torch.testing.assert_close(got, want)


def test_rms_norm_backward_matches_autograd():
    x, w, d_out = _data(3, 4), _data(4, seed=1), _data(3, 4, seed=3)
    leaves = [t.clone().requires_grad_(True) for t in (x, w)]
    expected = torch.autograd.grad(F.rms_norm(leaves[0], (4,), leaves[1]), leaves, d_out)
    for got, want in zip(rms_norm_backward(x, (4,), w, None, d_out), expected):
        torch.testing.assert_close(got, want)


def test_pre_and_post_norm_blocks():
    x, w, b_norm, W, b = _data(2, 3), _data(3, seed=1), _data(3, seed=2), _data(3, 3, seed=3), _data(3, seed=4)
    ln = lambda z: F.layer_norm(z, (3,), w, b_norm)  # noqa: E731
    torch.testing.assert_close(pre_norm_block(x, w, b_norm, W, b), x + torch.relu(F.linear(ln(x), W, b)))
    torch.testing.assert_close(post_norm_block(x, w, b_norm, W, b), ln(x + torch.relu(F.linear(x, W, b))))
