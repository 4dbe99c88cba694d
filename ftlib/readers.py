"""Reading raw input files into Examples: JSONL of any registered format (auto-detected per line) and CSV pairs.

Bad lines are data, not crashes: each yields an Issue with file:line and the fix, never an exception.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson

from ftlib import formats
from ftlib.formats.base import Format, FormatError
from ftlib.issues import Issue
from ftlib.records import Example, Message, RecordError

INPUT_SUFFIXES = (".jsonl", ".csv")

# CSV header aliases (lower-cased, stripped) -> role of the column.
_PROMPT = ("prompt", "user", "input", "question")
_COMPLETION = ("completion", "assistant", "output", "answer")
_BOM = b"\xef\xbb\xbf"


def read_file(path: str | Path, fmt: str | None = None) -> Iterator[Example | Issue]:
    """Yield one Example per good line and one Issue (severity "error") per bad line, in file order.

    `source` on each Example is "path:line" (1-based). `fmt` forces a format name instead of auto-detection.
    CSV: a header row with prompt/completion columns (aliases: user/assistant, input/output, question/answer;
    optional system and group columns; any other column is kept in metadata).
    """
    p = Path(path)
    if p.suffix.lower() == ".csv":
        return _read_csv(p)
    return _read_jsonl(p, formats.get(fmt) if fmt else None)


def _known() -> str:
    return ", ".join(formats.FORMATS)


def iter_raw_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of each non-blank JSONL line: the I/O half of reading, kept apart so parsing can
    run in worker processes (ftlib.pipeline.ingest) while this stays a plain sequential read."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if lineno == 1 and raw.startswith(_BOM):
                raw = raw[3:]
            if raw and not raw.isspace():
                yield lineno, raw


def decode_line(raw: bytes, source: str, forced: Format | None = None) -> Example | Issue:
    """One JSONL line -> Example, or an Issue naming the problem and the fix (never raises on bad data)."""
    try:
        obj = orjson.loads(raw.rstrip(b"\r\n"))
    except orjson.JSONDecodeError as e:
        return Issue("bad_json", "error", f"not valid JSON ({e}); write one complete JSON object per line "
                     "(no trailing commas, no line breaks inside an object, UTF-8)", source=source)
    if not isinstance(obj, dict):
        return Issue("bad_record", "error", f"a line must be a JSON object, got {type(obj).__name__}; "
                     "write one JSON object per line", source=source)
    fmt = forced or formats.detect(obj)
    if fmt is None:
        keys = ", ".join(sorted(obj)[:8]) or "none"
        return Issue("unknown_format", "error", f"the line (keys: {keys}) matches no known format; write it "
                     f"in one of: {_known()} (e.g. {{\"messages\": [...]}})", source=source)
    try:
        return fmt.decode(obj, source)
    except FormatError as e:
        return Issue(e.code, "error", f"{fmt.name}: {e}", source=source, field=e.field)
    except (RecordError, ValueError, TypeError, KeyError, AttributeError) as e:  # a decoder gap: still data
        return Issue("bad_record", "error", f"{fmt.name}: cannot decode this line ({e!r}); check it against "
                     "the format's documentation", source=source, field=getattr(e, "field", None))


def _read_jsonl(path: Path, forced: Format | None) -> Iterator[Example | Issue]:
    prefix = f"{path}:"
    for lineno, raw in iter_raw_lines(path):
        yield decode_line(raw, prefix + str(lineno), forced)


def _col(header: list[str], names: tuple[str, ...]) -> int | None:
    for name in names:
        if name in header:
            return header.index(name)
    return None


def _read_csv(path: Path) -> Iterator[Example | Issue]:
    prefix = f"{path}:"
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long prompts exceed the 128 KiB default
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as e:
            yield Issue("bad_csv", "error", f"cannot read the CSV header ({e}); save the file as UTF-8 CSV",
                        source=prefix + "1")
            return
        if header is None:
            return
        names = [h.strip().lower() for h in header]
        ip, ic = _col(names, _PROMPT), _col(names, _COMPLETION)
        if ip is None or ic is None:
            yield Issue("bad_csv_header", "error", f"CSV header has columns {', '.join(header) or '(none)'}; "
                        f"expected a prompt column ({'|'.join(_PROMPT)}) and a completion column "
                        f"({'|'.join(_COMPLETION)}), optional system and group", source=prefix + "1")
            return
        isys, igroup = _col(names, ("system",)), _col(names, ("group",))
        extra = [(i, header[i].strip()) for i in range(len(names)) if i not in (ip, ic, isys, igroup) and names[i]]
        width = len(header)
        last = reader.line_num
        while True:
            start = last + 1  # a quoted cell may span lines: report where the record starts
            try:
                row = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as e:
                last = reader.line_num
                yield Issue("bad_csv", "error", f"malformed CSV record ({e}); check quoting (double any quote inside "
                            "a quoted cell) and save as UTF-8", source=prefix + str(start))
                continue
            last = reader.line_num
            if not any(c.strip() for c in row):
                continue
            source = prefix + str(start)
            if len(row) != width:
                yield Issue("bad_csv", "error", f"the record has {len(row)} cells but the header has {width}; quote "
                            "cells that contain commas or line breaks", source=source)
                continue
            msgs = []
            if isys is not None and row[isys]:
                msgs.append(Message("system", row[isys]))
            msgs.append(Message("user", row[ip]))
            msgs.append(Message("assistant", row[ic]))
            meta = {name: row[i] for i, name in extra if row[i] != ""}
            group = row[igroup] if igroup is not None and row[igroup] != "" else None
            yield Example(messages=tuple(msgs), metadata=meta, group=group, source=source)


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def iter_input_files(paths: list[str | Path]) -> list[Path]:
    """Expand directories to their input files, sorted, so ingest order never depends on the file system.

    Directories are searched recursively for INPUT_SUFFIXES, skipping hidden files and folders; a file named
    explicitly is always taken. A path that does not exist raises FileNotFoundError naming it.
    """
    found: dict[Path, Path] = {}
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for f in p.rglob("*"):
                if f.suffix.lower() in INPUT_SUFFIXES and f.is_file() and not _hidden(f, p):
                    found.setdefault(f.resolve(), f)
        elif p.is_file():
            found.setdefault(p.resolve(), p)
        else:
            raise FileNotFoundError(f"input path not found: {raw}")
    return sorted(found.values(), key=lambda f: f.as_posix())
