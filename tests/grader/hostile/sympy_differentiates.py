
# Appended to the norms solution (a red-team pass's). The hand-written gradients are not derived by
# hand: sympy, which PyTorch loads, differentiates the forward symbolically. What stops it: a server for
# hand-written gradients replaces sympy's and mpmath's differentiation (worker._no_symbolic_differentiation).
# ---- the gradients below are NOT derived by hand: sympy differentiates the forward symbolically ----
import functools as _functools
import math as _math
import sympy as _sp


@_functools.lru_cache(maxsize=None)
def _derived(kind, n, has_w, has_b):
    xs = _sp.symbols(f"x0:{n}")
    ds = _sp.symbols(f"d0:{n}")
    ws = _sp.symbols(f"w0:{n}") if has_w else None
    bs = _sp.symbols(f"b0:{n}") if has_b else None
    eps = _sp.Symbol("eps")
    # the forward, one vector of n entries, written once in sympy
    if kind == "layer":
        m = sum(xs) / n
        c = [xi - m for xi in xs]
        v = sum(ci ** 2 for ci in c) / n
    else:
        c = list(xs)
        v = sum(ci ** 2 for ci in c) / n
    y = [ci / _sp.sqrt(v + eps) for ci in c]
    if has_w:
        y = [yi * wi for yi, wi in zip(y, ws)]
    if has_b:
        y = [yi + bi for yi, bi in zip(y, bs)]
    loss = sum(di * yi for di, yi in zip(ds, y))
    wrt = list(xs) + (list(ws) if has_w else []) + (list(bs) if has_b else [])
    grads = [_sp.diff(loss, s) for s in wrt]          # symbolic differentiation: automatic
    args = list(xs) + list(ds) + (list(ws) if has_w else []) + (list(bs) if has_b else []) + [eps]
    return _sp.lambdify(args, grads, modules=[{"sqrt": torch.sqrt}], cse=True)


def _by_sympy(kind, x, normalized_shape, weight, bias, eps, d_out):
    dims, batch_dims = _dims(x, normalized_shape)
    shape = x.shape[x.dim() - len(dims):]
    n = _math.prod(shape)
    f = _derived(kind, n, weight is not None, bias is not None)
    xr = x.reshape(-1, n)
    dr = d_out.reshape(-1, n)
    cols = [xr[:, i] for i in range(n)] + [dr[:, i] for i in range(n)]
    if weight is not None:
        cols += [weight.reshape(n)[i] for i in range(n)]
    if bias is not None:
        cols += [bias.reshape(n)[i] for i in range(n)]
    g = f(*cols, eps)
    g = [t if torch.is_tensor(t) else torch.full_like(xr[:, 0], float(t)) for t in g]
    g = [t.expand(xr.shape[0]) for t in g]
    dx = torch.stack(g[:n], dim=-1).reshape(x.shape)
    k = n
    dw = db = None
    if weight is not None:
        dw = torch.stack(g[k:k + n], dim=-1).sum(0).reshape(shape).clone()
        k += n
    if bias is not None:
        db = torch.stack(g[k:k + n], dim=-1).sum(0).reshape(shape).clone()
    return dx, dw, db


def layer_norm_backward(x, normalized_shape, weight, bias, eps, d_out):
    return _by_sympy("layer", x, normalized_shape, weight, bias, eps, d_out)


def rms_norm_backward(x, normalized_shape, weight, eps, d_out):
    if eps is None:
        eps = torch.finfo(x.dtype).eps
    dx, dw, _ = _by_sympy("rms", x, normalized_shape, weight, None, eps, d_out)
    return dx, dw
