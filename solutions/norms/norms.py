"""LayerNorm and RMSNorm by hand: forward, manual backward, and the pre-norm / post-norm residual block.

Reference solution. The stub in ``exercises/norms/norms.py`` explains the math.
"""
import torch


def _dims(x: torch.Tensor, normalized_shape) -> tuple:
    """The normalized dims (the last ``len(normalized_shape)``) and the batch dims (the others)."""
    nd = 1 if isinstance(normalized_shape, int) else len(normalized_shape)
    dims = tuple(range(x.dim() - nd, x.dim()))
    batch_dims = tuple(range(x.dim() - nd))
    return dims, batch_dims


def _batch_sum(t: torch.Tensor, batch_dims: tuple) -> torch.Tensor:
    """``t`` summed over the batch dims; a copy of ``t`` when there are none (``sum(dim=())`` would sum
    over every dim, and ``t`` itself, often the caller's ``d_out``, must not be handed back)."""
    return t.sum(dim=batch_dims) if batch_dims else t.clone()


def _layer_norm_stats(x, dims, eps):
    """``x_hat = (x - mean) / sqrt(var + eps)`` and ``1 / sqrt(var + eps)`` over ``dims``."""
    mean = x.mean(dim=dims, keepdim=True)
    xc = x - mean
    var = xc.pow(2).mean(dim=dims, keepdim=True)
    inv_std = 1.0 / torch.sqrt(var + eps)
    return xc * inv_std, inv_std


def _rms_stats(x, dims, eps):
    """``x_hat = x / sqrt(mean(x^2) + eps)`` and ``1 / sqrt(mean(x^2) + eps)`` over ``dims``."""
    if eps is None:
        eps = torch.finfo(x.dtype).eps
    ms = x.pow(2).mean(dim=dims, keepdim=True)
    inv_rms = 1.0 / torch.sqrt(ms + eps)
    return x * inv_rms, inv_rms


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last dims; like ``F.layer_norm``."""
    dims, _ = _dims(x, normalized_shape)
    y, _ = _layer_norm_stats(x, dims, eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def rms_norm(x, normalized_shape, weight=None, eps=None):
    """``x / sqrt(mean(x^2) + eps) * weight`` over the last dims; like ``F.rms_norm``."""
    dims, _ = _dims(x, normalized_shape)
    y, _ = _rms_stats(x, dims, eps)
    if weight is not None:
        y = y * weight
    return y


def layer_norm_backward(x, normalized_shape, weight, bias, eps, d_out):
    """Gradients of ``layer_norm`` with respect to ``x``, ``weight`` and ``bias`` (None where None)."""
    dims, batch_dims = _dims(x, normalized_shape)
    x_hat, inv_std = _layer_norm_stats(x, dims, eps)
    g = d_out * weight if weight is not None else d_out
    dx = inv_std * (g - g.mean(dim=dims, keepdim=True) - x_hat * (g * x_hat).mean(dim=dims, keepdim=True))
    dweight = _batch_sum(d_out * x_hat, batch_dims) if weight is not None else None
    dbias = _batch_sum(d_out, batch_dims) if bias is not None else None
    return dx, dweight, dbias


def rms_norm_backward(x, normalized_shape, weight, eps, d_out):
    """Gradients of ``rms_norm`` with respect to ``x`` and ``weight`` (None where None)."""
    dims, batch_dims = _dims(x, normalized_shape)
    x_hat, inv_rms = _rms_stats(x, dims, eps)
    g = d_out * weight if weight is not None else d_out
    dx = inv_rms * (g - x_hat * (g * x_hat).mean(dim=dims, keepdim=True))
    dweight = _batch_sum(d_out * x_hat, batch_dims) if weight is not None else None
    return dx, dweight


def _feed_forward(z, W, b):
    """The sublayer: ``relu(z @ W.T + b)``, position-wise."""
    return torch.relu(z @ W.T + b)


def pre_norm_block(x, norm_weight, norm_bias, W, b, eps=1e-5):
    """``x + f(layer_norm(x))``: normalize the sublayer's input, keep the residual path clean."""
    return x + _feed_forward(layer_norm(x, x.shape[-1:], norm_weight, norm_bias, eps), W, b)


def post_norm_block(x, norm_weight, norm_bias, W, b, eps=1e-5):
    """``layer_norm(x + f(x))``: normalize after the residual addition (the original Transformer)."""
    return layer_norm(x + _feed_forward(x, W, b), x.shape[-1:], norm_weight, norm_bias, eps)
