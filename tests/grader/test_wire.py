"""``grader.wire``: what crosses the sandbox boundary is plain data, and a malformed message is refused
before anything is built from it."""
from __future__ import annotations

import json
import math
import os
import struct
import threading
import time

import pytest
import torch

from grader import wire

PREFIX = struct.Struct("<QQ")


def _split(data: bytes) -> tuple[bytes, bytes]:
    hlen, blen = PREFIX.unpack(data[:PREFIX.size])
    assert len(data) == PREFIX.size + hlen + blen
    return data[PREFIX.size:PREFIX.size + hlen], data[PREFIX.size + hlen:]


def roundtrip(obj):
    return wire.decode(*_split(wire.encode(obj)))


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.dtype.is_floating_point:
        return torch.equal(torch.nan_to_num(a, nan=123.0), torch.nan_to_num(b, nan=123.0)) and \
            torch.equal(a.isnan(), b.isnan())
    return torch.equal(a, b)


SHAPES = [(), (0,), (5,), (2, 3), (2, 0, 4), (1, 1, 1, 3)]


@pytest.mark.parametrize("name", sorted(wire.DTYPES))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_tensors_of_every_allowed_dtype_and_shape_round_trip(name, shape):
    dtype = wire.DTYPES[name]
    g = torch.Generator().manual_seed(0)
    if dtype == torch.bool:
        t = torch.rand(shape, generator=g) > 0.5
    elif dtype.is_floating_point:
        t = (torch.randn(shape, generator=g) * 100).to(dtype)
        if t.numel() >= 3:
            t.view(-1)[:3] = torch.tensor([math.nan, math.inf, -math.inf], dtype=dtype)
    else:
        info = torch.iinfo(dtype)
        t = torch.randint(info.min, info.max, shape, generator=g, dtype=torch.int64).to(dtype)
    back = roundtrip(t)
    assert type(back) is torch.Tensor and back.dtype == dtype and back.shape == t.shape
    assert _same(back, t)


def test_non_contiguous_and_grad_tensors_and_parameters_arrive_as_plain_tensors():
    base = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    for t in [base.t(), base[:, ::2], base.clone().requires_grad_(True) * 2, torch.nn.Parameter(base.clone())]:
        back = roundtrip(t)
        assert type(back) is torch.Tensor and not back.requires_grad
        assert torch.equal(back, t.detach())


