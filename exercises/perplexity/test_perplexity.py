"""Public tests: run ``pytest exercises/perplexity``. The graded suite checks much more."""
import math

import torch
import torch.nn.functional as F

from perplexity import perplexity, perplexity_from_nll, token_nll


def test_token_nll_matches_cross_entropy():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]], dtype=torch.float64)
    targets = torch.tensor([0, 1])
    expected = F.cross_entropy(logits, targets, reduction="none")
    torch.testing.assert_close(token_nll(logits, targets), expected)


def test_uniform_model_has_perplexity_of_the_vocabulary_size():
    logits = torch.zeros(2, 5, 7, dtype=torch.float64)
    targets = torch.randint(7, (2, 5))
    assert math.isclose(perplexity(logits, targets).item(), 7.0, rel_tol=1e-12)


def test_padding_is_not_counted():
    logits = torch.tensor([[[4.0, 0.0, 0.0], [0.0, 0.0, 0.0]]], dtype=torch.float64)
    targets = torch.tensor([[0, -100]])
    expected = torch.exp(F.cross_entropy(logits[0, :1], targets[0, :1]))
    torch.testing.assert_close(perplexity(logits, targets, ignore_index=-100), expected)


def test_from_nll():
    total = torch.tensor(6.0, dtype=torch.float64)
    assert math.isclose(perplexity_from_nll(total, 3).item(), math.exp(2.0))
