"""Public tests: run ``pytest exercises/bigram``. The graded suite checks much more."""
import math

import torch
import torch.nn.functional as F

from bigram import (build_vocab, count_matrix, neural_bigram_grad, neural_bigram_loss, nll, one_hot,
                    probabilities, sample)
from dlkata.compare import check
from dlkata.gradcheck import check_backward


def test_vocab_and_counts_of_emma():
    vocab = build_vocab(["emma"])
    assert vocab == [".", "a", "e", "m"]
    N = count_matrix(["emma"], vocab)
    expected = torch.zeros(4, 4, dtype=torch.int64)
    for a, b in [(".", "e"), ("e", "m"), ("m", "m"), ("m", "a"), ("a", ".")]:
        expected[vocab.index(a), vocab.index(b)] += 1
    check("count_matrix(['emma'], vocab)", N, expected)


def test_rows_are_smoothed_distributions():
    N = torch.tensor([[0, 2], [1, 1]])
    P = probabilities(N, k=1.0, dtype=torch.float64)
    expected = torch.tensor([[1 / 4, 3 / 4], [2 / 4, 2 / 4]], dtype=torch.float64)
    check("probabilities(N, k=1.0, dtype=float64)", P, expected)
    check("probabilities(N, k=0.0) (float32 by default)", probabilities(N, k=0.0),
          torch.tensor([[0.0, 1.0], [0.5, 0.5]]))


def test_uniform_model_has_nll_log_v():
    vocab = [".", "a", "b", "c"]
    P = torch.full((4, 4), 0.25, dtype=torch.float64)
    check("nll(['abc', 'ca'], uniform P, vocab): the mean over every bigram, '.' markers included",
          nll(["abc", "ca"], P, vocab), math.log(4))


def test_sample_follows_certain_transitions_and_the_generator():
    vocab = [".", "a", "b"]
    certain = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])  # . -> a -> b -> .
    assert sample(certain, 3, torch.Generator().manual_seed(0), vocab) == ["ab", "ab", "ab"]
    P = torch.full((3, 3), 1 / 3)
    first = sample(P, 5, torch.Generator().manual_seed(42), vocab)
    assert first == sample(P, 5, torch.Generator().manual_seed(42), vocab)


def _loss_reference(W, xs, ys, reg):
    return F.cross_entropy(F.one_hot(xs, W.shape[0]).to(W.dtype) @ W, ys) + reg * (W ** 2).mean()


def _check_neural_bigram(W, xs, ys, reg):
    Wt = W.clone().requires_grad_(True)
    expected = _loss_reference(Wt, xs, ys, reg)
    check(f"neural_bigram_loss(W, xs, ys, reg={reg})", neural_bigram_loss(W, xs, ys, reg=reg), expected.detach())
    _check_neural_bigram_grad(W, xs, ys, reg)


def _check_neural_bigram_grad(W, xs, ys, reg):
    Wt = W.clone().requires_grad_(True)
    (expected_grad,) = torch.autograd.grad(_loss_reference(Wt, xs, ys, reg), Wt)
    check_backward(f"neural_bigram_grad(W, xs, ys, reg={reg})", {"W": neural_bigram_grad(W, xs, ys, reg=reg)},
                   {"W": expected_grad}, forward=neural_bigram_loss, reference=_loss_reference,
                   inputs=dict(W=W, xs=xs, ys=ys, reg=reg), own_forward="your neural_bigram_loss")


def test_one_hot():
    xs = torch.tensor([0, 1, 1, 4])
    check("one_hot(xs, 5, float64)", one_hot(xs, 5, torch.float64), F.one_hot(xs, 5).double())
    check("one_hot(xs, 5) (float32 by default)", one_hot(xs, 5), F.one_hot(xs, 5).float())


def _problem():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(5, 5, generator=g, dtype=torch.float64)
    return W, torch.tensor([0, 1, 1, 4]), torch.tensor([1, 2, 0, 0])  # rows 2 and 3 unused: only the regularizer


def test_neural_bigram_loss_matches_cross_entropy():
    W, xs, ys = _problem()
    for reg in (0.0, 0.1):
        expected = _loss_reference(W, xs, ys, reg)
        check(f"neural_bigram_loss(W, xs, ys, reg={reg})", neural_bigram_loss(W, xs, ys, reg=reg), expected)


def test_neural_bigram_gradient_matches_autograd():
    W, xs, ys = _problem()
    for reg in (0.0, 0.1):
        _check_neural_bigram_grad(W, xs, ys, reg)


def test_neural_bigram_is_stable_for_huge_logits():
    W = torch.tensor([[1e4, 0.0, -1e4], [0.0, 1e4, 0.0], [-1e4, 0.0, 1e4]], dtype=torch.float64)
    _check_neural_bigram(W, torch.tensor([0, 1, 2]), torch.tensor([1, 1, 0]), reg=0.0)


def test_vocab_of_several_words_is_sorted_after_the_dot():
    check_vocab = build_vocab(["emma", "olivia", "ava"])
    assert check_vocab == [".", "a", "e", "i", "l", "m", "o", "v"], \
        f"build_vocab(['emma', 'olivia', 'ava']): '.' first, then the sorted characters; got {check_vocab}"
    N = count_matrix(["ava"], [".", "a", "b", "v"])  # 'b' is never used
    expected = torch.zeros(4, 4, dtype=torch.int64)
    for i, j in [(0, 1), (1, 3), (3, 1), (1, 0)]:  # .a av va a.
        expected[i, j] += 1
    check("count_matrix(['ava'], ['.', 'a', 'b', 'v'])", N, expected)


def test_nll_counts_every_bigram_dots_included():
    vocab = [".", "a", "e", "m"]
    P = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.5, 0.1, 0.2, 0.2], [0.1, 0.1, 0.1, 0.7], [0.2, 0.3, 0.1, 0.4]],
                     dtype=torch.float64)
    bigrams = [(0, 2), (2, 3), (3, 3), (3, 1), (1, 0)]  # .e em mm ma a.
    expected = -sum(math.log(P[i, j].item()) for i, j in bigrams) / len(bigrams)
    check("nll(['emma'], P, vocab): the mean over its 5 bigrams", nll(["emma"], P, vocab), expected)


def test_sample_makes_exactly_the_documented_draws():
    vocab = [".", "a", "b"]
    P = torch.tensor([[0.2, 0.5, 0.3], [0.4, 0.3, 0.3], [0.5, 0.25, 0.25]])
    g = torch.Generator().manual_seed(2147483647)
    expected = []
    for _ in range(4):  # the docstring's loop: one multinomial draw per character, the final '.' included
        out, ix = [], 0
        while True:
            ix = torch.multinomial(P[ix], 1, replacement=True, generator=g).item()
            if ix == 0:
                break
            out.append(vocab[ix])
        expected.append("".join(out))
    got = sample(P, 4, torch.Generator().manual_seed(2147483647), vocab)
    assert got == expected, f"sample(P, 4, seed 2147483647): expected {expected}, got {got}"
