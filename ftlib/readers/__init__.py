"""Reading raw input files into Examples: every line shape ftlib knows (detected per record), in JSON Lines (plain,
gzip or zstd), JSON documents (arrays), CSV pairs and parquet (Hugging Face datasets' files included).

Bad records are data, not crashes: each yields an Issue with file:line, the field and the fix; a file that cannot
be read at all yields one Issue naming it. Reading is split in two so ingest can parse on worker processes:
`chunks(path)` does the sequential I/O (lines, JSON documents, parquet record batches) and yields small picklable
chunks; `decode_chunk(chunk)` turns one into `(format name, Example | Issue)` pairs. Only JSON documents are read
whole (see readers.documents); everything else streams.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import pyarrow as pa

from ftlib import formats
from ftlib.formats.base import Format
from ftlib.issues import Issue
from ftlib.parallel import CHUNK_LINES
from ftlib.readers import csv_pairs, documents, lines, parquet
from ftlib.readers.compression import READ_ERRORS, open_binary
from ftlib.readers.files import INPUT_SUFFIXES, WHAT_IS_READ, FileKind, Inputs, scan, sniff
from ftlib.readers.lines import Read, parse, raw_lines
from ftlib.records import Example


@dataclass(frozen=True, slots=True)
class Records:
    """JSON records with their line numbers: raw line bytes, or objects already parsed from a JSON document."""

    path: str
    items: list[tuple[int, Any]]
    forced: str | None = None
    prefer: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rows:
    """One parquet record batch; `first` is the 1-based number of its first row."""

    path: str
    first: int
    batch: pa.RecordBatch
    ours: bool
    forced: str | None = None
    prefer: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Done:
    """Items already read in-process (CSV records, file-level problems)."""

    items: list[Read]


Chunk = Records | Rows | Done


def decode_chunk(chunk: Chunk) -> list[Read]:
    """(format name or None, Example or Issue) per record, in order. Pure CPU: runs on worker processes."""
    if isinstance(chunk, Done):
        return chunk.items
    if isinstance(chunk, Rows):
        return parquet.decode_batch(chunk.path, chunk.first, chunk.batch, chunk.ours, chunk.forced, chunk.prefer)
    out: list[Read] = []
    prefix = chunk.path + ":"
    for lineno, item in chunk.items:
        source = prefix + str(lineno)
        if isinstance(item, bytes):
            out.append(lines.decode_line(item, source, chunk.forced, chunk.prefer))
        else:
            out.append(lines.decode_object(item, source, chunk.forced, chunk.prefer))
    return out


def _unreadable(path: str, why: str, source: str | None = None) -> Done:
    return Done([(None, Issue("unreadable_file", "error", why, source=source or path))])


def chunks(path: str | Path, fmt: str | None = None, prefer: Sequence[str] = (),
           size: int = CHUNK_LINES) -> Iterator[Chunk]:
    """The file's records in chunks of about `size`, in file order; never raises on bad content."""
    p = Path(path)
    prefer = tuple(prefer)
    try:
        kind = sniff(p)
    except OSError as e:
        yield _unreadable(str(p), f"cannot open the file ({e.strerror or e}); check that it exists and is readable")
        return
    if kind.container == "binary":
        yield _unreadable(str(p), f"this is {kind.what}, not UTF-8 text: ftlib reads {WHAT_IS_READ}; export or "
                          "save the data as one of those", f"{p}:1")
    elif kind.container == "parquet":
        yield from _parquet_chunks(p, fmt, prefer)
    elif kind.container == "csv":
        yield from _csv_chunks(p, kind, size)
    else:
        yield from _json_chunks(p, kind, fmt, prefer, size)


def _parquet_chunks(p: Path, fmt: str | None, prefer: tuple[str, ...]) -> Iterator[Chunk]:
    rows = 0
    try:
        for first, batch, ours in parquet.batches(p):
            yield Rows(str(p), first, batch, ours, fmt, prefer)
            rows = first + batch.num_rows - 1
    except READ_ERRORS as e:
        done = f"{rows} row(s) before it were read, the rest was not; " if rows else ""
        yield _unreadable(str(p), f"not a readable parquet file ({e}); {done}write it with pyarrow, pandas or "
                          "Hugging Face datasets (to_parquet), or convert it to JSON Lines")


