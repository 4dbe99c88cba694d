"""Parquet inputs: Hugging Face datasets' files (`Dataset.to_parquet`, the Hub's parquet exports), any parquet
whose columns form one of the line shapes, and ftlib's own dataset files.

Rows stream in record batches; each row becomes a dict and is decoded like a JSON line (format detected per row).
Arrow fills a struct field a row lacks with null, so nulls are dropped before decoding: a null is an absent key.
The "line" in a row's source is its 1-based row number.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ftlib import store
from ftlib.readers.lines import Read, decode_object

FTLIB_NAME = "ftlib-dataset"  # what rows of ftlib's own dataset parquet count as in ingest reports
BATCH_ROWS = 2048


def is_ftlib_dataset(schema: pa.Schema) -> bool:
    return set(store.SCHEMA.names) <= set(schema.names)


def batches(path: Path) -> Iterator[tuple[int, pa.RecordBatch, bool]]:
    """(first row number, batch, is an ftlib dataset) per record batch; raises OSError/ArrowException when the
    file is not readable parquet (the caller reports it)."""
    with pq.ParquetFile(path) as pf:
        ours = is_ftlib_dataset(pf.schema_arrow)
        first = 1
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, use_threads=False):
            yield first, batch, ours
            first += batch.num_rows


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def decode_batch(path: str, first: int, batch: pa.RecordBatch, ours: bool, forced: str | None,
                 prefer: Sequence[str]) -> list[Read]:
    if ours:
        conformed = batch.select(store.SCHEMA.names)
        return [(FTLIB_NAME, _with_source(ex, f"{path}:{first + i}"))
                for i, ex in enumerate(store.examples_from_batch(conformed))]
    return [decode_object(_drop_nulls(row), f"{path}:{first + i}", forced, prefer)
            for i, row in enumerate(batch.to_pylist())]


def _with_source(ex: Any, source: str) -> Any:
    ex.source = source
    return ex
