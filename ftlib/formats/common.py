"""Helpers every format module shares: typed field access with pointed errors, ftlib's extension keys,
tool-call id assignment for formats that have no ids, and JSON-argument conversions.

Errors are raised only on the failing path, so the happy path stays a few dict lookups per field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

import orjson

from ftlib.formats.base import FormatError
from ftlib.records import Example, Message


def fail(message: str, field: str | None = None) -> NoReturn:
    raise FormatError(message, field=field)


def unsupported(fmt: str, what: str, fix: str, field: str | None = None) -> NoReturn:
    raise FormatError(f"{fmt} cannot hold {what}; {fix}", field=field, code="unsupported")


def type_name(value: Any) -> str:
    return "null" if value is None else {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def need_dict(value: Any, field: str | None, fix: str = "make it a JSON object") -> Mapping[str, Any]:
    if not isinstance(value, dict):
        fail(f"expected an object, got {type_name(value)}; {fix}", field)
    return value


def need_list(value: Any, field: str, fix: str = "make it a JSON array") -> list[Any]:
    if not isinstance(value, list):
        fail(f"expected an array, got {type_name(value)}; {fix}", field)
    return value


def need_str(value: Any, field: str, fix: str = "make it a JSON string") -> str:
    if not isinstance(value, str):
        fail(f"expected a string, got {type_name(value)}; {fix}", field)
    return value


def opt_str(obj: Mapping[str, Any], key: str, field: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    fail(f"expected a string, got {type_name(value)}; make {key!r} a JSON string or remove it", field)


def extensions(obj: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """ftlib's own optional keys on input lines: "metadata" (object) and "group" (string)."""
    meta = obj.get("metadata")
    if meta is None:
        meta = {}
    elif not isinstance(meta, dict):
        fail(f"expected an object, got {type_name(meta)}; make 'metadata' a JSON object or remove it", "metadata")
    group = obj.get("group")
    if group is not None and not isinstance(group, str):
        fail(f"expected a string, got {type_name(group)}; write 'group' as a JSON string (e.g. \"42\")", "group")
    return meta, group


def require_kind(fmt: str, ex: Example, kind: str) -> None:
    if ex.kind != kind:
        other = "preference (DPO)" if ex.kind == "preference" else "SFT"
        unsupported(fmt, f"{other} examples", f"export {ex.kind} examples with a {ex.kind} format")


def require_replies(fmt: str, ex: Example) -> tuple[Message, Message]:
    """(chosen, rejected) of a preference example; a format cannot write one without both."""
    require_kind(fmt, ex, "preference")
    if ex.chosen is None or ex.rejected is None:
        unsupported(fmt, "a preference example without both replies", "give it a chosen and a rejected reply")
    return ex.chosen, ex.rejected


def tool_call_name_map(messages: tuple[Message, ...] | list[Message]) -> dict[str, str]:
    """tool-call id -> function name, for formats that name tool results instead of linking them by id."""
    return {tc.id: tc.name for m in messages for tc in m.tool_calls}


class CallLinker:
    """Gives tool calls deterministic ids ("call_<n>", n counting calls in the example) where the format has
    none, and links each tool result to the earliest unanswered call of the same function name."""

    __slots__ = ("count", "pending")

    def __init__(self) -> None:
        self.count = 0
        self.pending: list[tuple[str, str]] = []  # (id, name) of calls not answered yet

    def call(self, name: str, call_id: str | None = None) -> str:
        cid = call_id or f"call_{self.count}"
        self.count += 1
        self.pending.append((cid, name))
        return cid

    def answer(self, name: str | None, call_id: str | None = None) -> str | None:
        pending = self.pending
        for i, (cid, cname) in enumerate(pending):
            if (call_id is not None and cid == call_id) or (call_id is None and cname == name):
                del pending[i]
                return cid
        return call_id


def assigned_ids_differ(ex: Example) -> bool:
    """True when the example's tool-call ids are not the ones CallLinker would assign on decode."""
    n = 0
    for m in ex.all_messages():
        for tc in m.tool_calls:
            if tc.id != f"call_{n}":
                return True
            n += 1
    return False


def args_text(args: Any, field: str) -> str:
    """Arguments given as a JSON object (HF, Vertex) -> the JSON text the canonical record holds."""
    if not isinstance(args, dict):
        fail(f"expected an object, got {type_name(args)}; give the function arguments as a JSON object", field)
    return orjson.dumps(args).decode()


def args_object(arguments: str) -> dict[str, Any] | None:
    """JSON argument text -> object when decoding the object gives back exactly this text, else None."""
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return None
    if isinstance(value, dict) and orjson.dumps(value).decode() == arguments:
        return value
    return None



def parse_object(text: str) -> dict[str, Any] | None:
    """JSON text -> object, or None when it is not valid JSON or not an object."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
