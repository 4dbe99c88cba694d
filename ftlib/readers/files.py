"""Which files are inputs, and what each one holds: decided from the name in folders, from the bytes when named.

A folder is searched recursively; every file that is not an input (wrong type, hidden) is listed with the reason,
so nothing in a data folder is skipped silently. A file named explicitly is always read: its first bytes decide
compression (gzip, zstd) and container (parquet), whatever its suffix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Container = Literal["lines", "json", "csv", "parquet", "binary"]
Compression = Literal["gzip", "zstd"] | None

BASE_SUFFIXES: dict[str, Container] = {".jsonl": "lines", ".ndjson": "lines", ".json": "json", ".csv": "csv",
                                       ".parquet": "parquet"}
COMPRESSION_SUFFIXES: dict[str, Compression] = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}
INPUT_SUFFIXES: tuple[str, ...] = tuple(BASE_SUFFIXES)
WHAT_IS_READ = ".jsonl, .ndjson, .json, .csv (each optionally .gz or .zst) and .parquet"

_GZIP, _ZSTD, _PARQUET = b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"PAR1"
# Files that are certainly not text, by their first bytes: named in one issue instead of read as garbage lines.
_NOT_TEXT = {
    b"PK\x03\x04": "a zip archive (an .xlsx spreadsheet or .docx document?)",
    b"\xd0\xcf\x11\xe0": "an old Office file (.xls or .doc)",
    b"%PDF": "a PDF",
    b"\xff\xfe": "UTF-16 text",
    b"\xfe\xff": "UTF-16 text",
    b"SQLite format 3\x00": "an SQLite database",
    b"ARROW1": "an Arrow (Feather) file",
}


@dataclass(frozen=True, slots=True)
class FileKind:
    container: Container
    compression: Compression = None
    what: str | None = None  # for "binary": what the file looks like


def kind_from_name(path: Path) -> FileKind | None:
    """The kind a file name promises (".jsonl.gz" -> lines, gzip), or None when it names no input type."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = COMPRESSION_SUFFIXES.get(suffixes[-1]) if suffixes else None
    if compression:
        suffixes = suffixes[:-1]
    container = BASE_SUFFIXES.get(suffixes[-1]) if suffixes else None
    if container is None or (container == "parquet" and compression):
        return None
    return FileKind(container, compression)


def sniff(path: Path) -> FileKind:
    """What the file holds: magic bytes decide compression and parquet (and mark spreadsheets, PDFs, UTF-16 text as
    not readable); the name decides CSV and JSON documents; anything else is read as JSON Lines (a `[` first makes
    it a JSON document)."""
    with path.open("rb") as fh:
        start = fh.read(16)
    head = start[:4]
    if head == _PARQUET:
        return FileKind("parquet")
    compression: Compression = "gzip" if head[:2] == _GZIP else "zstd" if head == _ZSTD else None
    what = next((w for magic, w in _NOT_TEXT.items() if start.startswith(magic)), None)
    if what:
        return FileKind("binary", what=what)
    named = kind_from_name(path)
    container: Container = named.container if named and named.container != "parquet" else "lines"
    if named is None and path.suffix.lower() in COMPRESSION_SUFFIXES:  # e.g. chats.gz: strip and look again
        inner = kind_from_name(path.with_suffix(""))
        container = inner.container if inner and inner.container != "parquet" else "lines"
    return FileKind(container, compression)


@dataclass
class Inputs:
    """The input files to read (sorted), and every other file met in a folder with the reason it was not read."""

    files: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # posix path -> reason


def _walk(root: Path, found: dict[Path, Path], skipped: dict[str, str]) -> None:
    def unreadable(e: OSError) -> None:  # os.walk skips a folder it cannot list: never silently
        where = Path(e.filename).as_posix() + "/" if e.filename else root.as_posix() + "/"
        skipped[where] = f"cannot read the folder ({e.strerror or e}); its files were not read: fix its permissions"

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        here = Path(dirpath)
        for d in sorted(dirnames):
            if d.startswith("."):
                skipped[(here / d).as_posix() + "/"] = "hidden folder (its name starts with '.'); not searched"
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            f = here / name
            if name.startswith("."):
                skipped[f.as_posix()] = "hidden file (its name starts with '.')"
            elif kind_from_name(f) is None:
                skipped[f.as_posix()] = f"not an input file type; ftlib reads {WHAT_IS_READ} (rename it if it holds " \
                                        "examples, or move it out of the folder)"
            else:
                found.setdefault(f.resolve(), f)


def scan(paths: list[str | Path]) -> Inputs:
    """Expand folders to their input files, sorted, so ingest order never depends on the file system.

    A file named explicitly is always taken. A path that does not exist raises FileNotFoundError naming it.
    """
    found: dict[Path, Path] = {}
    skipped: dict[str, str] = {}
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            _walk(p, found, skipped)
        elif p.is_file():
            found.setdefault(p.resolve(), p)
        else:
            raise FileNotFoundError(f"input path not found: {raw}")
    files = sorted(found.values(), key=lambda f: f.as_posix())
    taken = {f.as_posix() for f in files}
    return Inputs(files, {k: v for k, v in sorted(skipped.items()) if k not in taken})
