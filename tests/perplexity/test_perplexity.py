"""Hidden suite for perplexity: the learner's values and gradients against ``exp(F.cross_entropy(...))``.

Every promise of the stub, and the test that holds it to it (fixed ``@example``s run first):

==============================================================  ======================================
``token_nll``: ``-log softmax[target]``, logits ``(..., V)``      test_token_nll (0 to 3 leading dims; ONE_TOKEN: 0)
``token_nll``: ids outside ``[0, V)`` give a finite value         test_token_nll (padding -100, -1, 99)
stable for logits of 1e4, positions of very different scale       test_token_nll, test_perplexity_and_gradient (offset), test_perfect_*
perplexity = exp of the MEAN NLL, natural log                     test_perplexity_and_gradient
differentiable with respect to the logits                         every perplexity test but the nan one
``ignore_index`` leaves padding out of sum and count              test_ignore_index_leaves_padding_out
``mask`` (True counts) leaves padding out                         test_mask_leaves_padding_out
``mask`` together with ``ignore_index``: both apply               test_mask_and_ignore_index_together
no counted token: nan                                             test_nothing_counted_gives_nan
any ``(..., V)`` tensor, non-contiguous views (``.view`` fails)   test_non_contiguous_inputs
``perplexity_from_nll``: int or 0-dim integer tensor count        test_perplexity_from_nll
``perplexity_from_nll`` of no token: nan (0 / 0)                  test_perplexity_from_nll_of_no_tokens_is_nan
the signature's defaults: every token counts, token 0 too         test_defaults_are_the_stubs
uniform logits over V tokens: V; certain and right: 1             test_uniform_*, test_perfect_*
dtype and device of ``logits`` kept                               every test (float64, float32, cuda)
inputs are never changed in place                                 the worker's check, every call
==============================================================  ======================================
"""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

from tests.compare import Mismatch, check
from tests.strategies import Case, cases, dims, randint, randn, seeds

# lead: the leading dims of (..., V) logits, e.g. [B, T] or [N]; scale: the spread of the logits
# ("rows": positions alternate between a spread of 1e4 and of 3, so that only each position's own
# max keeps every position finite).
shapes = cases(lead=st.lists(dims(1, 4), min_size=1, max_size=3), vocab=dims(2, 9), seed=seeds())
scales = st.sampled_from([3.0, 1e4, "rows", "offset"])
pads = st.sampled_from([-100, 0, -1, 99])  # 99: beyond any vocabulary drawn

BT = Case(lead=[2, 4], vocab=5, seed=1)  # (B, T, V), some sequences padded
NV = Case(lead=[6], vocab=4, seed=2)  # (N, V)
DEEP = Case(lead=[2, 2, 3], vocab=3, seed=3)
ONE_TOKEN = Case(lead=[], vocab=5, seed=9)  # logits (V,), a target of 0 dims: no leading dim at all
LONG = Case(lead=[4, 500], vocab=5, seed=6)  # 2000 tokens: the product of their probabilities is 0, even in float64


def _logits(case, dtype, device, scale=3.0):
    if scale == "offset":  # every logit near 1e4: x - (m + log(sum)) loses float32's digits there
        return (randn(*case.lead, case.vocab, seed=case.seed, scale=3.0) + 1e4).to(dtype=dtype, device=device)
    if scale != "rows":
        return randn(*case.lead, case.vocab, seed=case.seed, dtype=dtype, device=device, scale=scale)
    z = randn(*case.lead, case.vocab, seed=case.seed)
    spread = torch.where(torch.arange(z[..., 0].numel()) % 2 == 0, 1e4, 3.0).reshape(*case.lead, 1)
    return (z * spread).to(dtype=dtype, device=device)


def _targets(case, device):
    return randint(case.vocab, *case.lead, seed=case.seed + 1, device=device)


