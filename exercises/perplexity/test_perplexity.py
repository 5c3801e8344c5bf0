"""Public tests: run ``pytest exercises/perplexity``. The graded suite checks much more."""
import math

import torch
import torch.nn.functional as F

from dlkata.compare import check
from perplexity import perplexity, perplexity_from_nll, token_nll


def test_token_nll_matches_cross_entropy():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]], dtype=torch.float64)
    targets = torch.tensor([0, 1])
    check("token_nll(logits (N, V), targets)", token_nll(logits, targets),
          F.cross_entropy(logits, targets, reduction="none"))
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, generator=g, dtype=torch.float64) * 1e4  # (B, T, V), huge logits
    targets = torch.tensor([[0, 3, 1], [2, 2, 0]])
    check("token_nll(logits (B, T, V) of +-1e4, targets)", token_nll(logits, targets),
          F.cross_entropy(logits.transpose(1, 2), targets, reduction="none"))


def test_padding_ids_give_finite_values():
    logits = torch.zeros(1, 3, 4, dtype=torch.float64)
    nll = token_nll(logits, torch.tensor([[1, -100, 2]]))
    assert isinstance(nll, torch.Tensor) and nll.shape == (1, 3), f"token_nll: expected shape (1, 3), got {nll!r}"
    assert torch.isfinite(nll).all(), f"token_nll: a padding id (-100) should give a finite value, got {nll.tolist()}"


def test_uniform_model_has_perplexity_of_the_vocabulary_size():
    logits = torch.zeros(2, 5, 7, dtype=torch.float64)
    targets = torch.randint(7, (2, 5))
    check("perplexity of a uniform model over 7 tokens", perplexity(logits, targets), 7.0)


def test_padding_is_not_counted():
    logits = torch.tensor([[[4.0, 0.0, 0.0], [0.0, 0.0, 0.0]]], dtype=torch.float64)
    targets = torch.tensor([[0, -100]])
    expected = torch.exp(F.cross_entropy(logits[0, :1], targets[0, :1]))
    check("perplexity(..., ignore_index=-100)", perplexity(logits, targets, ignore_index=-100), expected)
    mask = torch.tensor([[True, False]])
    check("perplexity(..., mask=[[True, False]])", perplexity(logits, torch.tensor([[0, 2]]), mask=mask), expected)


def test_perplexity_is_differentiable():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]], dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([0, 1])
    got = perplexity(logits, targets)
    assert isinstance(got, torch.Tensor) and got.requires_grad, \
        "perplexity: the result does not depend on logits through autograd (a .item() or .detach()?)"
    (grad,) = torch.autograd.grad(got, logits)
    leaf = logits.detach().clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(torch.exp(F.cross_entropy(leaf, targets)), leaf)
    check("autograd's gradient of your perplexity", grad, expected)


def test_from_nll():
    total = torch.tensor(6.0, dtype=torch.float64)
    check("perplexity_from_nll(6.0, 3)", perplexity_from_nll(total, 3), math.exp(2.0))
    check("perplexity_from_nll(6.0, tensor(4))", perplexity_from_nll(total, torch.tensor(4)), math.exp(1.5))
