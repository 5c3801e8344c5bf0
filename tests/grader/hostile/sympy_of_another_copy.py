
# Appended to the norms solution (a fifth red-team pass's). sympy imported afresh from another copy of
# its files than the one the worker loads: the base interpreter's site-packages, or a system Python's,
# on sys.path or not. What stops it: every copy of sympy's and mpmath's folders that the worker finds
# is hidden from the children of a server without autograd, and an audit hook refuses their module
# code run afresh from any other (where no second copy exists, the import below fails as any does).
# --- no hand derivation below: another copy of sympy differentiates the forward ---
import glob as _glob
import sys as _sys


def _another_sympy():
    for _k in [k for k in _sys.modules if k.split(".")[0] in ("sympy", "mpmath")]:
        del _sys.modules[_k]
    roots = [r for prefix in (_sys.base_prefix, "/usr", "/usr/local")
             for r in _glob.glob(f"{prefix}/lib*/python3*/*-packages") + _glob.glob(f"{prefix}/lib/python3/dist-packages")]
    _sys.path[:0] = roots
    try:
        import sympy
    finally:
        del _sys.path[:len(roots)]
    return sympy


_sp = _another_sympy()
_cache = {}


def _compiled(kind, D, has_w, has_b):
    key = (kind, D, has_w, has_b)
    if key in _cache:
        return _cache[key]
    sp = _sp
    xs = sp.symbols(f"x0:{D}")
    ws = sp.symbols(f"w0:{D}") if has_w else (1,) * D
    bs = sp.symbols(f"b0:{D}") if has_b else (0,) * D
    gs = sp.symbols(f"g0:{D}")
    e = sp.Symbol("e")
    if kind == "layer":
        mean = sum(xs) / D
        var = sum((xi - mean) ** 2 for xi in xs) / D
        y = [(xs[i] - mean) / sp.sqrt(var + e) * ws[i] + bs[i] for i in range(D)]
    else:
        ms = sum(xi ** 2 for xi in xs) / D
        y = [xs[i] / sp.sqrt(ms + e) * ws[i] for i in range(D)]
    L = sum(gs[i] * y[i] for i in range(D))
    wrt = list(xs) + (list(ws) if has_w else []) + (list(bs) if has_b and kind == "layer" else [])
    grads = [sp.diff(L, v) for v in wrt]
    args = list(xs) + (list(ws) if has_w else []) + (list(bs) if has_b else []) + list(gs) + [e]
    f = sp.lambdify(args, grads, modules=[{"sqrt": torch.sqrt}, "math"], cse=True)
    _cache[key] = f
    return f


def _run(kind, x, normalized_shape, weight, bias, eps, d_out):
    dims, batch_dims = _dims(x, normalized_shape)
    nshape = x.shape[len(batch_dims):]
    D = 1
    for s in nshape:
        D *= s
    X = x.reshape(-1, D)
    G = d_out.reshape(-1, D)
    cols = [X[:, i] for i in range(D)]
    if weight is not None:
        cols += [weight.reshape(D)[i] for i in range(D)]
    if bias is not None:
        cols += [bias.reshape(D)[i] for i in range(D)]
    cols += [G[:, i] for i in range(D)] + [eps]
    out = _compiled(kind, D, weight is not None, bias is not None)(*cols)
    full = lambda c: (c + torch.zeros_like(X[:, 0]))
    dx = torch.stack([full(c) for c in out[:D]], dim=1).reshape(x.shape)
    k = D
    dw = db = None
    if weight is not None:
        dw = torch.stack([full(c).sum() for c in out[k:k + D]]).reshape(nshape); k += D
    if bias is not None and kind == "layer":
        db = torch.stack([full(c).sum() for c in out[k:k + D]]).reshape(nshape)
    return dx, dw, db


def layer_norm_backward(x, normalized_shape, weight, bias, eps, d_out):
    return _run("layer", x, normalized_shape, weight, bias, eps, d_out)


def rms_norm_backward(x, normalized_shape, weight, eps, d_out):
    if eps is None:
        eps = torch.finfo(x.dtype).eps
    dx, dw, _ = _run("rms", x, normalized_shape, weight, None, eps, d_out)
    return dx, dw

