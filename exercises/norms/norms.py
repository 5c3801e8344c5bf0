"""LayerNorm and RMSNorm by hand: forward, manual backward, and where the norm goes in a residual block.

A norm rescales each feature vector of a network on its own, so that its size stays under control
however deep the network is. Both norms here work over the LAST dims of ``x``: ``normalized_shape``
names them (an int ``D`` means ``(D,)``; ``(T, D)`` means the last two dims), and every other
(leading, "batch") dim just indexes independent vectors. With N = the number of elements in
``normalized_shape`` and all means taken over those N elements:

LayerNorm (Ba et al., 2016), ``F.layer_norm``:

    mean = mean(x)                       var = mean((x - mean)^2)      (biased: divide by N, not N - 1)
    x_hat = (x - mean) / sqrt(var + eps)
    y = x_hat * weight + bias            (weight and bias have shape normalized_shape; each may be None)

A constant vector has variance 0: its ``x_hat`` is 0 (eps keeps the division finite), so ``y = bias``.

RMSNorm (Zhang & Sennrich, 2019), ``F.rms_norm``: no centering, no bias, only the root mean square:

    x_hat = x / sqrt(mean(x^2) + eps)
    y = x_hat * weight

Backward. Given ``d_out = dL/dy`` (shape of ``x``), let ``g = d_out * weight`` (``d_out`` when there is
no weight). Every x_hat of a vector depends on every x of that vector, through the mean and the
variance, which is why the gradient is not just ``g / std``:

    LayerNorm:  dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + eps)
    RMSNorm:    dx = (g - x_hat * mean(g * x_hat)) / sqrt(mean(x^2) + eps)
    dweight = sum over the batch dims of d_out * x_hat      dbias = sum over the batch dims of d_out

(derive them: they come from the chain rule through mean and var; a finite difference checks them).

Residual blocks. A Transformer layer wraps each sublayer ``f`` in a residual connection, and the norm
can sit in two places:

    post-norm (the original Transformer):  y = layer_norm(x + f(x))
    pre-norm  (GPT-2 and most models since): y = x + f(layer_norm(x))

Pre-norm leaves the residual path ``x -> y`` untouched, so gradients flow through deep stacks
unscaled; post-norm renormalizes the sum after every layer. Here the sublayer is a position-wise
feed-forward layer, ``f(z) = relu(z @ W.T + b)`` with ``W`` of shape ``(D, D)``, and the norm is a
LayerNorm over the last dim ``D`` with ``norm_weight`` and ``norm_bias`` of shape ``(D,)``.

Pitfalls:
  * eps goes INSIDE the square root: ``sqrt(var + eps)``, not ``sqrt(var) + eps``. For inputs of
    size 1e-4 the two differ by orders of magnitude;
  * the variance is the biased one (``torch.var`` divides by N - 1 unless told ``correction=0``);
  * compute the variance as ``mean((x - mean)^2)``: ``mean(x^2) - mean^2`` cancels catastrophically
    when all inputs share a large offset;
  * ``rms_norm(..., eps=None)`` means ``eps = torch.finfo(x.dtype).eps`` (as ``F.rms_norm``), not
    1e-5 and not 0;
  * RMSNorm does not subtract the mean;
  * normalize over the last ``len(normalized_shape)`` dims, all of them, whatever the number of
    leading dims;
  * ``dweight`` and ``dbias`` have the shape of ``normalized_shape``: sum over ALL the batch dims;
  * ``x`` (and ``d_out``) may be views, e.g. a transposed attention output: reduce over the dims, or
    flatten with ``reshape``; ``x.view(-1, N)`` fails on them, in the backwards and the blocks too;
  * ``x`` may have no batch dim at all (its shape is ``normalized_shape``): ``dweight`` is then
    ``d_out * x_hat`` itself (careful: ``t.sum(dim=())`` sums over EVERY dim);
  * keep the dtype and the device of ``x`` (no ``.cpu()``, no numpy, no Python floats from ``.item()``);
  * do not change the tensors you are given in place (no ``x.sub_(mean)``; ``g = d_out`` without a
    weight is the caller's tensor), and return gradients of their own: with no batch dims,
    ``dbias`` is ``d_out.clone()``, not ``d_out`` itself (the graded suite checks it).

Not allowed here: ``F.layer_norm``, ``F.rms_norm``, ``torch.layer_norm``, ``torch.rms_norm``,
``torch.native_layer_norm``, ``nn.LayerNorm``, ``nn.RMSNorm``, and autograd (``torch.autograd.grad``,
``.backward()``, ``torch.func``): the backward functions are written by hand. Any other torch
function (``mean``, ``sqrt``, ``rsqrt``, ``relu``, ``matmul``, ...) is fine. The forwards
(``layer_norm``, ``rms_norm`` and the residual blocks) must stay differentiable: the grader runs
autograd through them and compares the gradients of every input.
Guide: GUIDE.md (English), GUIDE.zh.md (中文).
"""
import torch


