"""``grader.guard.violations``: the static half of the forbidden-API guard, on sources that hide the
forbidden call behind aliases, ``from`` imports, helpers and methods (the runtime half is in
``test_sandbox.py``)."""
from __future__ import annotations

from grader.guard import violations

CE = ["torch.nn.functional.cross_entropy", "torch.nn.functional.log_softmax", ".log_softmax", ".softmax",
      "torch.autograd", ".backward"]


def found(src: str, forbidden=CE) -> dict[str, list[str]]:
    return violations({"m.py": src}, forbidden)


def test_module_alias():
    src = "import torch.nn.functional as F\n\ndef loss(x, t):\n    return F.cross_entropy(x, t)\n"
    assert found(src) == {"loss": ["torch.nn.functional.cross_entropy"]}


def test_from_import_with_and_without_alias():
    src = ("from torch.nn.functional import cross_entropy as ce, log_softmax\n\n"
           "def a(x, t):\n    return ce(x, t)\n\ndef b(x):\n    return log_softmax(x, -1)\n\n"
           "def c(x):\n    return x.exp()\n")
    assert found(src) == {"a": ["torch.nn.functional.cross_entropy"], "b": ["torch.nn.functional.log_softmax"]}


def test_whole_module_by_prefix_and_from_import_of_a_submodule():
    src = ("import torch\nfrom torch import autograd\n\n"
           "def g(y, x):\n    return autograd.grad(y, x)\n\n"
           "def j(f, x):\n    return torch.autograd.functional.jacobian(f, x)\n")
    assert found(src) == {"g": ["torch.autograd"], "j": ["torch.autograd"]}


def test_helpers_pass_their_violations_to_every_caller():
    src = ("import torch.nn.functional as F\n\n"
           "def _inner(x):\n    return F.log_softmax(x, -1)\n\n"
           "def _middle(x):\n    return _inner(x) * 2\n\n"
           "def loss(x, t):\n    return -_middle(x).gather(-1, t[:, None]).mean()\n\n"
           "def unrelated(x):\n    return x + 1\n")
    got = found(src)
    assert set(got) == {"_inner", "_middle", "loss"}
    assert all(v == ["torch.nn.functional.log_softmax"] for v in got.values())


def test_tensor_methods_on_names_and_on_computed_values():
    src = ("def a(loss):\n    loss.backward()\n\n"
           "def b(x):\n    x.sum().backward()\n\n"
           "def c(x):\n    return x.log_softmax(-1)\n\n"
           "def d(x):\n    return (x * 2).softmax(dim=-1)\n")
    assert found(src) == {"a": ["backward"], "b": ["backward"], "c": ["log_softmax"], "d": ["softmax"]}


def test_module_level_use_and_methods_of_classes():
    src = ("import torch.nn.functional as F\n\nCE = F.cross_entropy\n\n"
           "class Model:\n    def loss(self, x):\n        return x.softmax(-1)\n")
    assert found(src) == {"*": ["torch.nn.functional.cross_entropy"], "Model": ["softmax"]}


def test_the_learners_own_helpers_named_like_methods_are_not_flagged():
    src = ("def softmax(x):\n    e = x.exp()\n    return e / e.sum(-1, keepdim=True)\n\n"
           "def log_softmax(x):\n    return x - x.exp().sum(-1, keepdim=True).log()\n\n"
           "def loss(x, t):\n    return -log_softmax(x).gather(-1, t[:, None]).mean() + 0 * softmax(x).sum()\n\n"
           "class Net:\n    def softmax(self, x):\n        return softmax(x)\n\n"
           "    def forward(self, x):\n        return self.softmax(x)\n\n"
           "def backward(h):\n    return h\n\n"
           "def bptt(h):\n    return backward(h)\n")
    assert found(src) == {}


def test_similar_names_strings_and_comments_are_not_flagged():
    src = ("import torch\n# torch.nn.functional.cross_entropy would be easier\n\n"
           "def a(x):\n    return torch.nn.functional.cross_entropy_with_my_twist(x)\n\n"
           "def b():\n    return 'torch.autograd.grad'\n\n"
           "def c(F, x):\n    return F.relu(x)\n\n"
           "def d(x):\n    return torch.autogradient(x)\n")
    assert found(src) == {}


def test_several_files_and_a_syntax_error():
    files = {"m.py": "from helpers import *\n\ndef a(x):\n    return x\n",
             "helpers.py": "import torch\n\ndef h(y, x):\n    return torch.autograd.grad(y, x)\n",
             "broken.py": "def (:\n"}
    got = violations(files, CE)  # the broken file is left to the import to report
    assert got["h"] == ["torch.autograd"]


def test_nothing_forbidden_nothing_found():
    src = "import torch.nn.functional as F\n\ndef loss(x, t):\n    return F.cross_entropy(x, t)\n"
    assert found(src, []) == {}