def test_a_tensor_subclass_is_refused_without_running_its_code():
    class Sneaky(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            raise AssertionError("the subclass's code ran")

    with pytest.raises(wire.WireError, match="tensor subclass"):
        wire.encode([torch.arange(3).as_subclass(Sneaky)])


def test_containers_and_numbers_of_other_classes_are_read_as_their_base_type():
    class Items(tuple):
        def __iter__(self):
            raise AssertionError("the tuple's code ran")

    class Number(int):
        def __repr__(self):
            raise AssertionError("the number's code ran")

    assert roundtrip(Items((Number(3), [Number(4)]))) == (3, [4])


def test_containers_and_plain_values_round_trip():
    obj = {"a": (1, 2.5, None, True, "text"), 3: [[], (), {}], 1.5: {"nested": (torch.ones(2), [torch.zeros(0)])},
           None: False, "floats": [math.inf, -math.inf, 0.0, -0.0, 1e308]}
    back = roundtrip(obj)
    assert back.keys() == obj.keys()
    assert back["a"] == (1, 2.5, None, True, "text") and type(back["a"]) is tuple
    assert back[3] == [[], (), {}] and type(back[3][1]) is tuple
    assert torch.equal(back[1.5]["nested"][0], torch.ones(2)) and back[1.5]["nested"][1][0].shape == (0,)
    assert back[None] is False
    assert back["floats"] == [math.inf, -math.inf, 0.0, -0.0, 1e308]
    nan = roundtrip(math.nan)
    assert isinstance(nan, float) and math.isnan(nan)
    gen = roundtrip(wire.Generator(7))
    assert isinstance(gen, wire.Generator) and gen.seed == 7 and gen.device == "cpu"


def test_the_header_stays_json_even_with_non_finite_floats():
    header, _ = _split(wire.encode([math.nan, math.inf, torch.ones(1)]))
    json.loads(header, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


@pytest.mark.parametrize("obj", [torch.ones(2, dtype=torch.complex64), {1, 2}, object(), b"bytes",
                                 [lambda: 0], {(1, 2): 3}],
                         ids=["complex", "set", "object", "bytes", "function", "tuple-key"])
def test_encode_refuses_what_is_not_plain_data(obj):
    with pytest.raises(wire.WireError):
        wire.encode(obj)


@pytest.mark.parametrize("view", ["transpose", "step", "offset-and-transpose", "expand", "negated", "int64"])
def test_views_keep_their_layout_when_asked(view):
    """Arguments travel as the views they are (``encode(..., views=True)``): a learner's ``.view(-1)``
    fails on a transposed input beside its code as it would at home."""
    base = torch.arange(24, dtype=torch.float64).reshape(4, 6)
    t = {"transpose": base.T, "step": base[:, ::2], "offset-and-transpose": base[1:, 2:].T,
         "expand": base[0].expand(3, 6), "negated": base.T.neg(), "int64": torch.arange(6).reshape(2, 3).T}[view]
    back = wire.decode(*_split(wire.encode(t, views=True)), views=True)
    assert torch.equal(back, t) and back.stride() == t.stride() and back.is_contiguous() == t.is_contiguous()
    assert roundtrip(t).is_contiguous()  # without views: contiguous, as before


@pytest.mark.parametrize("strides, nbytes", [([1, 2], 8), ([2, 1], 8), ([-1, 1], 16), ([1], 16), ([1, 2.0], 16),
                                             ([2**62, 1], 16), ("12", 16), ([0, 0], 16)],
                         ids=["past-its-bytes", "past-its-bytes-other-axis", "negative", "too-few", "float",
                              "huge", "not-a-list", "bytes-unused"])
def test_a_view_reaching_outside_its_own_bytes_is_refused(strides, nbytes):
    header, blob = _msg({"__tensor__": ["float32", [2, 2], "cpu", nbytes, strides]}, b"\0" * nbytes)
    with pytest.raises(wire.WireError):
        wire.decode(header, blob, views=True)


def test_a_view_is_refused_where_views_are_not_asked_for():
    """The grading side reads the learner's results without views: a layout of the learner's making
    never reaches it."""
    header, blob = _split(wire.encode(torch.arange(6.0).reshape(2, 3).T, views=True))
    with pytest.raises(wire.WireError):
        wire.decode(header, blob)


def _msg(tree, blob=b"") -> tuple[bytes, bytes]:
    return json.dumps(tree).encode(), blob


@pytest.mark.parametrize("header, blob", [
    (b"{not json", b""),
    (b"\xff\xfe", b""),
    _msg({"__pickle__": "cos\nsystem\n"}),
    _msg({"__tensor__": ["float128", [1], "cpu", 16]}, b"\0" * 16),
    _msg({"__tensor__": ["object", [1], "cpu", 8]}, b"\0" * 8),
    _msg({"__tensor__": ["float32", [-1], "cpu", 4]}, b"\0" * 4),
    _msg({"__tensor__": ["float32", [1.5], "cpu", 4]}, b"\0" * 4),
    _msg({"__tensor__": ["float32", [2], "cpu", 4]}, b"\0" * 8),
    _msg({"__tensor__": ["float32", [2], "cpu", 8]}, b"\0" * 4),
    _msg({"__tensor__": ["float32", [2], "cpu", 8]}),
    _msg({"__tensor__": ["float32", [2], "cpu"]}, b"\0" * 8),
    _msg({"__tensor__": "float32"}),
    _msg({"__tensor__": ["float32", [2], "meta", 8]}, b"\0" * 8),
    _msg({"__tensor__": ["float32", [2**40, 2**40], "meta", 0]}),
    _msg({"__tensor__": ["float32", [2**70], "meta", 0]}),
    _msg({"__float__": "1e999"}),
    _msg({"__float__": "__import__('os')"}),
    _msg({"__dict__": [[[1, 2], 3]]}),
    _msg({"__dict__": [[1]]}),
    _msg({"a": 1, "b": 2}),
    _msg({"plain": 1}),
    (b"[" * 100000 + b"]" * 100000, b""),
], ids=["not-json", "not-utf8", "unknown-tag", "unknown-dtype", "object-dtype", "negative-dim", "float-dim",
        "too-few-bytes-declared", "blob-too-short", "no-blob", "short-tensor-header", "tensor-not-a-list",
        "meta-with-bytes", "meta-too-large", "meta-dim-overflow",
        "finite-float-tag", "code-as-float", "list-key", "short-pair", "two-keys", "untagged-dict", "deep"])
def test_decode_refuses_malformed_messages(header, blob):
    with pytest.raises(wire.WireError):
        wire.decode(header, blob)


def _pipe_with(data: bytes, close: bool = True) -> int:
    r, w = os.pipe()

    def feed():
        try:
            wire.write_all(w, data)
        except OSError:
            pass
        if close:
            os.close(w)

    threading.Thread(target=feed, daemon=True).start()
    return r


def test_read_message_round_trips_through_a_pipe():
    t = torch.randn(64, 64, dtype=torch.float64)
    r = _pipe_with(wire.encode({"ok": (t, 3)}))
    got = wire.read_message(r, deadline=time.monotonic() + 5)
    assert torch.equal(got["ok"][0], t) and got["ok"][1] == 3
    os.close(r)


@pytest.mark.parametrize("hlen, blen", [(wire.MAX_HEADER + 1, 0), (10, wire.MAX_BLOB + 1), (2**63, 2**63)])
def test_oversized_messages_are_refused_before_reading_them(hlen, blen):
    r = _pipe_with(PREFIX.pack(hlen, blen) + b"{}")
    with pytest.raises(wire.WireError, match="too large"):
        wire.read_message(r, deadline=time.monotonic() + 5)
    os.close(r)


def test_a_truncated_message_is_an_eof_and_a_silent_peer_a_timeout():
    data = wire.encode({"ok": torch.ones(100)})
    r = _pipe_with(data[:-10])
    with pytest.raises(EOFError):
        wire.read_message(r, deadline=time.monotonic() + 5)
    os.close(r)
    r = _pipe_with(data[:-10], close=False)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        wire.read_message(r, deadline=time.monotonic() + 0.5)
    assert time.monotonic() - start < 3
    os.close(r)


def test_meta_tensors_travel_as_a_header_alone():
    """A tensor on the meta device has a shape and a dtype, no values: it costs no bytes."""
    sent = (torch.empty(3, 0, 2, dtype=torch.float64, device="meta"), torch.ones(2))
    header, blob = _split(wire.encode(sent))
    assert len(blob) == 2 * 4
    got = wire.decode(header, blob, lambda d: d)
    assert got[0].device.type == "meta" and got[0].shape == (3, 0, 2) and got[0].dtype == torch.float64
    assert torch.equal(got[1], sent[1])
    with pytest.raises(wire.WireError):  # a side that does not accept meta tensors refuses them
        wire.decode(header, blob, lambda d: "cpu")


def test_device_map_places_or_refuses_tensors():
    header, blob = _split(wire.encode(torch.ones(2)))
    seen = []
    assert wire.decode(header, blob, lambda d: seen.append(d) or "cpu").device.type == "cpu" and seen == ["cpu"]

    def refuse(dev):
        raise wire.WireError(f"tensor on unknown device {dev!r}")

    forged = header.replace(b'"cpu"', b'"cuda:7"')
    with pytest.raises(wire.WireError, match="cuda:7"):
        wire.decode(forged, blob, refuse)


def test_bytes_no_tensor_claims_are_refused():
    """A reply is exactly what its header says: bytes after its tensors (a forged reply padded to
    swallow the worker's own, which would follow it on the channel) make it unreadable."""
    data = wire.encode({"ok": torch.arange(3.0)})
    header_len, blob_len = wire._PREFIX.unpack(data[:wire._PREFIX.size])
    header = data[wire._PREFIX.size:wire._PREFIX.size + header_len]
    blob = data[wire._PREFIX.size + header_len:]
    assert wire.decode(header, blob)["ok"].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(wire.WireError, match="left over"):
        wire.decode(header, blob + b"\0" * 8)
