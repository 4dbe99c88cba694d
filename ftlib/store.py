"""Where a Dataset's rows live: in-memory Arrow record batches or (masked views of) parquet files.

Kept apart from dataset.py so the user-facing API reads as API while the storage tricks (row masks over
parquet files, deterministic parquet bytes, an external shuffle that never holds the whole table) live here.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ftlib import atomic as atomic_io
from ftlib.records import Attachment, Example, Message, ToolCall, arrow_schema, canonical_json

SCHEMA: pa.Schema = arrow_schema()
BATCH_ROWS = 8192  # rows per in-memory record batch and per parquet read
ROW_GROUP_ROWS = 16384  # fixed row groups (bytes depend on the data only); also the unit a parquet read decodes
SHUFFLE_PART_ROWS = 65536  # rows sorted in memory at once by the external shuffle
# Fixed writer options: the same rows give the same bytes on every run (no timestamps exist in parquet metadata).
PARQUET_OPTIONS: dict[str, object] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": False,
    "version": "2.6",
    "data_page_version": "1.0",
}


@dataclass(frozen=True, slots=True)
class ParquetPart:
    """Rows of a parquet file, optionally filtered by a boolean mask over the file's rows (a split or dedupe view)."""

    path: Path
    num_rows: int  # visible rows
    mask: pa.BooleanArray | None = None


Part = pa.RecordBatch | ParquetPart


def part_rows(part: Part) -> int:
    return part.num_rows


def open_parquet(path: str | Path) -> ParquetPart:
    """A view of a whole dataset parquet file, after checking it has the dataset columns."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such parquet file")
    with pq.ParquetFile(p) as pf:
        names = set(pf.schema_arrow.names)
        n = pf.metadata.num_rows
    missing = [f.name for f in SCHEMA if f.name not in names]
    if missing:
        raise ValueError(
            f"{p}: not an ftlib dataset parquet (missing columns: {', '.join(missing)}); "
            "write it with Dataset.to_parquet or `ftlib ingest`"
        )
    return ParquetPart(p, n)


def iter_part(part: Part, columns: Sequence[str] | None, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """Stream one part's visible rows in batches, reading only `columns` (all when None)."""
    if isinstance(part, pa.RecordBatch):
        yield part.select(list(columns)) if columns is not None else part
        return
    with pq.ParquetFile(part.path, pre_buffer=False) as pf:  # no read-ahead: memory stays one row group
        offset = 0
        # use_threads=False: threaded column decoding buffers ~2x the data; workers parallelise instead
        for batch in pf.iter_batches(batch_size=batch_rows, columns=list(columns) if columns is not None else None,
                                     use_threads=False):
            if columns is not None:
                batch = batch.select(list(columns))
            n = batch.num_rows
            if part.mask is None:
                yield batch
                continue
            m = part.mask.slice(offset, n)
            offset += n
            kept = m.true_count
            if kept == n:
                yield batch
            elif kept:
                yield batch.filter(m)


def row_groups(path: str | Path) -> int:
    with pq.ParquetFile(path) as pf:
        return pf.metadata.num_row_groups


def read_row_group(path: Path, index: int, batch_rows: int = 4096) -> Iterator[pa.RecordBatch]:
    """One row group of a dataset parquet file, in small batches: the unit a worker process reads alone."""
    with pq.ParquetFile(path, pre_buffer=False) as pf:
        for batch in pf.iter_batches(batch_size=batch_rows, row_groups=[index], use_threads=False):
            yield conform(batch)


def apply_mask(parts: Sequence[Part], mask: pa.BooleanArray | pa.ChunkedArray) -> list[Part]:
    """Keep the visible rows where mask (one value per visible row, in order) is true, without reading row data."""
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks() if mask.num_chunks else pa.array([], pa.bool_())
    out: list[Part] = []
    offset = 0
    for part in parts:
        n = part.num_rows
        m = mask.slice(offset, n)
        offset += n
        kept = m.true_count
        if not kept:
            continue
        if isinstance(part, pa.RecordBatch):
            out.append(part if kept == n else part.filter(m))
        else:
            file_mask = m if part.mask is None else pc.replace_with_mask(part.mask, part.mask, m)
            out.append(ParquetPart(part.path, kept, None if kept == n and part.mask is None else file_mask))
    return out


