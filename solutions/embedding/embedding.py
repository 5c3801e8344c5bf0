"""An embedding layer like ``F.embedding``, its backward written by hand, and bags of embeddings
like ``F.embedding_bag``.

Reference solution. The stub in ``exercises/embedding/embedding.py`` explains the math.
"""
import torch


def _padding_row(padding_idx, num_embeddings):
    """``padding_idx`` as a row number (a negative one counts from the end), or None."""
    if padding_idx is None:
        return None
    return padding_idx + num_embeddings if padding_idx < 0 else padding_idx


def embedding(ids, weight, padding_idx=None):
    """Row ``ids[...]`` of ``weight`` for every id: ``(*ids.shape, D)``."""
    out = weight[ids]
    row = _padding_row(padding_idx, weight.shape[0])
    if row is not None:  # same values, but the padding row receives no gradient
        keep = (ids != row).unsqueeze(-1)
        out = torch.where(keep, out, out.detach())
    return out


def embedding_backward(ids, d_out, num_embeddings, padding_idx=None):
    """Gradient of the loss with respect to ``weight``: ``(num_embeddings, D)``."""
    dim = d_out.shape[-1]
    d_weight = d_out.new_zeros(num_embeddings, dim)
    d_weight.index_add_(0, ids.reshape(-1), d_out.reshape(-1, dim))  # repeated ids accumulate
    row = _padding_row(padding_idx, num_embeddings)
    if row is not None:
        d_weight[row] = 0
    return d_weight


def embedding_bag(ids, weight, mode="mean", padding_idx=None):
    """One vector per bag (row of ``ids``): the sum or the mean of its embeddings, ``(B, D)``."""
    vectors = embedding(ids, weight)  # (B, L, D)
    row = _padding_row(padding_idx, weight.shape[0])
    keep = torch.ones_like(ids, dtype=weight.dtype) if row is None else (ids != row).to(weight.dtype)
    total = (vectors * keep.unsqueeze(-1)).sum(dim=1)
    if mode == "sum":
        return total
    if mode == "mean":
        count = keep.sum(dim=1, keepdim=True)
        return total / count.clamp(min=1)  # an empty bag (all padding) is zeros, not 0 / 0
    raise ValueError(f"mode must be 'sum' or 'mean', got {mode!r}")
