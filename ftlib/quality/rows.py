"""Looking up the id and source (file:line) of a few rows by position, reading only those two columns."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ftlib import store

ID_COLUMNS = ("id", "source")


def parquet_batches(path: Path, columns: Sequence[str] = ID_COLUMNS) -> Iterator[pa.RecordBatch]:
    """A dataset parquet file's rows in order, only `columns`, one batch at a time."""
    with pq.ParquetFile(path, pre_buffer=False) as pf:
        yield from pf.iter_batches(batch_size=store.BATCH_ROWS, columns=list(columns), use_threads=False)


def ids_and_sources(batches: Iterable[pa.RecordBatch], wanted: np.ndarray) -> dict[int, tuple[str, str | None]]:
    """row -> (id, source) for the wanted rows of batches holding the id and source columns."""
    wanted = np.unique(np.asarray(wanted, dtype=np.int64))
    found: dict[int, tuple[str, str | None]] = {}
    offset = 0
    for batch in batches:
        n = batch.num_rows
        lo, hi = np.searchsorted(wanted, [offset, offset + n])
        if hi > lo:
            local = pa.array(wanted[lo:hi] - offset)
            ids = batch.column("id").take(local).to_pylist()
            sources = batch.column("source").take(local).to_pylist()
            for r, i, s in zip(wanted[lo:hi].tolist(), ids, sources, strict=True):
                found[r] = (i, s)
        offset += n
        if offset >= (wanted[-1] + 1 if len(wanted) else 0):
            break
    return found
