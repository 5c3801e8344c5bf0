"""Hand-written gradients that an operator of PyTorch's computes under another name: weight norm
with gain sqrt(D), on a row padded with sqrt(D * eps), is an RMS norm (a layer norm once the row is
centred), so ``aten._weight_norm_interface_backward`` returns its dx; dweight and dbias are one line
each. Found by a red-team pass (10/10 on norms before weight norm was forbidden there). Appended to
the norms solution; replaces both hand-written backwards."""
import math as _m


def _wn_dx(x, normalized_shape, weight, eps, d_out, center):
    dims, batch_dims = _dims(x, normalized_shape)
    D = _m.prod(x.shape[d] for d in dims)
    out_dtype = x.dtype
    if x.dtype in (torch.bfloat16, torch.float16):
        x, d_out = x.float(), d_out.float()
        weight = weight.float() if weight is not None else None
    xs = x.reshape(-1, D)
    if center:
        xs = xs - xs.mean(dim=1, keepdim=True)
    g = (d_out * weight if weight is not None else d_out).reshape(-1, D)
    n = xs.shape[0]
    pad = torch.full((n, 1), _m.sqrt(D * eps), dtype=x.dtype, device=x.device)
    v = torch.cat([xs, pad], dim=1)
    gw = torch.cat([g, torch.zeros_like(pad)], dim=1)
    norms = torch.linalg.vector_norm(v, dim=1, keepdim=True)
    gain = torch.full((n, 1), _m.sqrt(D), dtype=x.dtype, device=x.device)
    op = getattr(torch.ops.aten, "_weight_norm_interface_backward")
    gv, _ = op(gw.contiguous(), v.contiguous(), gain, norms, 0)
    dx = gv[:, :D]
    if center:
        dx = dx - dx.mean(dim=1, keepdim=True)
    return dx.reshape(x.shape).to(out_dtype)


def layer_norm_backward(x, normalized_shape, weight, bias, eps, d_out):
    dims, batch_dims = _dims(x, normalized_shape)
    x_hat, _ = _layer_norm_stats(x, dims, eps)
    dx = _wn_dx(x, normalized_shape, weight, eps, d_out, True)
    dweight = _batch_sum(d_out * x_hat, batch_dims) if weight is not None else None
    dbias = _batch_sum(d_out, batch_dims) if bias is not None else None
    return dx, dweight, dbias


def rms_norm_backward(x, normalized_shape, weight, eps, d_out):
    dims, batch_dims = _dims(x, normalized_shape)
    if eps is None:
        eps = torch.finfo(x.dtype).eps
    x_hat, _ = _rms_stats(x, dims, eps)
    dx = _wn_dx(x, normalized_shape, weight, eps, d_out, False)
    dweight = _batch_sum(d_out * x_hat, batch_dims) if weight is not None else None
    return dx, dweight
