"""CSV pairs: a header row with prompt/completion columns (and aliases), one single-turn example per record."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from typing import IO

from ftlib.issues import Issue
from ftlib.records import Example, Message
from ftlib.secret_scan import excerpt

NAME = "csv"  # the format name ingest reports count CSV records under

# CSV header aliases (lower-cased, stripped) -> role of the column.
PROMPT = ("prompt", "user", "input", "question")
COMPLETION = ("completion", "assistant", "output", "answer")


def _count_records(reader: Iterator[list[str]]) -> int:
    n = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return n
        except csv.Error:
            n += 1
            continue
        n += any(c.strip() for c in row)


def _col(header: list[str], names: tuple[str, ...]) -> int | None:
    for name in names:
        if name in header:
            return header.index(name)
    return None


def _not_utf8(cells: list[str]) -> bool:
    """True when a cell holds bytes that were not UTF-8 (decoded with errors="surrogateescape")."""
    try:
        "".join(cells).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _not_utf8_issue(source: str) -> Issue:
    return Issue("bad_encoding", "error", "the record is not valid UTF-8 (a byte such as 0xE9 from a Latin-1 or "
                 "Windows-1252 export); save the file as UTF-8 (the other records were read)", source=source)


def read_csv(fh: IO[str], path: str) -> Iterator[Example | Issue]:
    """Examples and Issues from an open text stream (opened with newline="", encoding utf-8-sig and
    errors="surrogateescape", so a record with a non-UTF-8 byte is rejected alone and line numbers stay true).

    Optional system and group columns; any other column is kept in metadata. A record's source is the line
    where it starts (a quoted cell may span lines).
    """
    prefix = f"{path}:"
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long prompts exceed the 128 KiB default
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
    ip, ic = _col(names, PROMPT), _col(names, COMPLETION)
    if ip is None or ic is None:
        unread = 1 + _count_records(reader)  # nothing of the file is read: say how much that is
        shown = excerpt(", ".join(header), 60) or "(none)"  # may be a data row: never quoted raw
        yield Issue("bad_csv_header", "error", f"the first row is not a header naming a prompt and a completion "
                    f"column (it reads: {shown}), so the file's {unread} record(s) were not read; add a header "
                    f"row such as prompt,completion (prompt aliases: {'|'.join(PROMPT)}; completion aliases: "
                    f"{'|'.join(COMPLETION)}; optional system and group columns)", source=prefix + "1")
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
            if isinstance(e, UnicodeDecodeError):  # the decoder cannot resume inside the stream: say so
                yield Issue("bad_csv", "error", f"the file is not UTF-8 from about here on ({e}); the rest of the "
                            "file was not read: save it as UTF-8", source=prefix + str(start))
                return
            yield Issue("bad_csv", "error", f"malformed CSV record ({e}); check quoting (double any quote inside "
                        "a quoted cell)", source=prefix + str(start))
            continue
        last = reader.line_num
        if not any(c.strip() for c in row):
            continue
        source = prefix + str(start)
        if _not_utf8(row):
            yield _not_utf8_issue(source)
            continue
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
