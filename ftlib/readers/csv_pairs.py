"""CSV pairs: a header row with prompt/completion columns (and aliases), one single-turn example per record."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from typing import IO

from ftlib.issues import Issue
from ftlib.records import Example, Message

NAME = "csv"  # the format name ingest reports count CSV records under

# CSV header aliases (lower-cased, stripped) -> role of the column.
PROMPT = ("prompt", "user", "input", "question")
COMPLETION = ("completion", "assistant", "output", "answer")


def _col(header: list[str], names: tuple[str, ...]) -> int | None:
    for name in names:
        if name in header:
            return header.index(name)
    return None


def read_csv(fh: IO[str], path: str) -> Iterator[Example | Issue]:
    """Examples and Issues from an open text stream (opened with newline="" and encoding utf-8-sig).

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
        yield Issue("bad_csv_header", "error", f"CSV header has columns {', '.join(header) or '(none)'}; "
                    f"expected a prompt column ({'|'.join(PROMPT)}) and a completion column "
                    f"({'|'.join(COMPLETION)}), optional system and group", source=prefix + "1")
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
