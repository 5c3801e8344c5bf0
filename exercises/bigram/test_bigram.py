"""Public tests: run ``pytest exercises/bigram``. The graded suite checks much more."""
import math

import torch
import torch.nn.functional as F

from bigram import (build_vocab, count_matrix, neural_bigram_grad, neural_bigram_loss, nll, one_hot,
                    probabilities, sample)


def test_vocab_and_counts_of_emma():
    vocab = build_vocab(["emma"])
    assert vocab == [".", "a", "e", "m"]
    N = count_matrix(["emma"], vocab)
    expected = torch.zeros(4, 4, dtype=torch.int64)
    for a, b in [(".", "e"), ("e", "m"), ("m", "m"), ("m", "a"), ("a", ".")]:
        expected[vocab.index(a), vocab.index(b)] += 1
    assert torch.equal(N, expected)


def test_rows_are_smoothed_distributions():
    N = torch.tensor([[0, 2], [1, 1]])
    P = probabilities(N, k=1.0, dtype=torch.float64)
    torch.testing.assert_close(P, torch.tensor([[1 / 4, 3 / 4], [2 / 4, 2 / 4]], dtype=torch.float64))


def test_uniform_model_has_nll_log_v():
    vocab = [".", "a", "b", "c"]
    P = torch.full((4, 4), 0.25, dtype=torch.float64)
    assert math.isclose(nll(["abc", "ca"], P, vocab).item(), math.log(4), rel_tol=1e-12)


def test_sample_follows_certain_transitions_and_the_generator():
    vocab = [".", "a", "b"]
    certain = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])  # . -> a -> b -> .
    assert sample(certain, 3, torch.Generator().manual_seed(0), vocab) == ["ab", "ab", "ab"]
    P = torch.full((3, 3), 1 / 3)
    first = sample(P, 5, torch.Generator().manual_seed(42), vocab)
    assert first == sample(P, 5, torch.Generator().manual_seed(42), vocab)


def test_neural_bigram_loss_and_gradient_match_autograd():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(5, 5, generator=g, dtype=torch.float64)
    xs, ys = torch.tensor([0, 1, 1, 4]), torch.tensor([1, 2, 0, 0])
    torch.testing.assert_close(one_hot(xs, 5, torch.float64), F.one_hot(xs, 5).double())
    Wt = W.clone().requires_grad_(True)
    expected = F.cross_entropy(F.one_hot(xs, 5).double() @ Wt, ys) + 0.1 * (Wt ** 2).mean()
    expected.backward()
    torch.testing.assert_close(neural_bigram_loss(W, xs, ys, reg=0.1), expected.detach())
    torch.testing.assert_close(neural_bigram_grad(W, xs, ys, reg=0.1), Wt.grad)
