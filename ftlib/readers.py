"""Reading raw input files into Examples: JSONL of any registered format (auto-detected per line) and CSV pairs.

Bad lines are data, not crashes: each yields an Issue with file:line and the fix, never an exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ftlib.issues import Issue
from ftlib.records import Example

INPUT_SUFFIXES = (".jsonl", ".csv")


def read_file(path: str | Path, fmt: str | None = None) -> Iterator[Example | Issue]:
    """Yield one Example per good line and one Issue (severity "error") per bad line, in file order.

    `source` on each Example is "path:line" (1-based). `fmt` forces a format name instead of auto-detection.
    CSV: a header row with prompt/completion columns (aliases: user/assistant, input/output; optional system).
    """
    raise NotImplementedError


def iter_input_files(paths: list[str | Path]) -> list[Path]:
    """Expand directories to their input files, sorted, so ingest order never depends on the file system."""
    raise NotImplementedError
