"""Routes to PyTorch's normalisation kernels (appended to the solution; ``via_*`` replaces TARGET)."""
import importlib
import os
import sys

import torch

TARGET = "layer_norm_backward"
X = torch.randn(3, 5, dtype=torch.float64)


def via_functional(*_):
    return torch.nn.functional.layer_norm(X, (5,))


def via_native(*_):
    return torch.native_layer_norm(X, [5], None, None, 1e-5)[0]


def via_ops_backward(*_):
    out, mean, rstd = torch.ops.aten.native_layer_norm.default(X, [5], None, None, 1e-5)
    return torch.ops.aten.native_layer_norm_backward(X, X, [5], mean, rstd, None, None, [True, False, False])[0]


def via_rms_norm(*_):
    return torch._C._VariableFunctions.rms_norm(X, [5], None, 1e-5)


def via_group_norm(*_):
    return getattr(sys.modules["torch.nn.functional"], "group_" + "norm")(X[:, :, None], 1)


def via_batch_norm_transposed(*_):
    return torch.nn.functional.batch_norm(X.T, None, None, training=True).T


def via_batch_norm_backward(*_):
    """Layer norm over the last dim is batch norm of the transpose: its backward kernel."""
    xt = X.T.contiguous()
    mean, rstd = X.mean(1), (X.var(1, unbiased=False) + 1e-5).rsqrt()
    return torch.ops.aten.batch_norm_backward(xt, xt, torch.ones(3, dtype=X.dtype), None, None, mean, rstd, True,
                                              1e-5, [True, False, False], torch.empty(0, dtype=torch.uint8))[0].T


def via_batch_norm_functional(*_):
    return torch.ops.aten._native_batch_norm_legit_functional(X.T.contiguous(), None, None, torch.zeros(3, dtype=X.dtype),
                                                             torch.ones(3, dtype=X.dtype), True, 0.1, 1e-5)[0].T


def via_decomposition(*_):
    """PyTorch's own layer-norm backward written in Python with allowed operators (torch._decomp)."""
    dec = __import__("importlib").import_module("torch._decomp.decompositions")
    mean, rstd = X.mean(1, keepdim=True), (X.var(1, unbiased=False, keepdim=True) + 1e-5).rsqrt()
    return dec.native_layer_norm_backward(X, X, [5], mean, rstd, None, None, [True, False, False])[0]


def via_decomposition_for_jvp(*_):
    """A second Python layer-norm backward of PyTorch's, in a module the grader never loads."""
    jvp = __import__("importlib").import_module("torch._decomp.decompositions_for_jvp")
    mean, rstd = X.mean(1, keepdim=True), (X.var(1, unbiased=False, keepdim=True) + 1e-5).rsqrt()
    return jvp.native_layer_norm_backward(X, X, [5], mean, rstd, None, None, [True, False, False])[0]


def via_reloaded_decomposition_for_jvp(*_):
    """The same module run again: its functions are new objects, looked at again."""
    importlib = __import__("importlib")
    jvp = importlib.reload(importlib.import_module("torch._decomp.decompositions_for_jvp"))
    mean, rstd = X.mean(1, keepdim=True), (X.var(1, unbiased=False, keepdim=True) + 1e-5).rsqrt()
    return jvp.native_layer_norm_backward(X, X, [5], mean, rstd, None, None, [True, False, False])[0]



def via_decomposition_loaded_from_its_file(*_):
    """PyTorch's file run again under a name of one's own: no import of a torch module takes place."""
    import importlib.util
    home = importlib.util.find_spec("torch._decomp.decompositions_for_jvp").origin
    spec = importlib.util.spec_from_file_location("my_helpers", home)
    jvp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(jvp)
    mean, rstd = X.mean(1, keepdim=True), (X.var(1, unbiased=False, keepdim=True) + 1e-5).rsqrt()
    return jvp.native_layer_norm_backward(X, X, [5], mean, rstd, None, None, [True, False, False])[0]


def via_decomposition_run_as_a_script(*_):
    """runpy compiles and runs PyTorch's file into a dict of one's own."""
    import importlib.util
    import runpy
    home = importlib.util.find_spec("torch._decomp.decompositions_for_jvp").origin
    jvp = runpy.run_path(home, run_name="my_helpers")
    mean, rstd = X.mean(1, keepdim=True), (X.var(1, unbiased=False, keepdim=True) + 1e-5).rsqrt()
    return jvp["native_layer_norm_backward"](X, X, [5], mean, rstd, None, None, [True, False, False])[0]


