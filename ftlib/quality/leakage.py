"""Leakage: how much of each held-out example (validation, test, an eval file) already appears in the training split.

A held-out example's overlap is the share of its distinct word n-grams (8 words by default, system prompts left
out: see ftlib.quality.text) that occur anywhere in train; at or above the threshold it is contaminated, and its
score on that example measures memory, not skill. Near-duplicates are already kept on one side by the split;
this catches the rest: a question copied into another conversation, an eval set built from training data.

Flat memory at any size: n-gram hashes are spilled to temp files partitioned by their top bits, then each
partition of train and of the held-out sets is joined on its own (sort + binary search), so at most 1/32 of the
n-grams is in memory at once.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from ftlib.quality import text as text_mod

PARTITION_BITS = 5
_GRAM = np.dtype([("h", "<u8"), ("r", "<u4")])  # n-gram hash, row it came from (12 bytes)


@dataclass(frozen=True)
class Settings:
    """quality.ngram and quality.threshold in params.yaml."""

    ngram: int = 8
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.ngram < 1:
            raise ValueError(f"leakage n-gram size must be at least 1 word, got {self.ngram}; 8 is usual")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"leakage threshold must be above 0 and at most 1, got {self.threshold}: the share of "
                             "an example's n-grams found in train from which it counts as contaminated")


class Spill:
    """N-gram hashes (with their row) appended to one temp file per hash partition."""

    def __init__(self, folder: Path, name: str) -> None:
        self.paths = [folder / f"{name}.{p:02d}.bin" for p in range(1 << PARTITION_BITS)]
        self._files = [p.open("wb") for p in self.paths]
        self.grams = 0

    def add(self, hashes: np.ndarray, rows: np.ndarray) -> None:
        if not len(hashes):
            return
        records = np.empty(len(hashes), _GRAM)
        records["h"], records["r"] = hashes, rows
        part = (hashes >> np.uint64(64 - PARTITION_BITS)).astype(np.int64)
        order = np.argsort(part, kind="stable")
        records, part = records[order], part[order]
        cuts = np.searchsorted(part, np.arange((1 << PARTITION_BITS) + 1))
        for p in range(1 << PARTITION_BITS):
            if cuts[p + 1] > cuts[p]:
                records[cuts[p]:cuts[p + 1]].tofile(self._files[p])
        self.grams += len(hashes)

    def close(self) -> None:
        for f in self._files:
            f.close()

    def load(self, p: int) -> np.ndarray:
        return np.fromfile(self.paths[p], dtype=_GRAM)


def spill_batches(spill: Spill, batches: Iterable[pa.RecordBatch], n: int, row_offset: int = 0) -> int:
    """Add every row's n-grams to the spill, rows numbered from row_offset; returns the rows read."""
    rows_read = 0
    for batch in batches:
        pieces, owner = text_mod.text_pieces(batch)
        grams, rows = text_mod.ngram_hashes(pieces, owner, n)
        spill.add(grams, rows + row_offset + rows_read)
        rows_read += batch.num_rows
    return rows_read


@dataclass
class Overlap:
    """Per held-out row: distinct n-grams, how many occur in train, and one train row sharing the first match."""

    grams: np.ndarray  # int64
    found: np.ndarray  # int64
    train_row: np.ndarray  # int64, -1 when nothing matched

    @property
    def share(self) -> np.ndarray:
        return np.divide(self.found, self.grams, out=np.zeros(len(self.grams)), where=self.grams > 0)


def join(train: Spill, held: Spill, held_rows: int) -> Overlap:
    """For each held-out row, the share of its distinct n-grams found in train, partition by partition."""
    out = Overlap(np.zeros(held_rows, np.int64), np.zeros(held_rows, np.int64), np.full(held_rows, -1, np.int64))
    for p in range(1 << PARTITION_BITS):
        h = held.load(p)
        if not len(h):
            continue
        h = np.unique(h)  # one (hash, row) pair per distinct n-gram of a row
        out.grams += np.bincount(h["r"], minlength=held_rows)
        t = train.load(p)
        if not len(t):
            continue
        t = t[np.argsort(t["h"], kind="stable")]
        pos = np.searchsorted(t["h"], h["h"])
        hit = pos < len(t)
        hit[hit] = t["h"][pos[hit]] == h["h"][hit]
        rows = h["r"][hit].astype(np.int64)
        out.found += np.bincount(rows, minlength=held_rows)
        # Partitions run in hash order and h is sorted by hash: the first hit of a row is its smallest hash.
        fresh = out.train_row[rows] < 0
        rows, sources = rows[fresh], t["r"][pos[hit][fresh]].astype(np.int64)
        first = np.unique(rows, return_index=True)[1]
        out.train_row[rows[first]] = sources[first]
    return out


class Workspace:
    """A temp folder with a train spill and a held-out spill, removed on close."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="ftlib-leakage-")
        folder = Path(self._tmp.name)
        self.train = Spill(folder, "train")
        self.held = Spill(folder, "held")

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.train.close()
        self.held.close()
        self._tmp.cleanup()


__all__ = ["Overlap", "Settings", "Spill", "Workspace", "join", "spill_batches"]