def conform(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with exactly the dataset schema (files from other writers may differ in metadata/nullability)."""
    if batch.schema.equals(SCHEMA):
        return batch
    return pa.Table.from_batches([batch]).select(SCHEMA.names).cast(SCHEMA).combine_chunks().to_batches()[0]


def write_parquet(path: str | Path, batches: Iterable[pa.RecordBatch], *, atomic: bool = True) -> int:
    """Write batches as fixed-size row groups with fixed options. Returns rows.

    Atomic by default (a unique temp file, fsync, rename); atomic=False writes `path` directly, for callers that
    already write to a temp path they commit themselves (ingest renames only after its report is written).
    """
    path = Path(path)
    if not atomic:
        return _write_parquet(path, batches)
    with atomic_io.replacing_path(path) as tmp:
        return _write_parquet(tmp, batches)


def _write_parquet(path: Path, batches: Iterable[pa.RecordBatch]) -> int:
    with RowGroupWriter(path) as writer:
        for batch in batches:
            writer.write(batch)
    return writer.written


class RowGroupWriter:
    """A parquet file of fixed-size row groups with fixed options, fed one batch at a time (so one pass over a
    dataset can feed several files: the split stage writes every split while reading the rows once)."""

    def __init__(self, path: str | Path) -> None:
        self._writer = pq.ParquetWriter(path, SCHEMA, **PARQUET_OPTIONS)
        self._pending: list[pa.RecordBatch] = []
        self._rows = 0
        self.written = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        self._pending.append(conform(batch))
        self._rows += batch.num_rows
        while self._rows >= ROW_GROUP_ROWS:
            table = pa.Table.from_batches(self._pending, SCHEMA)
            self._writer.write_table(table.slice(0, ROW_GROUP_ROWS), row_group_size=ROW_GROUP_ROWS)
            self.written += ROW_GROUP_ROWS
            rest = table.slice(ROW_GROUP_ROWS)
            self._pending, self._rows = rest.to_batches(), rest.num_rows
            del table
            pa.default_memory_pool().release_unused()  # the written row group's buffers go back to the OS

    def __enter__(self) -> RowGroupWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            if exc_type is None and self._rows:
                self._writer.write_table(pa.Table.from_batches(self._pending, SCHEMA), row_group_size=ROW_GROUP_ROWS)
                self.written += self._rows
        finally:
            self._writer.close()


def positions(n: int) -> pa.Array:
    return pa.array(range(n), pa.int64())


def shuffle_in_memory(batches: Sequence[pa.RecordBatch], order_keys: pa.Array, batch_rows: int) -> list[pa.RecordBatch]:
    """Rows sorted by (order key, original position): a stable, seeded permutation."""
    table = pa.Table.from_batches(batches, SCHEMA)
    keys = pa.table({"h": order_keys, "pos": positions(len(order_keys))})
    order = pc.sort_indices(keys, sort_keys=[("h", "ascending"), ("pos", "ascending")])
    return table.take(order).combine_chunks().to_batches(max_chunksize=batch_rows)


def shuffle_external(
    batches: Iterable[pa.RecordBatch], order_keys: pa.Array, out_path: Path, part_rows: int | None = None,
) -> int:
    """The same order as shuffle_in_memory, with memory bounded by one partition of about `part_rows` rows.

    Pass 1 spreads rows over hash-range partitions (Arrow IPC files beside out_path); pass 2 sorts each
    partition and appends it to the parquet. Partitions are contiguous ranges of the order key, so
    concatenating the sorted partitions gives the global order.
    """
    n = len(order_keys)
    n_parts = max(1, math.ceil(n / (part_rows or SHUFFLE_PART_ROWS)))
    # partition = floor(key * n_parts / 2**64), computed on the top 32 bits so it cannot overflow
    part_of = pc.shift_right(
        pc.multiply(pc.shift_right(order_keys, pa.scalar(32, pa.uint64())), pa.scalar(n_parts, pa.uint64())),
        pa.scalar(32, pa.uint64()),
    )
    ext_schema = SCHEMA.append(pa.field("__h", pa.uint64())).append(pa.field("__pos", pa.int64()))
    # A folder unique to this call (two shuffles into one folder never collide; a killed one's is cleaned later).
    atomic_io.clean_stale(out_path)
    spill_dir = atomic_io.temp_path(out_path)
    spill_dir.mkdir(parents=True)
    try:
        return _shuffle_through(spill_dir, n_parts, ext_schema, batches, order_keys, part_of, out_path)
    finally:
        shutil.rmtree(spill_dir, ignore_errors=True)


def _shuffle_through(spill_dir: Path, n_parts: int, ext_schema: pa.Schema, batches: Iterable[pa.RecordBatch],
                     order_keys: pa.Array, part_of: pa.Array, out_path: Path) -> int:
    spill = [spill_dir / f"part{i}.arrow" for i in range(n_parts)]
    writers = [pa.ipc.new_file(str(p), ext_schema) for p in spill]
    try:
        offset = 0
        for batch in batches:
            k = batch.num_rows
            batch = conform(batch)
            ext = pa.RecordBatch.from_arrays(
                [*batch.columns, order_keys.slice(offset, k), pa.array(range(offset, offset + k), pa.int64())],
                schema=ext_schema,
            )
            where = part_of.slice(offset, k)
            offset += k
            for p in pc.unique(where).to_pylist():
                writers[p].write_batch(ext.filter(pc.equal(where, pa.scalar(p, pa.uint64()))))
    finally:
        for w in writers:
            w.close()

    def sorted_parts() -> Iterator[pa.RecordBatch]:
        for p in spill:
            with pa.memory_map(str(p)) as source:  # sort_by copies, so nothing outlives the map
                table = pa.ipc.open_file(source).read_all().sort_by([("__h", "ascending"), ("__pos", "ascending")])
            table = table.drop_columns(["__h", "__pos"])
            yield from table.to_batches()
            del table
            p.unlink()

    return write_parquet(out_path, sorted_parts())


def temp_dir(prefix: str) -> tempfile.TemporaryDirectory:
    """A directory removed when the last Dataset referring to it is garbage collected."""
    return tempfile.TemporaryDirectory(prefix=prefix)


# -- batch -> Examples, column by column ------------------------------------------------------------
# RecordBatch.to_pylist() builds a dict for every message and attachment and is the slowest step of
# iterating; reading each leaf column once and assembling the dataclasses directly is several times faster.
# The result equals records.from_row on every row (tests check this).

def _lists(arr: pa.Array) -> tuple[list[int], pa.Array]:
    """Offsets (absolute into .values, valid for sliced arrays) and the child values of a list array."""
    return arr.offsets.to_pylist(), arr.values


def _messages(sa: pa.StructArray, row_of: list[int], blobs: list[dict[str, bytes]] | None) -> list[Message | None]:
    """Messages from a struct array of the message type; row_of maps each message to its example row."""
    cols = {name: sa.field(name) for name in ("role", "content", "tool_call_id", "name", "weight", "thinking")}
    role, content, call_id, name, weight, thinking = (cols[k].to_pylist() for k in cols)
    valid = sa.is_valid().to_pylist() if sa.null_count else None
    n = len(sa)
    atts: list[tuple[Attachment, ...]] = [()] * n
    a_off, a_vals = _lists(sa.field("attachments"))
    if a_off and a_off[-1] > a_off[0]:
        mime, sha, uri, detail = (a_vals.field(k).to_pylist() for k in ("mime_type", "sha256", "uri", "detail"))
        for i in range(n):
            lo, hi = a_off[i], a_off[i + 1]
            if hi > lo:
                found = blobs[row_of[i]] if blobs is not None else {}
                atts[i] = tuple(
                    Attachment(mime[j], sha[j], found.get(sha[j]), uri[j], detail[j]) for j in range(lo, hi)
                )
    calls: list[tuple[ToolCall, ...]] = [()] * n
    t_off, t_vals = _lists(sa.field("tool_calls"))
    if t_off and t_off[-1] > t_off[0]:
        tid, tname, targs = (t_vals.field(k).to_pylist() for k in ("id", "name", "arguments"))
        for i in range(n):
            lo, hi = t_off[i], t_off[i + 1]
            if hi > lo:
                calls[i] = tuple(ToolCall(tid[j], tname[j], targs[j]) for j in range(lo, hi))
    return [
        None if valid is not None and not valid[i] else Message(
            role[i], content[i] or "", atts[i], calls[i], call_id[i], name[i], weight[i], thinking[i],
        )
        for i in range(n)
    ]


def examples_from_batch(batch: pa.RecordBatch) -> list[Example]:
    """All examples of a batch (with or without the `blobs` column), equal to records.from_row per row."""
    n = batch.num_rows
    if not n:
        return []
    names = batch.schema.names
    blobs: list[dict[str, bytes]] | None = None
    if "blobs" in names:
        b_off, b_vals = _lists(batch.column("blobs"))
        if b_off[-1] > b_off[0]:
            bsha, bdata = b_vals.field("sha256").to_pylist(), b_vals.field("data").to_pylist()
            blobs = [{bsha[j]: bdata[j] for j in range(b_off[r], b_off[r + 1])} for r in range(n)]
    m_off, m_vals = _lists(batch.column("messages"))
    row_of = [r for r in range(n) for _ in range(m_off[r + 1] - m_off[r])]
    msgs = _messages(m_vals.slice(m_off[0], m_off[-1] - m_off[0]), row_of, blobs)
    base = m_off[0]
    rows = list(range(n))
    chosen: list[Message | None] = [None] * n
    rejected: list[Message | None] = [None] * n
    if batch.column("chosen").null_count < n:
        chosen = _messages(batch.column("chosen"), rows, blobs)
    if batch.column("rejected").null_count < n:
        rejected = _messages(batch.column("rejected"), rows, blobs)
    tools, ptc, meta, group, source = (
        batch.column(k).to_pylist() for k in ("tools", "parallel_tool_calls", "metadata", "group", "source")
    )
    loads = orjson.loads
    return [
        Example(
            messages=tuple(msgs[m_off[r] - base:m_off[r + 1] - base]),
            tools=tuple(loads(tools[r])) if tools[r] else (),
            parallel_tool_calls=ptc[r],
            chosen=chosen[r],
            rejected=rejected[r],
            metadata=loads(meta[r]) if meta[r] else {},
            group=group[r],
            source=source[r],
        )
        for r in range(n)
    ]


# -- Examples -> batch, column by column (the inverse of examples_from_batch) ----------------------------
_MSG_TYPE: pa.StructType = SCHEMA.field("messages").type.value_type
_ATT_TYPE: pa.DataType = _MSG_TYPE.field("attachments").type
_CALL_TYPE: pa.DataType = _MSG_TYPE.field("tool_calls").type


def _list_of_structs(groups: list[tuple], typ: pa.ListType, fields: tuple[str, ...]) -> pa.Array:
    offsets = [0]
    items: list = []
    for g in groups:
        items.extend(g)
        offsets.append(len(items))
    struct_type = typ.value_type
    values = pa.StructArray.from_arrays(
        [pa.array([getattr(x, f) for x in items], struct_type.field(f).type) for f in fields],
        fields=list(struct_type),
    )
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, type=typ)


def _message_array(msgs: list[Message | None]) -> pa.StructArray:
    present = [m if m is not None else _EMPTY_MSG for m in msgs]
    arrays = [
        pa.array([m.role for m in present], pa.string()),
        pa.array([m.content for m in present], pa.string()),
        _list_of_structs([m.attachments for m in present], _ATT_TYPE, ("mime_type", "sha256", "uri", "detail")),
        _list_of_structs([m.tool_calls for m in present], _CALL_TYPE, ("id", "name", "arguments")),
        pa.array([m.tool_call_id for m in present], pa.string()),
        pa.array([m.name for m in present], pa.string()),
        pa.array([m.weight for m in present], pa.int8()),
        pa.array([m.thinking for m in present], pa.string()),
    ]
    mask = pa.array([m is None for m in msgs], pa.bool_()) if any(m is None for m in msgs) else None
    return pa.StructArray.from_arrays(arrays, fields=list(_MSG_TYPE), mask=mask)


_EMPTY_MSG = Message("")


def batch_from_examples(examples: Sequence[Example], ids: Sequence[str] | None = None) -> pa.RecordBatch:
    """The record batch of records.to_row for each example, built column by column (no per-row dicts)."""
    exs = list(examples)
    offsets = [0]
    flat: list[Message] = []
    blobs: list[list[tuple[str, bytes]]] = []
    for ex in exs:
        flat.extend(ex.messages)
        offsets.append(len(flat))
        found = {a.sha256: a.data for a in ex.attachments() if a.data is not None}
        blobs.append(sorted(found.items()))
    messages = pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()), _message_array(flat), type=SCHEMA.field("messages").type)
    blob_type = SCHEMA.field("blobs").type
    b_offsets = [0]
    b_items: list[tuple[str, bytes]] = []
    for b in blobs:
        b_items.extend(b)
        b_offsets.append(len(b_items))
    blob_values = pa.StructArray.from_arrays(
        [pa.array([k for k, _ in b_items], pa.string()), pa.array([v for _, v in b_items], pa.binary())],
        fields=list(blob_type.value_type),
    )
    dumps = canonical_json
    columns = [
        pa.array(list(ids) if ids is not None else [ex.id for ex in exs], pa.string()),
        pa.array([ex.kind for ex in exs], pa.string()),
        messages,
        pa.array([dumps(list(ex.tools)).decode() if ex.tools else None for ex in exs], pa.string()),
        pa.array([ex.parallel_tool_calls for ex in exs], pa.bool_()),
        _message_array([ex.chosen for ex in exs]),
        _message_array([ex.rejected for ex in exs]),
        pa.array([dumps(ex.metadata).decode() if ex.metadata else None for ex in exs], pa.string()),
        pa.array([ex.group for ex in exs], pa.string()),
        pa.array([ex.source for ex in exs], pa.string()),
        pa.ListArray.from_arrays(pa.array(b_offsets, pa.int32()), blob_values, type=blob_type),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=SCHEMA)
