"""JSON documents: a `.json` file holding an array of records (what `json.dump(list)` and many exporters write),
one pretty-printed record, or several records one after another.

The document is read whole into memory (JSON arrays cannot be streamed without a streaming parser, and files of
this kind are small in practice); the records are then handed on one at a time, each with the line it starts on,
so an error points at its line. Use JSON Lines for big data: it streams.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ftlib.issues import Issue

_DECODER = json.JSONDecoder()
_WS = " \t\r\n"


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WS:
        pos += 1
    return pos


def _broken(path: str, text: str, e: json.JSONDecodeError, read: int) -> Issue:
    return Issue("bad_json", "error", f"the JSON document is broken here ({e.msg}, column {e.colno}); {read} "
                 "record(s) before it were read and the rest of the file was not: fix the JSON (or write one "
                 "object per line as .jsonl, where one bad line does not stop the others)",
                 source=f"{path}:{e.lineno}")


def records(data: bytes, path: str) -> Iterator[tuple[int, Any] | Issue]:
    """(line, record) for every top-level object, and for every element of a top-level array; a syntax error
    ends reading with one Issue at its line saying how much was read."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        yield Issue("bad_encoding", "error", f"the file is not UTF-8 ({e.reason} at byte {e.start}); nothing in it "
                    "was read: save it as UTF-8", source=f"{path}:{line}")
        return
    line, seen = 1, 0  # line number at text offset `seen`
    read = 0
    pos = _skip(text, 0)

    def at(p: int) -> int:
        nonlocal line, seen
        line += text.count("\n", seen, p)
        seen = p
        return line

    try:
        while pos < len(text):
            if text[pos] != "[":
                obj, end = _DECODER.raw_decode(text, pos)
                yield at(pos), obj
                read += 1
                pos = _skip(text, end)
                continue
            pos = _skip(text, pos + 1)
            if pos < len(text) and text[pos] == "]":
                pos = _skip(text, pos + 1)
                continue
            while True:
                obj, end = _DECODER.raw_decode(text, pos)
                yield at(pos), obj
                read += 1
                pos = _skip(text, end)
                if pos < len(text) and text[pos] == ",":
                    pos = _skip(text, pos + 1)
                    continue
                if pos < len(text) and text[pos] == "]":
                    pos = _skip(text, pos + 1)
                    break
                raise json.JSONDecodeError("expected ',' or ']' after an array element", text, pos)
    except json.JSONDecodeError as e:
        yield _broken(path, text, e, read)
