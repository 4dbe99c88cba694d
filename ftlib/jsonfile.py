"""Deterministic JSON files for everything tracked (reports, manifests' heads, the ledger): sorted keys,
2-space indent, a final newline, written atomically so a reader or a kill -9 never sees half a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from ftlib import atomic


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def write_json_atomic(path: Path, value: Any) -> None:
    """A unique temp file, fsynced, then os.replace: a reader (or a kill -9) never sees half a file, and two
    writers of one path never share a temp file."""
    atomic.write_bytes(Path(path), dumps(value))
