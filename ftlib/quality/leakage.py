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
_PARTS = 1 << PARTITION_BITS
_MIX = np.uint64(0x9E3779B97F4A7C15)


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
    """N-gram hashes and their rows appended to two temp files per hash partition (top bits of the hash)."""

    def __init__(self, folder: Path, name: str) -> None:
        self._paths = [(folder / f"{name}.{p:02d}.h", folder / f"{name}.{p:02d}.r") for p in range(_PARTS)]
        self._files = [(h.open("wb"), r.open("wb")) for h, r in self._paths]
        self.grams = 0

    def add(self, hashes: np.ndarray, rows: np.ndarray) -> None:
        if not len(hashes):
            return
        part = (hashes >> np.uint64(64 - PARTITION_BITS)).astype(np.uint8)
        order = np.argsort(part, kind="stable")  # a radix sort on one byte
        hashes, rows, part = hashes[order], rows[order].astype(np.uint32), part[order]
        cuts = np.searchsorted(part, np.arange(_PARTS + 1))
        for p in range(_PARTS):
            lo, hi = cuts[p], cuts[p + 1]
            if hi > lo:
                hashes[lo:hi].tofile(self._files[p][0])
                rows[lo:hi].tofile(self._files[p][1])
        self.grams += len(hashes)

    def close(self) -> None:
        for h, r in self._files:
            h.close()
            r.close()

    def load(self, p: int) -> tuple[np.ndarray, np.ndarray]:
        h, r = self._paths[p]
        return np.fromfile(h, dtype=np.uint64), np.fromfile(r, dtype=np.uint32)


def spill_batches(spill: Spill, batches: Iterable[pa.RecordBatch], n: int, row_offset: int = 0) -> int:
    """Add every row's n-grams to the spill, rows numbered from row_offset; returns the rows read."""
    rows_read = 0
    for batch in batches:
        pieces, owner = text_mod.text_pieces(batch)
        grams, rows = text_mod.ngram_hashes(pieces, owner, n, by_row=False)
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


def _distinct_pairs(h: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One (hash, row) per distinct n-gram of a row, ordered by hash (a mixed 64-bit key per pair)."""
    key = h ^ (r.astype(np.uint64) * _MIX)
    _, first = np.unique(key, return_index=True)
    h, r = h[first], r[first]
    order = np.argsort(h)
    return h[order], r[order]


def join(train: Spill, held: Spill, held_rows: int) -> Overlap:
    """For each held-out row, the share of its distinct n-grams found in train, partition by partition."""
    out = Overlap(np.zeros(held_rows, np.int64), np.zeros(held_rows, np.int64), np.full(held_rows, -1, np.int64))
    for p in range(_PARTS):
        hh, hr = held.load(p)
        if not len(hh):
            continue
        hh, hr = _distinct_pairs(hh, hr)
        out.grams += np.bincount(hr, minlength=held_rows)
        th, tr = train.load(p)
        if not len(th):
            continue
        order = np.argsort(th)
        th, tr = th[order], tr[order]
        starts = np.flatnonzero(np.r_[True, th[1:] != th[:-1]])
        keys, first_row = th[starts], np.minimum.reduceat(tr, starts)  # each train n-gram: its lowest train row
        pos = np.minimum(np.searchsorted(keys, hh), len(keys) - 1)
        hit = keys[pos] == hh
        rows = hr[hit].astype(np.int64)
        out.found += np.bincount(rows, minlength=held_rows)
        # Partitions run in hash order and hh is sorted by hash: a row's first hit is its smallest shared n-gram.
        fresh = out.train_row[rows] < 0
        rows, sources = rows[fresh], first_row[pos[hit][fresh]].astype(np.int64)
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
