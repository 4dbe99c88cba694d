"""The record types' slot __init__ (records._slot_init) behaves as the dataclass one it replaces."""

from __future__ import annotations

import dataclasses
import inspect
import pickle

import pytest

from ftlib.records import Attachment, Message, ToolCall

SAMPLES = {
    Attachment: ("image/png", "ab" * 32, b"\x89PNG", "https://example.com/a.png", "low"),
    ToolCall: ("call_1", "lookup", '{"q": 1}'),
    Message: ("assistant", "hi", (Attachment("image/png", "00" * 32),), (ToolCall("c", "f"),), "c", "bob", 0, "why"),
}


def _reference(cls: type, values: tuple) -> object:
    """What the dataclass-generated __init__ of a frozen class does: object.__setattr__ per field."""
    obj = object.__new__(cls)
    for f, v in zip(dataclasses.fields(cls), values, strict=True):
        object.__setattr__(obj, f.name, v)
    return obj


@pytest.mark.parametrize("cls", list(SAMPLES))
def test_slot_init_sets_every_field_like_the_dataclass_init(cls: type) -> None:
    values = SAMPLES[cls]
    names = [f.name for f in dataclasses.fields(cls)]
    ref = _reference(cls, values)
    by_position = cls(*values)
    by_name = cls(**dict(zip(names, values, strict=True)))
    for built in (by_position, by_name):
        assert [getattr(built, n) for n in names] == list(values)
        assert built == ref and hash(built) == hash(ref) and repr(built) == repr(ref)
        assert pickle.loads(pickle.dumps(built)) == built
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(built, names[0], values[0])


@pytest.mark.parametrize("cls", list(SAMPLES))
def test_slot_init_keeps_the_signature_and_defaults(cls: type) -> None:
    params = list(inspect.signature(cls).parameters.values())
    assert [p.name for p in params] == [f.name for f in dataclasses.fields(cls)]
    for p, f in zip(params, dataclasses.fields(cls), strict=True):
        assert p.default is (inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default)
    required = [p.name for p in params if p.default is inspect.Parameter.empty]
    with pytest.raises(TypeError, match=required[-1]):
        cls()
    assert Message("user") == _reference(Message, ("user", "", (), (), None, None, None, None))
