"""Public tests: run ``pytest exercises/embedding``. The graded suite checks much more."""
import torch
import torch.nn.functional as F

from embedding import embedding, embedding_backward, embedding_bag

torch.manual_seed(0)
V, D = 5, 3
IDS = torch.tensor([[0, 2, 0], [2, 4, 1]])  # 0 and 2 repeat; 3 never appears


def _weight():
    return torch.randn(V, D, dtype=torch.float64)


def _autograd(fn, weight, d_out):
    w = weight.clone().requires_grad_(True)
    return torch.autograd.grad(fn(w), w, d_out)[0]


def test_lookup_matches_torch():
    weight = _weight()
    torch.testing.assert_close(embedding(IDS, weight), F.embedding(IDS, weight))
    torch.testing.assert_close(embedding(IDS[0, 1], weight), weight[2])  # a single id: shape (D,)


def test_padding_row_gets_no_gradient_through_your_forward():
    weight, d_out = _weight(), torch.randn(2, 3, D, dtype=torch.float64)
    for padding_idx in (0, -1):
        expected = _autograd(lambda w: F.embedding(IDS, w, padding_idx=padding_idx), weight, d_out)
        got = _autograd(lambda w: embedding(IDS, w, padding_idx=padding_idx), weight, d_out)
        torch.testing.assert_close(got, expected)


def test_backward_accumulates_repeated_ids():
    weight, d_out = _weight(), torch.randn(2, 3, D, dtype=torch.float64)
    expected = _autograd(lambda w: F.embedding(IDS, w), weight, d_out)
    torch.testing.assert_close(embedding_backward(IDS, d_out, V), expected)
    expected = _autograd(lambda w: F.embedding(IDS, w, padding_idx=2), weight, d_out)
    torch.testing.assert_close(embedding_backward(IDS, d_out, V, padding_idx=2), expected)


def test_bags_sum_and_mean_leave_padding_out():
    weight = _weight()
    ids = torch.tensor([[0, 0, 0], [3, 0, 1]])  # the first bag is padding only
    for mode in ("sum", "mean"):
        torch.testing.assert_close(embedding_bag(IDS, weight, mode), F.embedding_bag(IDS, weight, mode=mode))
        torch.testing.assert_close(embedding_bag(ids, weight, mode, padding_idx=0),
                                   F.embedding_bag(ids, weight, mode=mode, padding_idx=0))
