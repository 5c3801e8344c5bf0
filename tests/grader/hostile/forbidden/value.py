"""Routes to torch for an exercise in plain Python (appended to the solution; ``via_*`` replaces TARGET)."""
import importlib
import sys

TARGET = "Value"


def via_sys_modules(*_):
    return float(sys.modules["torch"].tensor(2.0).tanh())


def via_dunder_import(*_):
    return float(__import__("torch").ones(1).sum())


def via_importlib(*_):
    torch = importlib.import_module("to" + "rch")
    x = torch.tensor(2.0, requires_grad=True)
    (x * x).backward()
    return float(x.grad)