def _padded(case, targets, pad):
    """Pad every sequence (the last leading dim) after a length drawn from the seed; the first
    sequence keeps only its first token when it has several, so that some padding is there."""
    g = torch.Generator().manual_seed(case.seed + 2)
    seqs, T = targets[..., 0].numel(), targets.shape[-1]
    lengths = torch.randint(1, T + 1, (seqs,), generator=g)
    lengths[0] = 1
    keep = (torch.arange(T)[None, :] < lengths[:, None]).reshape(targets.shape).to(targets.device)
    return torch.where(keep, targets, torch.full_like(targets, pad)), keep


def _reference(logits, targets, counted=None):
    """``exp(F.cross_entropy)`` over the ``counted`` positions (all when None), and its gradient."""
    v = logits.shape[-1]
    if counted is not None:
        targets = torch.where(counted, targets, torch.full_like(targets, -100))
    leaf = logits.detach().requires_grad_(True)
    ppl = torch.exp(F.cross_entropy(leaf.reshape(-1, v), targets.reshape(-1), ignore_index=-100))
    (grad,) = torch.autograd.grad(ppl, leaf)
    return ppl.detach(), grad


def _check_with_gradient(impl, what, logits, targets, counted, **kw):
    ppl, grad = impl.drive("perplexity_and_grad", logits, targets, **kw)
    expected, expected_grad = _reference(logits, targets, counted)
    check(what, ppl, expected)
    if grad is None:
        raise Mismatch(f"{what}: the result is not differentiable with respect to the logits "
                       "(a .item(), a detach, or a new tensor built from Python numbers?)")
    check(f"gradient of {what} with respect to the logits", grad, expected_grad)


def _shape(case):
    return f"logits of shape {(*case.lead, case.vocab)}"


@given(case=shapes, scale=scales, pad=st.sampled_from([None, -100, -1, 99]))
@example(case=BT, scale=3.0, pad=None)
@example(case=NV, scale=1e4, pad=-100)
@example(case=DEEP, scale="rows", pad=-100)
@example(case=BT, scale=3.0, pad=99)
@example(case=NV, scale=3.0, pad=-1)
@example(case=NV, scale="offset", pad=None)
@example(case=Case(lead=[1, 3], vocab=4, seed=5), scale=3.0, pad=None)  # a length-1 dim: squeeze(-1), not squeeze()
@example(case=ONE_TOKEN, scale=3.0, pad=None)
def test_token_nll(impl, device, dtype, case, scale, pad):
    """The NLL of each token; with padding ids (-100, -1, 99: outside [0, V)) among the targets, any
    finite value there."""
    logits, targets = _logits(case, dtype, device, scale), _targets(case, device)
    keep = torch.ones_like(targets, dtype=torch.bool)
    if pad is not None:
        targets, keep = _padded(case, targets, pad)
    what = f"token_nll({_shape(case)}, targets{f' holding {pad} as padding' if pad is not None else ''})"
    got = impl.token_nll(logits, targets)
    expected = F.cross_entropy(logits.reshape(-1, case.vocab), targets.reshape(-1), reduction="none",
                               ignore_index=-100 if pad is None else pad).reshape(targets.shape)
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and pad is not None:
        if not got.isfinite()[~keep].all():
            raise Mismatch(f"{what} is not finite at a padded position: return any finite value there")
        got = torch.where(keep, got, expected)  # the value at padding is free
    check(what + (" with positions of spread 1e4 and 3 in turn" if scale == "rows" else
                  " with logits of spread 3 around 1e4" if scale == "offset" else f" with logits of scale {scale:g}"),
          got, expected)


@given(case=shapes, scale=st.sampled_from([3.0, "offset"]))
@example(case=BT, scale=3.0)
@example(case=NV, scale=3.0)
@example(case=DEEP, scale=3.0)
@example(case=NV, scale="offset")
@example(case=LONG, scale=3.0)
@example(case=ONE_TOKEN, scale=3.0)
def test_perplexity_and_gradient(impl, device, dtype, case, scale):
    logits, targets = _logits(case, dtype, device, scale), _targets(case, device)
    spread = " with logits of spread 3 around 1e4" if scale == "offset" else ""
    _check_with_gradient(impl, f"perplexity({_shape(case)}){spread}", logits, targets, None)


