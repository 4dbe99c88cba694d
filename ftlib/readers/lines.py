"""One JSON record -> Example or Issue, the format detected per record; and the raw lines of a JSON Lines stream.

Bad records are data, not crashes: each becomes an Issue with file:line, the field and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import IO, Any

import orjson

from ftlib import formats
from ftlib.checks import json_value_issues
from ftlib.formats.base import Format, FormatError
from ftlib.issues import Issue
from ftlib.records import Example, RecordError
from ftlib.secret_scan import excerpt

BOM = b"\xef\xbb\xbf"
Read = tuple[str | None, Example | Issue]  # (name of the format it was read as, or None) and what was read


def _known() -> str:
    return ", ".join(formats.all_formats())


def _pick(obj: dict[str, Any], prefer: Sequence[str]) -> Format | None:
    for name in prefer:
        fmt = formats.get(name)
        if fmt.detect(obj):
            return fmt
    return formats.detect(obj)


def decode_object(obj: Any, source: str, forced: str | None = None, prefer: Sequence[str] = ()) -> Read:
    """A parsed record -> (format name, Example), or (None, Issue) naming the problem and the fix. Never raises on
    bad data. `forced` names the only format to try; `prefer` lists formats to try before auto-detection."""
    if not isinstance(obj, dict):
        return None, Issue("bad_record", "error", f"a record must be a JSON object, got {type(obj).__name__}; "
                           "write one JSON object per line (or per array element)", source=source)
    fmt = formats.get(forced) if forced else _pick(obj, prefer)
    if fmt is None:
        keys = excerpt(", ".join(sorted(obj)[:8]), 80) or "none"  # keys are input: short and redacted
        return None, Issue("unknown_format", "error", f"the record (keys: {keys}) matches no known format; write it "
                           f"in one of: {_known()} (e.g. {{\"messages\": [...]}})", source=source)
    try:
        ex = fmt.decode(obj, source)
    except FormatError as e:
        return None, Issue(e.code, "error", f"{fmt.name}: {e}", source=source, field=e.field)
    except (RecordError, ValueError, TypeError, KeyError, AttributeError) as e:  # a decoder gap: still data
        return None, Issue("bad_record", "error", f"{fmt.name}: cannot decode this record ({e!r}); check it against "
                           "the format's documentation", source=source, field=getattr(e, "field", None))
    unstorable = json_value_issues(ex)  # too deep to write, or a big number the reader made a float
    return (None, unstorable[0]) if unstorable else (fmt.name, ex)


def parse(raw: bytes) -> Any | Issue:
    try:
        obj = orjson.loads(raw.rstrip(b"\r\n"))
    except orjson.JSONDecodeError as e:
        return Issue("bad_json", "error", f"not valid JSON ({e}); write one complete JSON object per line "
                     "(no trailing commas, no line breaks inside an object, UTF-8)")
    return _duplicate_key(raw, obj) or obj


class _Dup(dict):  # type: ignore[type-arg]
    """An object whose JSON text repeats `key` (the parser kept only the last value)."""

    key: str


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) == len(pairs):
        return out
    seen: set[str] = set()
    dup = _Dup(out)
    dup.key = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
    return dup


def _find_dup(value: Any, at: str) -> tuple[str, str] | None:
    stack = [(at, value)]
    while stack:
        path, v = stack.pop(0)
        if isinstance(v, _Dup):
            return path, v.key
        if isinstance(v, dict):
            stack.extend((f"{path}.{k}" if path else k, item) for k, item in v.items())
        elif isinstance(v, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(v))
    return None


def _duplicate_key(raw: bytes, obj: Any) -> Issue | None:
    """JSON parsers keep the last of two equal keys, silently dropping the first value. Cheap test first (~1 us a
    line): the raw text and orjson's re-serialisation hold the same number of ':' (orjson never escapes one) unless a
    key was repeated, which adds its ':' and the dropped value's; only lines whose counts differ (repeats, or a
    \\u003a escape) are parsed again, slowly, to find the repeated key."""
    try:
        if raw.count(b":") == orjson.dumps(obj).count(b":"):
            return None
    except TypeError:  # too deep to re-serialise: the reader's depth check reports it
        return None
    found = _find_dup(json.loads(raw, object_pairs_hook=_pairs), "")
    if found is None:
        return None
    path, key = found
    fld = f"{path}.{key}" if path else key
    return Issue("duplicate_key", "error", f"the key {excerpt(key, 30)!r} appears twice in "
                 f"{path or 'the record'}; JSON readers keep only the last value, so the other would be lost "
                 "silently: remove one of them", field=fld)


def decode_line(raw: bytes, source: str, forced: Format | str | None = None, prefer: Sequence[str] = ()) -> Read:
    """One JSON Lines line -> (format name, Example) or (None, Issue)."""
    obj = parse(raw)
    if isinstance(obj, Issue):
        return None, Issue(obj.code, obj.severity, obj.message, source=source, field=obj.field)
    name = forced.name if forced is not None and not isinstance(forced, str) else forced
    return decode_object(obj, source, name, prefer)


def raw_lines(fh: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of each non-blank line of a binary stream; a UTF-8 BOM on line 1 is dropped."""
    for lineno, raw in enumerate(fh, 1):
        if lineno == 1 and raw.startswith(BOM):
            raw = raw[3:]
        if raw and not raw.isspace():
            yield lineno, raw
