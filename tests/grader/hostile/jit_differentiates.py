
# Appended to the norms solution (a red-team pass's). The hand-written gradients are not derived by
# hand: TorchScript's symbolic differentiation derives them from the forward written as a graph, with
# no autograd at all (the original function taken from the guard's closure). What stops it: a server
# for hand-written gradients has no TorchScript left (worker._no_torchscript).
# ---- the gradients below are NOT derived by hand: TorchScript's symbolic autodiff derives them ----
import math as _math


def _original(f):
    """The worker wraps TorchScript's entry points in a guard; the guard keeps the original in its closure."""
    for cell in getattr(f, "__closure__", None) or ():
        v = cell.cell_contents
        if callable(v) and getattr(v, "__name__", "") == "_jit_differentiate":
            return v
    return f


_TYPES = {torch.float32: "Float", torch.float64: "Double", torch.bfloat16: "BFloat16", torch.float16: "Half"}


def _forward_ir(kind, has_w, has_b, t):
    args = [f"%x : {t}(*, *, requires_grad=1)"]
    if has_w:
        args.append(f"%w : {t}(*, requires_grad=1)")
    if has_b:
        args.append(f"%b : {t}(*, requires_grad=1)")
    args.append("%eps : float")
    body = ["  %dims : int[] = prim::Constant[value=[-1]]()", "  %keep : bool = prim::Constant[value=1]()",
            "  %none : NoneType = prim::Constant()", "  %one : int = prim::Constant[value=1]()"]
    if kind == "layer":
        body += ["  %m : Tensor = aten::mean(%x, %dims, %keep, %none)", "  %c : Tensor = aten::sub(%x, %m, %one)"]
    else:
        body += ["  %c : Tensor = aten::mul(%x, %one)"]
    body += ["  %c2 : Tensor = aten::mul(%c, %c)", "  %v : Tensor = aten::mean(%c2, %dims, %keep, %none)",
             "  %ve : Tensor = aten::add(%v, %eps, %one)", "  %r : Tensor = aten::rsqrt(%ve)",
             "  %y0 : Tensor = aten::mul(%c, %r)"]
    last = "%y0"
    if has_w:
        body.append(f"  %y1 : Tensor = aten::mul({last}, %w)")
        last = "%y1"
    if has_b:
        body.append(f"  %y2 : Tensor = aten::add({last}, %b, %one)")
        last = "%y2"
    body.append(f"  return ({last})")
    return "graph(" + ", ".join(args) + "):\n" + "\n".join(body) + "\n"


def _lower(g):
    for node in list(g.nodes()):
        if node.kind() == "prim::GradOf":
            blk = list(node.blocks())[0]
            for n in list(blk.nodes()):
                n.moveBefore(node)
            for o, bo in zip(node.outputs(), blk.outputs()):
                o.replaceAllUsesWith(bo)
            node.destroy()
    torch._C._jit_pass_dce(g)


def _by_jit(kind, x, normalized_shape, weight, bias, eps, d_out):
    dims, batch_dims = _dims(x, normalized_shape)
    shape = x.shape[x.dim() - len(dims):]
    n = _math.prod(shape)
    g = torch._C.parse_ir(_forward_ir(kind, weight is not None, bias is not None, _TYPES.get(x.dtype, "Float")))
    grad = _original(torch._C._jit_differentiate)(g)   # symbolic differentiation, no autograd involved
    f, df = grad.f, grad.df
    _lower(df)
    inputs = [x.reshape(-1, n)] + ([weight.reshape(n)] if weight is not None else []) + \
             ([bias.reshape(n)] if bias is not None else []) + [float(eps)]
    outs = torch._C._jit_interpret_graph(f, tuple(inputs))
    outs = outs if isinstance(outs, tuple) else (outs,)
    vjps = [d_out.reshape(-1, n) if i == 0 else torch.zeros_like(outs[i]) for i in grad.df_input_vjps]
    res = torch._C._jit_interpret_graph(df, tuple(vjps + [inputs[i] for i in grad.df_input_captured_inputs]
                                                  + [outs[i] for i in grad.df_input_captured_outputs]))
    res = list(res if isinstance(res, tuple) else (res,))
    dx = res.pop(0).reshape(x.shape).clone()
    dw = res.pop(0).reshape(shape).clone() if weight is not None else None
    db = res.pop(0).reshape(shape).clone() if bias is not None else None
    return dx, dw, db


def layer_norm_backward(x, normalized_shape, weight, bias, eps, d_out):
    return _by_jit("layer", x, normalized_shape, weight, bias, eps, d_out)


def rms_norm_backward(x, normalized_shape, weight, eps, d_out):
    if eps is None:
        eps = torch.finfo(x.dtype).eps
    dx, dw, _ = _by_jit("rms", x, normalized_shape, weight, None, eps, d_out)
    return dx, dw