def _csv_chunks(p: Path, kind: FileKind, size: int) -> Iterator[Chunk]:
    buf: list[Read] = []
    try:
        with open_binary(p, kind.compression) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="",
                                                                    errors="surrogateescape") as fh:
            for item in csv_pairs.read_csv(fh, str(p)):
                buf.append((None, item) if isinstance(item, Issue) else (csv_pairs.NAME, item))
                if len(buf) >= size:
                    yield Done(buf)
                    buf = []
    except READ_ERRORS as e:
        if buf:
            yield Done(buf)
            buf = []
        yield _unreadable(str(p), f"the file is corrupt or truncated ({e}); the records before this point were "
                          "read, the rest was not: re-create or re-download the file")
    if buf:
        yield Done(buf)


def _first_byte(fh: Any) -> bytes:
    head = fh.peek(1 << 16)[: 1 << 16]
    return head.lstrip(lines.BOM).lstrip()[:1]


def _json_source(fh: Any, kind: FileKind, name: str) -> Iterator[tuple[int, Any] | Issue]:
    """Records of a JSON text stream: a document (read whole) when it starts with `[`, or when a .json file's first
    record spans lines (one pretty-printed object); JSON Lines otherwise, streamed."""
    first = _first_byte(fh)
    if first == b"[":
        return documents.records(fh.read(), name)
    if kind.container != "json" or first != b"{":
        return raw_lines(fh)
    head: list[bytes] = []  # blank lines, then the first non-blank one
    for raw in fh:
        head.append(raw)
        if raw.removeprefix(lines.BOM).strip():
            break
    if isinstance(parse(head[-1].removeprefix(lines.BOM)), Issue):
        return documents.records(b"".join(head) + fh.read(), name)
    return raw_lines(chain(head, fh))  # JSON Lines named .json (what `datasets.Dataset.to_json` writes)


def _json_chunks(p: Path, kind: FileKind, fmt: str | None, prefer: tuple[str, ...], size: int) -> Iterator[Chunk]:
    name = str(p)
    last = 0
    buf: list[tuple[int, Any]] = []
    try:
        with open_binary(p, kind.compression) as fh:
            for item in _json_source(fh, kind, name):
                if isinstance(item, Issue):
                    if buf:
                        yield Records(name, buf, fmt, prefer)
                        buf = []
                    yield Done([(None, item)])
                    continue
                last = item[0]
                buf.append(item)
                if len(buf) >= size:
                    yield Records(name, buf, fmt, prefer)
                    buf = []
    except READ_ERRORS as e:
        if buf:
            yield Records(name, buf, fmt, prefer)
            buf = []
        where = f"after line {last}: the lines before it were read, the rest was not" if last else "nothing was read"
        yield _unreadable(name, f"the file is corrupt or truncated ({e}); {where}; re-create or re-download it",
                          f"{name}:{last + 1}")
    if buf:
        yield Records(name, buf, fmt, prefer)


def read(path: str | Path, fmt: str | None = None, prefer: Sequence[str] = ()) -> Iterator[Read]:
    """(format name, Example) per good record and (None, Issue) per bad one, in file order."""
    if fmt:
        formats.get(fmt)  # an unknown name fails now, listing the known ones
    for name in prefer:
        formats.get(name)
    return (item for chunk in chunks(path, fmt, prefer) for item in decode_chunk(chunk))


def read_file(path: str | Path, fmt: str | None = None, prefer: Sequence[str] = ()) -> Iterator[Example | Issue]:
    """One Example per good record and one Issue (severity "error") per bad one, in file order.

    `source` on each Example is "path:line" (1-based; the row number for parquet). `fmt` forces a format name
    instead of detection; `prefer` lists format names tried before detection (a target's, for example).
    CSV: a header row with prompt/completion columns (aliases: user/assistant, input/output, question/answer;
    optional system and group columns; any other column is kept in metadata).
    """
    return (item for _, item in read(path, fmt, prefer))


def iter_input_files(paths: list[str | Path]) -> list[Path]:
    """The input files under `paths`, sorted (see scan() for the files that are not inputs)."""
    return scan(paths).files


def iter_raw_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of each non-blank JSON Lines line, decompressed when the file is gzip or zstd."""
    with open_binary(path, sniff(path).compression) as fh:
        yield from raw_lines(fh)


def decode_line(raw: bytes, source: str, forced: Format | None = None) -> Example | Issue:
    """One JSON Lines line -> Example, or an Issue naming the problem and the fix (never raises on bad data)."""
    return lines.decode_line(raw, source, forced)[1]


__all__ = [
    "INPUT_SUFFIXES", "WHAT_IS_READ", "Chunk", "Done", "Inputs", "Read", "Records", "Rows", "chunks", "decode_chunk",
    "decode_line", "iter_input_files", "iter_raw_lines", "read", "read_file", "scan",
]