def via_import_hook_taken_off(*_):
    """The watch's import hook taken off sys.meta_path, and the module imported afresh."""
    sys.meta_path[:] = [f for f in sys.meta_path if f.__module__.startswith("_frozen_importlib")]
    sys.modules.pop("torch._decomp.decompositions_for_jvp", None)
    jvp = __import__("importlib").import_module("torch._decomp.decompositions_for_jvp")
    mean, rstd = X.mean(1, keepdim=True), (X.var(1, unbiased=False, keepdim=True) + 1e-5).rsqrt()
    return jvp.native_layer_norm_backward(X, X, [5], mean, rstd, None, None, [True, False, False])[0]


def via_a_helper_named_apart(*_):
    """torch._refs' layer norm leaves its arithmetic to a private helper named after nothing it computes."""
    import torch._refs
    return torch._refs._normalize(X, [1], 1e-5)[0]


def via_another_namespace(*_):
    """The static runtime's own layer-norm operator: a real CPU kernel, outside aten."""
    return torch.ops.static_runtime.layer_norm(X, [5], None, None, 1e-5, False)[0]


def via_an_operator_only_torchscript_runs(*_):
    """prim::MKLDNNLayerNorm: registered with TorchScript's interpreter, not with the dispatcher."""
    rows = X.float().to_mkldnn()
    return torch.ops.prim.MKLDNNLayerNorm(rows, [5], torch.ones(5).to_mkldnn(), torch.zeros(5).to_mkldnn(), 1e-5,
                                          False).to_dense().double()


def via_a_name_run_together(*_):
    """A vendored kernel's Python reference, named rmsnorm_bwd_ref: its imports (CUDA only) faked."""
    import importlib.abc
    import importlib.machinery
    import types

    class Anything(type):
        def __getattr__(cls, name):
            return cls

        def __call__(cls, *args, **kwargs):
            return args[0] if len(args) == 1 and callable(args[0]) and not kwargs else cls

        def __getitem__(cls, key):
            return cls

        def __or__(cls, other):
            return cls
        __ror__ = __or__

    class Fake(types.ModuleType):
        __path__ = []

        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return Anything("Anything", (), {})

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in ("cutlass", "cuda", "tvm_ffi", "triton", "apache_tvm_ffi"):
                return importlib.machinery.ModuleSpec(name, self, is_package=True)

        def create_module(self, spec):
            return Fake(spec.name)

        def exec_module(self, module):
            pass
    sys.meta_path.append(Finder())
    quack = importlib.import_module("torch._vendor.quack.rmsnorm")
    rstd = 1 / torch.sqrt(X.pow(2).mean(-1) + 1e-6)
    return quack.rmsnorm_bwd_ref(X, torch.ones(5, dtype=X.dtype), X, rstd)[0]

def via_native_rms_norm(*_):
    """PyTorch's Python RMSNorm kernel (torch._native)."""
    from torch._native.ops.norm import rmsnorm_impl
    return rmsnorm_impl._fused_rms_norm_impl(X, [5], None, 1e-5)[0]


def via_library_finalizers(*_):
    """torch.library keeps a finalizer per Library; calling one undoes its registrations."""
    import weakref
    for fin, info in list(weakref.finalize._registry.items()):
        if getattr(info.func, "__name__", "") == "_del_library":
            fin()
    return torch.nn.functional.layer_norm(X, (5,))


def via_mkldnn_batch_norm(*_):
    """MKLDNN kernels, below autograd: the normalisation of each row as a batch norm of one channel."""
    rows = X.float().reshape(1, 3, 5, 1)
    with torch.inference_mode():
        out = torch.ops.aten._native_batch_norm_legit.no_stats(rows.to_mkldnn(), torch.ones(3), torch.zeros(3),
                                                               True, 0.0, 1e-5)[0]
    return out.to_dense().reshape(3, 5).double()


def via_static_runtime(*_):
    """TorchScript's static runtime calls the out-variant of a kernel directly, not through the dispatcher."""
    unit = torch.jit.CompilationUnit("def f(x: Tensor, s: List[int]):\n    return torch.layer_norm(x, s)\n")
    return torch._C._jit_to_static_module(unit.f.graph)(X, [5])


def via_a_fresh_interpreter(*_):
    """posix's own names for os.system and os.posix_spawn: a new Python has no watch."""
    import posix
    pid = posix.posix_spawn(sys.executable, [sys.executable, "-c", "import torch"], {})
    os.waitpid(pid, 0)
    return torch.nn.functional.layer_norm(X, (5,))


def via_the_watch_reached_through_a_guard(*_):
    """A guard of the watch holds it in a closure: switch its refusals off, drop what it holds."""
    guard = torch.ops.aten.native_layer_norm.default._op_dk
    for cell in guard.__closure__ or ():
        watch = cell.cell_contents
        if type(watch).__name__ == "Watch":
            type(watch).refuse = lambda self, what: None
            for name in [n for n in vars(watch) if "librar" in n]:
                setattr(watch, name, None)
    return torch.nn.functional.layer_norm(X, (5,))
