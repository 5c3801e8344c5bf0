"""An embedding layer, like ``torch.nn.functional.embedding``, its backward written by hand, and
bags of embeddings, like ``torch.nn.functional.embedding_bag``.

A model cannot multiply a word or a character: it first turns each token into an integer id (its
index in the vocabulary), then each id into a learned vector. An embedding is a table ``weight`` of
shape ``(V, D)``: one row of ``D`` numbers per token of a vocabulary of ``V`` tokens. Looking up a
token is reading its row:

    out[..., :] = weight[ids[...], :]

That is the same as multiplying a one-hot row vector by ``weight``, without building the one-hot.

Shapes:
  * ``weight``: ``(V, D)``, ``V = num_embeddings`` rows of size ``D = embedding_dim``;
  * ``ids``: integer tensor (int64) of any shape, e.g. ``(B, T)`` for a batch of sequences, or a
    single id of 0 dims; every id is in ``0 .. V-1``;
  * ``embedding(ids, weight)``: ``(*ids.shape, D)``: a vector in place of every id.

The backward. If the loss depends on the looked-up vectors through ``d_out`` (its gradient with
respect to ``out``, same shape as ``out``), then the gradient with respect to the table is

    d_weight[v] = sum of d_out[...] over every position where ids[...] == v

Rows of tokens that never appear get zeros. A token that appears twice gets BOTH gradients added:
writing ``d_weight[ids] = d_out`` keeps only one of them (assignment, not accumulation);
``index_add_`` or ``index_put_(..., accumulate=True)`` on a fresh zero tensor accumulates.

Padding. Sequences of different lengths are padded to one length with a special token, the padding
id. With ``padding_idx=p``, as in torch:
  * the forward is unchanged (the padding row is looked up like any other);
  * the padding row receives NO gradient: ``d_weight[p]`` is zeros, and in ``embedding`` itself, the
    gradient that autograd computes for ``weight[p]`` must be zero too (so training never moves it);
  * a negative ``padding_idx`` counts from the end, like a Python index: ``-1`` is row ``V - 1``.

Bags. ``embedding_bag(ids, weight, mode)`` with ``ids`` of shape ``(B, L)`` gives one vector per row
("bag") of ids: the sum (``mode="sum"``) or the mean (``mode="mean"``) of its ``L`` embeddings,
``(B, D)``. With ``padding_idx``, padding ids are left out of the bag: they add nothing to the sum
and are not counted in the mean; a bag with nothing left (only padding) gives zeros.

Pitfalls:
  * accumulate repeated ids in the backward (see above);
  * the padding row: no gradient, in both ``embedding`` and ``embedding_backward``; negative
    ``padding_idx``;
  * the mean of a bag divides by the number of NON-padding ids, and never by zero;
  * work on the device and dtype of the inputs: new tensors with ``d_out.new_zeros(...)`` or
    ``device=...``/``dtype=...``; the ids stay integers, the result has ``weight``'s dtype;
  * do not change ``ids``, ``weight`` or ``d_out`` in place (``index_add_`` on a tensor you created
    yourself is fine).

Not allowed here (you write them): ``torch.nn.functional.embedding``, ``torch.nn.Embedding``,
``torch.nn.functional.embedding_bag``, ``torch.nn.EmbeddingBag``, ``torch.embedding`` and their
relatives; in ``embedding_backward``, autograd (``torch.autograd``, ``.backward()``, ``torch.func``).
Indexing (``weight[ids]``), ``index_add_``, ``torch.where``, ``sum``, ``@`` are fine.
Guide: GUIDE.md (English), GUIDE.zh.md (中文).
"""
import torch


def embedding(ids, weight, padding_idx=None):
    """The embedding of every id, like ``F.embedding(ids, weight, padding_idx)``.

    Args:
        ids: int64 tensor of any shape, values in ``0 .. V-1``.
        weight: ``(V, D)`` table.
        padding_idx: None, or the padding id (negative counts from the end): its row is looked up as
            usual but must receive no gradient when autograd differentiates your result (hint: the
            values of ``t.detach()`` are those of ``t``, and no gradient flows through it).

    Returns:
        ``(*ids.shape, D)``.
    """
    raise NotImplementedError


def embedding_backward(ids, d_out, num_embeddings, padding_idx=None):
    """The gradient of the loss with respect to ``weight``, without autograd.

    Args:
        ids: int64 tensor of any shape, as given to ``embedding``.
        d_out: ``(*ids.shape, D)``, the gradient of the loss with respect to ``embedding``'s output.
        num_embeddings: ``V``, the number of rows of ``weight``.
        padding_idx: None, or the padding id (negative counts from the end): its row gets zeros.

    Returns:
        ``d_weight``: ``(V, D)``, with ``d_out``'s dtype and device; rows of ids that appear several
        times accumulate; rows of ids that do not appear are zeros.
    """
    raise NotImplementedError


def embedding_bag(ids, weight, mode="mean", padding_idx=None):
    """One vector per bag, like ``F.embedding_bag(ids, weight, mode=mode, padding_idx=padding_idx)``.

    Args:
        ids: ``(B, L)`` int64: ``B`` bags of ``L`` ids each.
        weight: ``(V, D)`` table.
        mode: ``"sum"`` or ``"mean"`` of each bag's embeddings; anything else raises ``ValueError``.
        padding_idx: None, or an id left out of every bag (adds nothing, not counted in the mean).

    Returns:
        ``(B, D)``; a bag of padding only gives zeros in both modes. Differentiable with respect to
        ``weight`` (autograd through your code must give torch's gradient).
    """
    raise NotImplementedError