@given(case=shapes, pad=pads)
@example(case=BT, pad=-100)
@example(case=DEEP, pad=0)
@example(case=NV, pad=99)
def test_ignore_index_leaves_padding_out(impl, device, dtype, case, pad):
    logits, targets = _logits(case, dtype, device), _targets(case, device)
    targets, _ = _padded(case, targets, pad)
    _check_with_gradient(impl, f"perplexity({_shape(case)}, ignore_index={pad})", logits, targets,
                         targets != pad, ignore_index=pad)


@given(case=shapes)
@example(case=BT)
@example(case=NV)
def test_mask_leaves_padding_out(impl, device, dtype, case):
    logits, targets = _logits(case, dtype, device), _targets(case, device)
    _, keep = _padded(case, targets, 0)
    _check_with_gradient(impl, f"perplexity({_shape(case)}, mask=...) (True: the token counts)",
                         logits, targets, keep, mask=keep)


@given(case=shapes, pad=pads)
@example(case=BT, pad=-100)
@example(case=DEEP, pad=0)
def test_mask_and_ignore_index_together(impl, device, dtype, case, pad):
    """Padding marked by ``ignore_index``, and a mask that also leaves out every other real token:
    a token counts only where both let it."""
    logits, targets = _logits(case, dtype, device), _targets(case, device)
    targets, _ = _padded(case, targets, pad)
    mask = (torch.arange(targets.numel(), device=device) % 2 == 0).reshape(targets.shape)
    _check_with_gradient(impl, f"perplexity({_shape(case)}, ignore_index={pad}, mask=...) (both apply)",
                         logits, targets, mask & (targets != pad), ignore_index=pad, mask=mask)


@pytest.mark.parametrize("case", [BT, Case(lead=[3, 2], vocab=4, seed=8)], ids=["B2_T4", "B3_T2"])
def test_non_contiguous_inputs(impl, device, dtype, case):
    """Logits, targets and mask as transposed views (a time-major model's ``(T, B, V)`` outputs moved to
    ``(B, T, V)``): ``.view(-1, V)`` refuses them, ``reshape`` and the reductions do not."""
    logits, targets = _logits(case, dtype, device), _targets(case, device)
    targets, _ = _padded(case, targets, -100)
    mask = (torch.arange(targets.numel(), device=device) % 3 != 1).reshape(targets.shape)
    ppl, grad = impl.drive("perplexity_and_grad_transposed", logits.transpose(0, 1).contiguous(),
                           targets.transpose(0, 1).contiguous(), ignore_index=-100,
                           mask=mask.transpose(0, 1).contiguous())
    expected, expected_grad = _reference(logits, targets, mask & (targets != -100))
    what = f"perplexity({_shape(case)} as a transposed, non-contiguous view, ignore_index=-100, mask=...)"
    check(what, ppl, expected)
    if grad is None:
        raise Mismatch(f"{what}: the result is not differentiable with respect to the logits")
    check(f"gradient of {what} with respect to the logits", grad, expected_grad)


@given(case=shapes, how=st.sampled_from(["ignore_index", "mask", "both"]))
@example(case=BT, how="ignore_index")
@example(case=NV, how="mask")
def test_nothing_counted_gives_nan(impl, device, dtype, case, how):
    """No token counts: nan (0 / 0). The same call with the first token counted must give that
    token's perplexity: a result that is nan for every input is no answer."""
    logits, real = _logits(case, dtype, device), _targets(case, device)
    for first in (False, True):
        targets = torch.full(case.lead, -100, device=device)
        mask = torch.zeros(case.lead, dtype=torch.bool, device=device)
        if first:
            targets.view(-1)[0] = real.view(-1)[0]
            mask.view(-1)[0] = True
        kw = {"ignore_index": -100} if how != "mask" else {}
        if how != "ignore_index":
            kw["mask"] = mask
        counted = mask if how == "mask" else targets != -100
        expected, _ = _reference(logits, targets.clamp(min=0), counted)
        what = "when only the first token counts" if first else "when no token counts (0 / 0: nan)"
        check(f"perplexity({_shape(case)}, {', '.join(kw)}) {what}", impl.perplexity(logits, targets, **kw), expected)