def layer_norm(x: torch.Tensor, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> torch.Tensor:
    """LayerNorm over the last ``len(normalized_shape)`` dims, like ``F.layer_norm``.

    Args:
        x: ``(*batch, *normalized_shape)``.
        normalized_shape: an int ``D`` (same as ``(D,)``), or a tuple or list of the last dims' sizes
            (``(3, 4)`` and ``[3, 4]`` alike, as torch takes them).
        weight, bias: ``normalized_shape``-shaped tensors, or None (no scaling / no shift).
        eps: added to the variance, inside the square root.

    Returns:
        ``(x - mean) / sqrt(var + eps) * weight + bias``, shape, dtype and device of ``x``.
    """
    raise NotImplementedError


def rms_norm(x: torch.Tensor, normalized_shape, weight=None, eps=None) -> torch.Tensor:
    """RMSNorm over the last ``len(normalized_shape)`` dims, like ``F.rms_norm``.

    Args:
        x: ``(*batch, *normalized_shape)``.
        normalized_shape: an int, a tuple or a list, as in ``layer_norm``.
        weight: ``normalized_shape``-shaped tensor, or None.
        eps: added to the mean square inside the square root; None means ``torch.finfo(x.dtype).eps``.

    Returns:
        ``x / sqrt(mean(x^2) + eps) * weight``, shape, dtype and device of ``x``.
    """
    raise NotImplementedError


def layer_norm_backward(x: torch.Tensor, normalized_shape, weight, bias, eps: float, d_out: torch.Tensor):
    """Gradients of ``layer_norm(x, normalized_shape, weight, bias, eps)``, by hand (no autograd).

    Args:
        x, normalized_shape, weight, bias, eps: the forward's arguments (weight / bias may be None).
        d_out: ``dL/dy``, shape of ``x``.

    Returns:
        ``(dx, dweight, dbias)``: ``dx`` shaped like ``x``; ``dweight`` and ``dbias`` shaped like
        ``normalized_shape`` (summed over the batch dims), each None when its parameter is None.
    """
    raise NotImplementedError


def rms_norm_backward(x: torch.Tensor, normalized_shape, weight, eps, d_out: torch.Tensor):
    """Gradients of ``rms_norm(x, normalized_shape, weight, eps)``, by hand (no autograd).

    Args:
        x, normalized_shape, weight, eps: the forward's arguments (weight may be None, eps None
            means ``torch.finfo(x.dtype).eps`` as in the forward).
        d_out: ``dL/dy``, shape of ``x``.

    Returns:
        ``(dx, dweight)``: ``dx`` shaped like ``x``; ``dweight`` shaped like ``normalized_shape``
        (summed over the batch dims), None when ``weight`` is None.
    """
    raise NotImplementedError


def pre_norm_block(x: torch.Tensor, norm_weight, norm_bias, W, b, eps: float = 1e-5) -> torch.Tensor:
    """Pre-norm residual block: ``x + f(layer_norm(x))`` with ``f(z) = relu(z @ W.T + b)``.

    Args:
        x: ``(..., D)``.
        norm_weight, norm_bias: ``(D,)``, the LayerNorm's parameters (over the last dim).
        W: ``(D, D)``; b: ``(D,)``: the feed-forward sublayer.
        eps: the LayerNorm's eps.

    Returns:
        ``(..., D)``, differentiable with respect to every argument.
    """
    raise NotImplementedError


def post_norm_block(x: torch.Tensor, norm_weight, norm_bias, W, b, eps: float = 1e-5) -> torch.Tensor:
    """Post-norm residual block: ``layer_norm(x + f(x))`` with ``f(z) = relu(z @ W.T + b)``.

    Same arguments and result as ``pre_norm_block``.
    """
    raise NotImplementedError
