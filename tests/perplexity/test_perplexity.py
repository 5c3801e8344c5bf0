"""Hidden suite for perplexity: the learner's values against ``exp(F.cross_entropy(...))``."""
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from tests.compare import Mismatch, check
from tests.strategies import cases, dims, randint, randn, seeds

shapes = cases(batch=dims(1, 3), seq_len=dims(1, 5), vocab=dims(2, 9), seed=seeds())


def _inputs(case, dtype, device, scale=3.0):
    logits = randn(case.batch, case.seq_len, case.vocab, seed=case.seed, dtype=dtype, device=device, scale=scale)
    targets = randint(case.vocab, case.batch, case.seq_len, seed=case.seed + 1, device=device)
    return logits, targets


def _padded(case, targets, pad):
    """Pad every sequence after a length drawn from the seed (at least one real token in all)."""
    g = torch.Generator().manual_seed(case.seed + 2)
    lengths = torch.randint(1, case.seq_len + 1, (case.batch,), generator=g)
    lengths[0] = 1 if case.seq_len > 1 else lengths[0]  # at least one padded position when possible
    keep = (torch.arange(case.seq_len)[None, :] < lengths[:, None]).to(targets.device)
    return torch.where(keep, targets, torch.full_like(targets, pad)), keep


def _reference(logits, targets, ignore_index=-100):
    v = logits.shape[-1]
    return torch.exp(F.cross_entropy(logits.reshape(-1, v), targets.reshape(-1), ignore_index=ignore_index))


@given(case=shapes, scale=st.sampled_from([3.0, 1e4]))
def test_token_nll(impl, device, dtype, case, scale):
    logits, targets = _inputs(case, dtype, device, scale)
    expected = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    check("token_nll", impl.token_nll(logits, targets), expected)


@given(case=shapes)
def test_perplexity_and_gradient(impl, device, dtype, case):
    logits, targets = _inputs(case, dtype, device)
    ppl, grad = impl.drive("perplexity_and_grad", logits, targets)
    ref_logits = logits.detach().requires_grad_(True)
    expected = _reference(ref_logits, targets)
    (expected_grad,) = torch.autograd.grad(expected, ref_logits)
    check("perplexity", ppl, expected.detach())
    if grad is None:
        raise Mismatch("perplexity is not differentiable with respect to the logits "
                       "(a .item(), a detach, or a new tensor built from Python numbers?)")
    check("gradient of perplexity with respect to the logits", grad, expected_grad)


@given(case=shapes, pad=st.sampled_from([-100, 0]))
def test_ignore_index_leaves_padding_out(impl, device, dtype, case, pad):
    logits, targets = _inputs(case, dtype, device)
    targets, _ = _padded(case, targets, pad)
    check(f"perplexity with ignore_index={pad}", impl.perplexity(logits, targets, ignore_index=pad),
          _reference(logits, targets, ignore_index=pad))


@given(case=shapes)
def test_mask_leaves_padding_out(impl, device, dtype, case):
    logits, targets = _inputs(case, dtype, device)
    _, keep = _padded(case, targets, 0)
    expected = _reference(logits, torch.where(keep, targets, torch.full_like(targets, -100)))
    check("perplexity with a mask", impl.perplexity(logits, targets, mask=keep), expected)


@given(total=st.floats(0.0, 50.0), n=st.integers(1, 40))
def test_perplexity_from_nll(impl, device, dtype, total, n):
    total_nll = torch.tensor(total, dtype=dtype, device=device)
    check(f"perplexity_from_nll(total_nll={total!r}, n_tokens={n})", impl.perplexity_from_nll(total_nll, n),
          torch.exp(total_nll / n))


@given(case=shapes, level=st.floats(-5.0, 5.0))
def test_uniform_logits_give_the_vocabulary_size(impl, device, dtype, case, level):
    logits = torch.full((case.batch, case.seq_len, case.vocab), level, dtype=dtype, device=device)
    _, targets = _inputs(case, dtype, device)
    result = impl.perplexity(logits, targets)
    check(f"perplexity of uniform logits over {case.vocab} tokens", result,
          torch.tensor(float(case.vocab), dtype=dtype, device=device))


@given(case=shapes)
def test_perfect_predictions_give_one_even_with_huge_logits(impl, device, dtype, case):
    _, targets = _inputs(case, dtype, device)
    logits = F.one_hot(targets, case.vocab).to(dtype) * 1e4
    check("perplexity of certain, correct predictions (logits of 1e4)", impl.perplexity(logits, targets),
          torch.tensor(1.0, dtype=dtype, device=device))


# The device pass (tests/devices.py): every tensor input on the meta device.
import pytest  # noqa: E402  (kept with the test it serves, at the end of the module)

from tests.devices import check_devices, meta  # noqa: E402

DEVICE_CASES = {
    "token_nll": lambda: ((meta(2, 3, 5), meta(2, 3, dtype=torch.int64)), {}),
    "perplexity_from_nll": lambda: ((meta(), meta(dtype=torch.int64)), {}),
    "perplexity": lambda: ((meta(2, 3, 5), meta(2, 3, dtype=torch.int64)), {}),
    "perplexity(ignore_index, mask)": lambda: ((meta(2, 3, 5), meta(2, 3, dtype=torch.int64)),
                                               {"ignore_index": 0, "mask": meta(2, 3, dtype=torch.bool)}),
}


@pytest.mark.parametrize("case", DEVICE_CASES)
def test_device_propagation(impl, case):
    args, kwargs = DEVICE_CASES[case]()
    check_devices(impl, case.split("(")[0], *args, **kwargs)