@given(total=st.floats(0.0, 50.0), n=st.integers(1, 40), as_tensor=st.booleans())
@example(total=6.0, n=3, as_tensor=False)
@example(total=7.5, n=4, as_tensor=True)
def test_perplexity_from_nll(impl, device, dtype, total, n, as_tensor):
    total_nll = torch.tensor(total, dtype=dtype, device=device)
    n_tokens = torch.tensor(n, device=device) if as_tensor else n
    check(f"perplexity_from_nll(total_nll={total!r}, n_tokens={n if not as_tensor else f'tensor({n})'})",
          impl.perplexity_from_nll(total_nll, n_tokens), torch.exp(total_nll / n))


@given(case=shapes, level=st.floats(-5.0, 5.0))
@example(case=BT, level=1.5)
def test_uniform_logits_give_the_vocabulary_size(impl, device, dtype, case, level):
    logits = torch.full((*case.lead, case.vocab), level, dtype=dtype, device=device)
    result = impl.perplexity(logits, _targets(case, device))
    check(f"perplexity of uniform logits over {case.vocab} tokens", result,
          torch.tensor(float(case.vocab), dtype=dtype, device=device))


@given(case=shapes)
@example(case=BT)
def test_perfect_predictions_give_one_even_with_huge_logits(impl, device, dtype, case):
    targets = _targets(case, device)
    logits = F.one_hot(targets, case.vocab).to(dtype) * 1e4
    check("perplexity of certain, correct predictions (logits of 1e4)", impl.perplexity(logits, targets),
          torch.tensor(1.0, dtype=dtype, device=device))


# The device pass (tests/devices.py): every tensor input on the meta device.
from tests.devices import check_devices, meta  # noqa: E402

DEVICE_CASES = {
    "token_nll": lambda: ((meta(2, 3, 5), meta(2, 3, dtype=torch.int64)), {}),
    "perplexity_from_nll": lambda: ((meta(), meta(dtype=torch.int64)), {}),
    "perplexity": lambda: ((meta(2, 3, 5), meta(2, 3, dtype=torch.int64)), {}),
    "perplexity(ignore_index)": lambda: ((meta(2, 3, 5), meta(2, 3, dtype=torch.int64)), {"ignore_index": 0}),
    "perplexity(ignore_index, mask)": lambda: ((meta(2, 3, 5), meta(2, 3, dtype=torch.int64)),
                                               {"ignore_index": 0, "mask": meta(2, 3, dtype=torch.bool)}),
}


@pytest.mark.gated  # device handling counts as far as the topic's values are right
@pytest.mark.parametrize("case", DEVICE_CASES)
def test_device_propagation(impl, case):
    args, kwargs = DEVICE_CASES[case]()
    check_devices(impl, case.split("(")[0], *args, **kwargs)


from tests.defaults import check_defaults  # noqa: E402


@pytest.mark.gated  # a check of how the functions are called, not of what they compute
def test_defaults_are_the_stubs(impl):
    """``perplexity`` called without ``ignore_index`` and ``mask``: every token counts, token 0 too
    (a default such as ``ignore_index=0`` would leave it out)."""
    logits = randn(2, 3, 5, seed=11, dtype=torch.float64, device="cpu")
    targets = torch.tensor([[0, 1, 2], [0, 4, 0]])
    check_defaults(impl, "perplexity", "perplexity", logits, targets)


@pytest.mark.gated  # nan is what most wrong formulas give too: it counts as far as the values are right
@pytest.mark.parametrize("as_tensor", [False, True])
def test_perplexity_from_nll_of_no_tokens_is_nan(impl, device, dtype, as_tensor):
    """Nothing counted: 0 / 0, nan, as ``perplexity`` gives; not a count quietly raised to 1."""
    total_nll = torch.tensor(0.0, dtype=dtype, device=device)
    n_tokens = torch.tensor(0, device=device) if as_tensor else 0
    check(f"perplexity_from_nll(total_nll=0.0, n_tokens={'tensor(0)' if as_tensor else 0}) (0 / 0: nan)",
          impl.perplexity_from_nll(total_nll, n_tokens), torch.tensor(float("nan"), dtype=dtype, device=device))
