"""Perplexity: the exponential of the average negative log-likelihood.

A language model assigns each next token a probability. Over a text of N counted tokens,

    NLL_t = -log p(target_t | context_t)          (natural log: nats)
    perplexity = exp( (1/N) * sum_t NLL_t )

is the model's "effective branching factor": a model that spreads its probability uniformly over V
tokens has perplexity exactly V; a model that is always certain and right has perplexity 1.

Shapes: ``logits`` is ``(..., V)`` (for example ``(B, T, V)``, ``(N, V)``, or ``(V,)`` for one token),
``targets`` has the leading shape of ``logits`` (``(B, T)``, ``(N,)`` or ``()``) and holds integer
token ids.

Pitfalls:
  * exp of the MEAN, not of the sum (that explodes with the text length), and not the mean of
    per-token exps (that is a different, larger number);
  * padding: sequences in a batch are padded to one length. Padded positions are not text: leave
    them out of both the sum and the count N (``ignore_index`` marks them by token id, ``mask``
    by ``True`` for tokens that count). Dividing by all positions makes the model look better
    than it is;
  * stability: compute ``log softmax`` as ``x - max - log(sum(exp(x - max)))``; ``exp`` of a logit
    of 1e4 overflows otherwise;
  * natural logs throughout: ``exp`` undoes the natural log of the NLL. Perplexity does not depend
    on the log's base as long as the power's base matches it (``2 ** mean`` of an NLL in bits is the
    same number); ``2 ** mean`` of a natural-log NLL is simply wrong;
  * the max must be each position's own (``amax(dim=-1, keepdim=True)``): positions of very
    different scale sit in one batch, and the max of the whole tensor sends the others to ``log 0``;
  * keep everything a tensor on the input's device and dtype (no ``.item()``, no ``.detach()``), so
    that the result stays differentiable: the graded suite compares its gradient with torch's.

Inputs are read-only, in every function of this course: never change an argument in place
(``logits -= m``, ``targets[targets == -100] = 0``, ``x.clamp_``); write ``x = x - m`` and work on
new tensors. The graded suite checks every argument after each call.

You may use any torch function here, ``F.cross_entropy`` included, but writing ``token_nll`` by
hand is the point of the exercise.
Guide: GUIDE.md (English), GUIDE.zh.md (中文).
"""
import torch


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of every target token.

    Args:
        logits: ``(..., V)`` unnormalized scores.
        targets: integer ids with shape ``logits.shape[:-1]``. Ids outside ``[0, V)`` (padding such
            as -100) may appear; return any finite value there, callers leave them out.

    Returns:
        ``(...)``: ``-log softmax(logits)[..., target]``, same dtype and device as ``logits``.
    """
    raise NotImplementedError


def perplexity_from_nll(total_nll: torch.Tensor, n_tokens) -> torch.Tensor:
    """Perplexity from a summed NLL (a 0-dim tensor) and the number of tokens it sums over
    (an int or a 0-dim integer tensor): ``exp(total_nll / n_tokens)``, a 0-dim tensor of
    ``total_nll``'s dtype and device."""
    raise NotImplementedError


def perplexity(logits: torch.Tensor, targets: torch.Tensor, ignore_index=None, mask=None) -> torch.Tensor:
    """Perplexity of ``logits`` against ``targets`` over the counted tokens.

    Args:
        logits: ``(..., V)``.
        targets: ``logits.shape[:-1]`` integer ids.
        ignore_index: if given, tokens whose target equals it are not counted.
        mask: if given, a bool tensor shaped like ``targets``; only ``True`` positions count. Given
            together with ``ignore_index``, both apply: a token counts when its mask is ``True`` AND
            its target is not ``ignore_index``.

    Returns:
        0-dim tensor ``exp(sum of NLL over counted tokens / number of counted tokens)``, dtype and
        device of ``logits``, differentiable with respect to ``logits``. When no token counts, the
        mean is 0 / 0 and the result is ``nan`` (as ``exp(F.cross_entropy(...))`` gives when every
        target is ignored): no text, no perplexity.
    """
    raise NotImplementedError
