"""Routes to the softmax family's kernels (appended to the solution; ``via_*`` replaces TARGET)."""
import importlib
import sys

import torch

TARGET = "cross_entropy"
X = torch.randn(4, 5, dtype=torch.float64)
T = torch.tensor([0, 1, 2, 4])


def via_functional(*_):
    return torch.nn.functional.cross_entropy(X, T)


def via_c_nn(*_):
    return torch._C._nn.cross_entropy_loss(X, T, None, 1, -100, 0.0)


def via_ops_overload(*_):
    return torch.ops.aten._log_softmax.default(X, 1, False)


def via_ops_packet(*_):
    return torch.ops.aten.nll_loss_forward(X, T, None, 1, -100)[0]


def via_variable_functions(*_):
    return torch._C._VariableFunctions.log_softmax(X, 1)


def via_the_worker_module(*_):
    """The worker's own module imported by name, its watch told to refuse nothing (were it the live one)."""
    importlib.import_module("grader" + ".worker").Watch.refuse = lambda self, what: None
    return torch.ops.aten._log_softmax.default(X, 1, False)


def via_vf(*_):
    return torch._VF.logsumexp(X, [1])


def via_computed_getattr(*_):
    return getattr(torch, "log_" + "soft" + "max")(X, 1)


def via_importlib(*_):
    return importlib.import_module("torch.nn." + "functional").softmax(X, 1)


def via_dunder_import(*_):
    return __import__("torch").special.log_softmax(X, 1)


def via_sys_modules(*_):
    return sys.modules["torch"].nn.functional.nll_loss(X, T)


def via_method(*_):
    return X.log_softmax(1)


def via_backward_kernel(*_):
    return torch.ops.aten._softmax_backward_data(X, X, 1, X.dtype)


def via_module(*_):
    return torch.nn.CrossEntropyLoss()(X, T)


# Stepping around the watch itself: its mode popped, the Python dispatch key excluded, the kernel
# called below it.

def via_popping_the_watch(*_):
    import torch.utils._python_dispatch as python_dispatch
    with python_dispatch._pop_mode_temporarily():
        return torch.log_softmax(X, 1)


def via_popping_in_c(*_):
    torch._C._pop_torch_dispatch_stack(None)
    return torch.log_softmax(X, 1)


def via_excluding_the_python_key(*_):
    with torch._C._ExcludeDispatchKeyGuard(torch._C.DispatchKeySet(torch._C.DispatchKey.Python)):
        return torch.log_softmax(X, 1)


def via_thread_local_exclusion(*_):
    torch._C._dispatch_tls_set_dispatch_key_excluded(torch._C.DispatchKey.Python, True)
    try:
        return torch.log_softmax(X, 1)
    finally:
        torch._C._dispatch_tls_set_dispatch_key_excluded(torch._C.DispatchKey.Python, False)


def via_redispatch(*_):
    keys = torch._C.DispatchKeySet(torch._C.DispatchKey.CPU)
    return torch.ops.aten._log_softmax.default.redispatch(keys, X, 1, False)


def via_kernel_by_key(*_):
    return torch.ops.aten._log_softmax.default._op_dk(torch._C.DispatchKey.CPU, X, 1, False)


def via_fresh_operator_handle(*_):
    op, op_dk, _ = torch._C._get_operation_overload("aten::_log_softmax", "")
    return op_dk(torch._C.DispatchKey.CPU, X, 1, False)


def via_another_interpreter(*_):
    import subprocess
    code = "import torch; print(torch.log_softmax(torch.ones(3), 0).tolist())"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout


def via_os_system(*_):
    import os
    return os.system(f"{sys.executable} -c 'import torch'")


def via_vmap(*_):
    return torch.vmap(lambda row: torch.ops.aten._log_softmax(row, 0, False))(X)


def via_torch_compile(*_):
    return torch.compile(lambda x: torch.log_softmax(x, 1) * 2, backend="inductor")(X)


def via_sparse_log_softmax(*_):
    """The sparse layout's own kernel, every entry kept: the dense log_softmax to the last bit."""
    rows, cols = X.shape
    idx = torch.stack(torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")).reshape(2, -1)
    return torch.sparse.log_softmax(torch.sparse_coo_tensor(idx, X.reshape(-1), X.shape), 1).to_dense()


def via_logcumsumexp(*_):
    """The last running logsumexp is the logsumexp."""
    return X - torch.logcumsumexp(X, 1)[:, -1:]


def via_attention_kernel(*_):
    """CPU flash attention with identity keys and values: softmax(X) and the logsumexp of every row."""
    eye = torch.eye(X.shape[1], dtype=X.dtype)[None, None]
    return X - torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(X[None, None], eye, eye, scale=1.0)[1][0, 0, :, None]


def via_attention(*_):
    eye = torch.eye(X.shape[1], dtype=X.dtype)[None]
    return torch.nn.functional.scaled_dot_product_attention(X[None], eye, eye, scale=1.0)[0]


def via_decomposition(*_):
    """PyTorch's own log_softmax written in Python with allowed operators (torch._decomp)."""
    return importlib.import_module("torch._decomp.decompositions")._log_softmax(X, 1, False)


def via_python_reference(*_):
    return X - importlib.import_module("torch._refs").logsumexp(X, [1], True)


def via_linear_cross_entropy_loop(*_):
    """PyTorch's chunked linear cross-entropy, written in Python with allowed operators, through an
    identity projection: the loss and its gradient."""
    from torch.nn.modules import linear_cross_entropy as lce
    logits = torch.randn(4, 3, dtype=torch.float64)
    eye = torch.eye(3, dtype=logits.dtype)
    return lce._linear_cross_entropy_batch_chunked_accumulator(
        logits, eye, torch.tensor([0, 1, 2, 0]), None, None, "mean", -100, 0.0, 4, "auto", logits.dtype,
        True, False, False)[1]



def via_nnc_lowering(*_):
    """NNC, TorchScript's tensor compiler, lowers log_softmax itself and runs it in its own interpreter."""
    te = torch._C._te
    shape = [te.ExprHandle.int(n) for n in X.shape]
    buf = te.BufHandle("X", shape, te.Dtype.Double)
    out = te.lower("aten::log_softmax.int(Tensor self, int dim, ScalarType? dtype=None) -> Tensor", [buf, 1, None],
                   shape, te.Dtype.Double)
    loops = te.LoopNest([out])
    loops.prepare_for_codegen()
    result = torch.empty_like(X)
    te.construct_codegen("ir_eval", te.simplify(loops.root_stmt()), [buf, out]).call([X, result])
    return -result[torch.arange(4), T].mean()


def via_torchscript_source(*_):
    """A TorchScript function names the operator: the script compiler resolves it without Python."""
    unit = torch.jit.CompilationUnit("def f(x: Tensor):\n    return torch.log_softmax(x, 1)\n")
    return -unit.f(X)[torch.arange(4), T].mean()


def via_ctc_loss(*_):
    """CTC's forward pass over a label on every other step is a logsumexp over the classes."""
    import math
    n, c = X.shape
    steps = torch.zeros(2 * c, n, 2, dtype=X.dtype)
    steps[..., 1] = -math.inf
    steps[0::2, :, 1] = X.T
    lse = -torch.nn.functional.ctc_loss(steps, torch.ones(n, 1, dtype=torch.long), torch.full((n,), 2 * c),
                                        torch.ones(n, dtype=torch.long), reduction="none")
    return -(X - lse[:, None])[torch.arange(n), T].mean()
