"""``tests/references.py``: a reference is computed once per content of its arguments, and each caller
gets a copy of its own."""
import torch

from tests.references import reference


def _counted():
    calls = []

    @reference
    def doubled(x, scale=1.0):
        calls.append(x)
        return {"y": x * 2 * scale, "rows": [x.sum(dim=-1)]}
    return doubled, calls


def test_the_same_values_in_other_tensors_are_computed_once():
    doubled, calls = _counted()
    x = torch.arange(6.0).reshape(2, 3)
    first = doubled(x)
    again = doubled(x.clone())
    assert len(calls) == 1
    torch.testing.assert_close(again["y"], first["y"])


def test_each_caller_gets_a_copy_of_its_own():
    doubled, _ = _counted()
    x = torch.ones(3)
    doubled(x)["y"].add_(100.0)
    doubled(x)["rows"].append("changed")
    kept = doubled(x)
    torch.testing.assert_close(kept["y"], torch.full((3,), 2.0))
    assert len(kept["rows"]) == 1


def test_other_values_dtypes_layouts_or_arguments_are_computed_afresh():
    doubled, calls = _counted()
    x = torch.arange(6.0).reshape(2, 3)
    for variant in (x, x + 1, x.double(), x.T.contiguous().T, x.reshape(3, 2)):
        doubled(variant)
    doubled(x, scale=3.0)
    assert len(calls) == 6
    torch.testing.assert_close(doubled(x + 1)["y"], (x + 1) * 2)


def test_a_result_that_records_a_graph_is_not_kept():
    calls = []

    @reference
    def squared(x):
        calls.append(x)
        return x * x

    x = torch.ones(2, requires_grad=True)
    assert squared(x).requires_grad and squared(x).requires_grad
    assert len(calls) == 2


def test_an_argument_without_a_key_is_computed_afresh():
    calls = []

    @reference
    def applied(fn, x):
        calls.append(fn)
        return fn(x)

    x = torch.ones(2)
    applied(lambda t: t + 1, x)
    assert torch.equal(applied(lambda t: t + 2, x), torch.full((2,), 3.0))
    assert len(calls) == 2


def test_past_the_results_kept_each_call_computes_afresh(monkeypatch):
    import tests.references
    monkeypatch.setattr(tests.references, "KEEP", 2)
    doubled, calls = _counted()
    for k in range(3):
        doubled(torch.full((2,), float(k)))
    doubled(torch.full((2,), 0.0))
    doubled(torch.full((2,), 2.0))
    assert len(calls) == 4
