"""Routes to PyTorch's autograd for a function whose gradient must be written by hand. Appended to
a topic's solution; each ``via_*`` replaces the graded function in turn (see test_guard.py)."""
import importlib
import sys
import threading

import torch


def _graph():
    with torch.enable_grad():
        x = torch.randn(3, 4, dtype=torch.float64).requires_grad_(True)
        return x, (x.tanh() * x).sum()


def via_autograd_grad(*_):
    x, y = _graph()
    return torch.autograd.grad(y, x)[0]


def via_backward(*_):
    x, y = _graph()
    y.backward()
    return x.grad


def via_engine_directly(*_):
    x, y = _graph()
    engine = torch._C._ImperativeEngine()
    return engine.run_backward((y,), (torch.ones((), dtype=y.dtype),), False, False, (x,), False, False)[0]


def via_computed_name(*_):
    x, y = _graph()
    return getattr(importlib.import_module("torch." + "auto" + "grad"), "gr" + "ad")(y, x)[0]


def via_sys_modules(*_):
    x, y = _graph()
    return sys.modules["torch"].autograd.grad(y, x)[0]


def via_torch_func(*_):
    return torch.func.grad(lambda a: (a.tanh() * a).sum())(torch.randn(3, dtype=torch.float64))


def via_forward_mode(*_):
    x = torch.randn(3, dtype=torch.float64)
    return torch.func.jvp(torch.tanh, (x,), (torch.ones_like(x),))[1]


def via_grad_fn_called_directly(*_):
    with torch.enable_grad():
        x = torch.randn(3, dtype=torch.float64).requires_grad_(True)
        y = x * 3
    return y.grad_fn(torch.ones_like(y))


def via_thread(*_):
    out = []
    t = threading.Thread(target=lambda: out.append(via_autograd_grad()))
    t.start()
    t.join()
    return out[0] if out else None


def via_swallowed_error(*_):
    try:
        via_autograd_grad()
    except Exception:  # noqa: BLE001 - the refusal is recorded anyway
        pass
    return torch.zeros(3)


def via_the_worker_module(*_):
    """The worker's own module imported by name, its watch told to refuse nothing (were it the live one)."""
    importlib.import_module("grader" + ".worker").Watch.refuse = lambda self, what: None
    return via_autograd_grad()


def _scripted(x):
    return (x.tanh() * x).sum()


def via_torchscript_autodiff(*_):
    """TorchScript differentiates a graph symbolically: no engine, no gradient recording, no dual tensors."""
    x = torch.randn(3, 4, dtype=torch.float64)
    graphs = torch._C._jit_differentiate(torch.jit.script(_scripted).graph)
    graphs.f.makeMultiOutputIntoTuple()
    graphs.df.makeMultiOutputIntoTuple()
    outs = torch._C._create_function_from_graph("forward", graphs.f)(x)
    args = [torch.ones(()) for _ in graphs.df_input_vjps] + [x for _ in graphs.df_input_captured_inputs]
    args += [outs[i] for i in graphs.df_input_captured_outputs]
    return torch._C._create_function_from_graph("backward", graphs.df)(*args)


def _original(guarded):
    """What a guard of the watch wraps: its closure holds the original (Python hides nothing from
    code in the same process)."""
    for cell in getattr(guarded, "__closure__", None) or ():
        if type(cell.cell_contents).__name__ == "builtin_function_or_method":
            return cell.cell_contents
    return guarded


def via_the_modes_taken_off_with_the_originals(*_):
    """The watch's modes popped with the original C functions its guards hold, autograd run, the
    modes pushed back before returning: nothing of the watch sees it, autograd's node count does."""
    C, modes, functions = torch._C, [], []
    pop = _original(C._pop_torch_dispatch_stack)
    while C._len_torch_dispatch_stack():
        modes.append(pop(None))
    while C._len_torch_function_stack():
        functions.append(C._pop_torch_function_stack())
    try:
        return via_autograd_grad()
    finally:
        for mode in reversed(functions):
            C._push_on_torch_function_stack(mode)
        for mode in reversed(modes):
            C._push_on_torch_dispatch_stack(mode)


def via_a_thread_started_below_the_watch(*_):
    """A thread started with the original function the watch's own thread hook wraps: it runs without
    the watch, and autograd's node count is per thread; the call still starts a thread."""
    import _thread
    start = _thread.start_new_thread
    for cell in getattr(start, "__closure__", None) or ():
        if type(cell.cell_contents).__name__ == "builtin_function_or_method":
            start = cell.cell_contents
    done, out = _thread.allocate_lock(), []
    done.acquire()

    def job():
        try:
            out.append(via_autograd_grad())
        finally:
            done.release()
    start(job, ())
    done.acquire()
    return out[0] if out else None
