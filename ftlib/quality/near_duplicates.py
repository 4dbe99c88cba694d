"""Near-duplicate examples: MinHash signatures from datasketch over word 3-grams of the training text, LSH bands,
clusters of examples whose estimated Jaccard similarity reaches the threshold.

Why it matters: a near-copy in validation of a training example inflates the validation score, and many near-copies
in train over-weight one conversation. Ingest finds the clusters; the report lists them (ids and file:line);
`keep_first` drops the later members; otherwise the split keeps every cluster on one side.

How it stays fast and flat in memory at a million examples:
- Signatures: what `datasketch.MinHash` (its default permutation scheme, its permutations) gives each example,
  computed for a whole batch of examples at once (`signatures`), in ingest's worker processes while they hold each
  chunk's rows, from n-gram hashes that ftlib.quality.text builds column-wise (no Python object per word).
- Buckets: the band layout (b bands of r rows) is datasketch's own optimum for the threshold
  (`MinHashLSH(threshold, num_perm, weights).hashranges`, weighted towards recall). Examples whose band values
  are equal are found by sorting each band column, not with `MinHashLSH`'s in-memory index: that index keeps a
  dict entry and a set per band per example (measured: ~1.8 KB per example with 5 bands, so ~2 GB and more at a
  million), while a band column costs 8 bytes per example (9 bands: 72 bytes).
- Verification: each candidate pair is checked against the threshold with the low 8 bits of every signature value
  (b-bit MinHash: 64 bytes per example), corrected for chance agreement; pairs that pass are joined into
  clusters (connected components).
- Sketches are spilled to temp files as workers return them; clustering holds one band column at a time and
  reads signature rows (memory-mapped) for candidate pairs only.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ftlib import store
from ftlib.quality import rows as rows_mod
from ftlib.quality import text as text_mod

Mode = Literal["report", "keep_first", "off"]
MODES: tuple[str, ...] = ("report", "keep_first", "off")
_BBITS_CHANCE = 1.0 / 256.0  # two unrelated 8-bit values agree this often
_VERIFY_CHUNK = 1 << 18  # candidate pairs compared at once (~16 MB of signature bytes)
_LINK_COLUMNS = ("row", "id", "cluster")


@dataclass(frozen=True)
class Settings:
    """ingest.near_duplicates and ingest.near_duplicate_threshold from params.yaml, plus fixed sketch settings."""

    mode: Mode = "report"
    threshold: float = 0.8  # estimated Jaccard similarity of the word 3-gram sets
    shingle_words: int = 3
    num_perm: int = 64
    seed: int = 1

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"near-duplicates mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"near-duplicate threshold must be above 0 and at most 1, got {self.threshold}; "
                             "0.8 is a good start (lower finds looser paraphrases)")

    def describe(self) -> dict[str, Any]:
        return {"mode": self.mode, "threshold": self.threshold, "shingle_words": self.shingle_words,
                "num_perm": self.num_perm}


LSH_WEIGHTS = (0.1, 0.9)  # false positive vs false negative weight: every candidate pair is verified afterwards,
# so the bands favour recall (64 permutations, threshold 0.8: 9 bands of 7; a pair at 0.8 becomes a candidate with
# probability 0.88, at 0.9 with 0.997; datasketch's even weights would give 0.36 and 0.85)


@cache
def _band_ranges(threshold: float, num_perm: int) -> tuple[tuple[int, int], ...]:
    """datasketch's band layout for this threshold (its optimiser, weighted towards recall)."""
    from datasketch import MinHashLSH

    return tuple(MinHashLSH(threshold=threshold, num_perm=num_perm, weights=LSH_WEIGHTS).hashranges)


@dataclass
class Sketches:
    """Per example of a batch: LSH band keys, 8-bit signature for verification, and whether it has any text."""

    bands: np.ndarray  # (n, bands) uint64
    bbits: np.ndarray  # (n, num_perm) uint8
    valid: np.ndarray  # (n,) bool

    def take(self, keep: np.ndarray) -> Sketches:
        """The rows a boolean mask keeps (ingest drops exact duplicates after sketching)."""
        return Sketches(self.bands[keep], self.bbits[keep], self.valid[keep])


def band_keys(sigs: np.ndarray, ranges: tuple[tuple[int, int], ...]) -> np.ndarray:
    """One 64-bit key per band: a polynomial hash of the band's r signature values (equal bands, equal keys)."""
    keys = np.zeros((sigs.shape[0], len(ranges)), np.uint64)
    mult = np.uint64(0x100000001B3)
    for k, (lo, hi) in enumerate(ranges):
        acc = np.full(sigs.shape[0], np.uint64(0xCBF29CE484222325))
        for j in range(lo, hi):
            acc = acc * mult + sigs[:, j].astype(np.uint64)
        keys[:, k] = acc
    return keys


_SKETCH_ROWS = 1024  # rows sketched at once: ~20 MB of text, n-gram and permutation temporaries


def sketch_batch(batch: pa.RecordBatch, settings: Settings) -> Sketches:
    """MinHash every example of a record batch over its n-gram hashes (folded to 32 bits, the input width of
    datasketch's default scheme), a slice of rows at a time so the temporaries stay small."""
    if batch.num_rows <= _SKETCH_ROWS:
        return _sketch_rows(batch, settings)
    parts = [_sketch_rows(batch.slice(lo, _SKETCH_ROWS), settings) for lo in range(0, batch.num_rows, _SKETCH_ROWS)]
    return Sketches(np.concatenate([p.bands for p in parts]), np.concatenate([p.bbits for p in parts]),
                    np.concatenate([p.valid for p in parts]))


def _sketch_rows(batch: pa.RecordBatch, settings: Settings) -> Sketches:
    n = batch.num_rows
    pieces, owner = text_mod.text_pieces(batch, with_attachments=True)
    grams, rows = text_mod.ngram_hashes(pieces, owner, settings.shingle_words)
    bounds = text_mod.row_bounds(rows, n)
    sigs = signatures(text_mod.fold32(grams), bounds, settings)
    valid = np.diff(bounds) > 0
    ranges = _band_ranges(settings.threshold, settings.num_perm)
    return Sketches(band_keys(sigs, ranges), (sigs & 0xFF).astype(np.uint8), valid)


_PHV_CELLS = 1 << 19  # permuted values held at once: 2 MB of uint32 (1 MiB L2 per core here: 3.0 us per example
# with two workers at once, against 10 us with 4 MB blocks and 3.8 / 5.4 us with 1 MB / 512 KB ones)


def _affine_scheme(m: Any) -> tuple[int, Any] | None:
    """(bit width, pre-mix function) of the MinHash's affine permutation scheme, from datasketch's private helpers;
    None under another scheme, or if a datasketch release moves them (signatures() then asks MinHash row by row)."""
    from datasketch import minhash as dm

    width = getattr(dm, "_SCHEME_WIDTHS", {}).get(getattr(m, "scheme", None))
    fmix = getattr(dm, "_fmix", None)
    return None if width is None or fmix is None else (width, fmix)


def signatures(values: np.ndarray, bounds: np.ndarray, settings: Settings) -> np.ndarray:
    """Row r's `datasketch.MinHash(num_perm, seed, hashfunc=int)` after `update_batch(values[bounds[r]:bounds[r+1]])`,
    for every row at once: the same permutations (taken from a MinHash object) and the same integer arithmetic, with
    the values of many rows permuted in one cache-sized block (permutation-major) and each row's minimum taken by
    `np.minimum.reduceat`: ~3 us per example where one `update_batch` per example cost ~25 us. Under a scheme other
    than datasketch's affine ones it asks MinHash itself, row by row. tests/test_quality.py checks both agree."""
    from datasketch import MinHash

    m = MinHash(num_perm=settings.num_perm, seed=settings.seed, hashfunc=int)
    n = len(bounds) - 1
    sigs = np.repeat(m.hashvalues[np.newaxis, :], n, axis=0)  # a row with no values keeps MinHash's initial ones
    affine = _affine_scheme(m)
    if affine is None:  # the slow, certain way
        listed, edges = values.tolist(), bounds.tolist()
        for r in range(n):
            m.clear()
            m.update_batch(listed[edges[r]:edges[r + 1]])
            sigs[r] = m.hashvalues
        return sigs
    width, fmix = affine
    a, b = (p.reshape(-1, 1) for p in m.permutations)
    hv = fmix(values.astype(m.hashvalues.dtype), width)
    rows = np.flatnonzero(np.diff(bounds) > 0)
    step = max(1, _PHV_CELLS // settings.num_perm)
    lo_row = 0
    while lo_row < len(rows):
        # whole rows whose values fit in one block of `step` values (a longer row goes alone)
        first = bounds[rows[lo_row]]
        hi_row = max(lo_row + 1, int(np.searchsorted(bounds[rows + 1], first + step, side="right")))
        block = rows[lo_row:hi_row]
        end = bounds[block[-1] + 1]
        phv = np.multiply(a, hv[first:end])  # (num_perm, values): one row per permutation
        np.add(phv, b, out=phv)
        sigs[block] = np.minimum(sigs[block], np.minimum.reduceat(phv, bounds[block] - first, axis=1).T)
        lo_row = hi_row
    return sigs


class SketchFiles:
    """Every row's sketch spilled to disk as it arrives: one file per band column, one of 8-bit signatures and
    one of has-text flags. The clustering then holds one band column at a time (8 bytes per example) and reads
    signature rows only for candidate pairs, so memory stays flat as the dataset grows.

    Ingest's workers sketch each chunk while they hold its rows (no second pass over the dataset) and the parent
    adds the sketches of the rows it keeps, in dataset order."""

    def __init__(self, settings: Settings) -> None:
        bands = len(_band_ranges(settings.threshold, settings.num_perm))  # computed before the workers fork
        self._tmp = tempfile.TemporaryDirectory(prefix="ftlib-near-duplicates-")
        folder = Path(self._tmp.name)
        self.settings = settings
        self.num_perm = settings.num_perm
        self.band_paths = [folder / f"band{k}.u64" for k in range(bands)]
        self.bbits_path = folder / "bbits.u8"
        self.valid_path = folder / "valid.bool"
        self.rows = 0

    def add(self, part: Sketches) -> None:
        for k, path in enumerate(self.band_paths):
            with path.open("ab") as fh:
                np.ascontiguousarray(part.bands[:, k]).tofile(fh)
        with self.bbits_path.open("ab") as fh:
            part.bbits.tofile(fh)
        with self.valid_path.open("ab") as fh:
            part.valid.tofile(fh)
        self.rows += len(part.valid)

    def band_columns(self) -> Iterator[np.ndarray]:
        for path in self.band_paths:
            yield np.fromfile(path, dtype=np.uint64)

    def bbits(self) -> np.ndarray:
        if not self.rows:
            return np.zeros((0, self.num_perm), np.uint8)
        return np.memmap(self.bbits_path, dtype=np.uint8, mode="r", shape=(self.rows, self.num_perm))

    def valid(self) -> np.ndarray:
        return np.fromfile(self.valid_path, dtype=bool)

    def close(self) -> None:
        self._tmp.cleanup()


def _similar(bbits: np.ndarray, a: np.ndarray, b: np.ndarray, threshold: float) -> np.ndarray:
    """Which pairs reach the threshold: agreement of the 8-bit values, corrected for chance agreement."""
    ok = np.zeros(len(a), bool)
    for lo in range(0, len(a), _VERIFY_CHUNK):
        hi = lo + _VERIFY_CHUNK
        agree = (bbits[a[lo:hi]] == bbits[b[lo:hi]]).mean(axis=1)
        ok[lo:hi] = (agree - _BBITS_CHANCE) / (1.0 - _BBITS_CHANCE) >= threshold - 1e-9
    return ok


def cluster_rows(band_columns: Iterable[np.ndarray], bbits: np.ndarray, valid: np.ndarray,
                 threshold: float) -> list[np.ndarray]:
    """Clusters of near-duplicate rows (each ascending), ordered by their first row; singletons left out.

    Rows sharing a band value are candidates (each joined to the bucket's first row); a candidate pair counts
    when its signatures reach the threshold; clusters are the connected components of those pairs.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    idx = np.flatnonzero(valid)
    left: list[np.ndarray] = []
    right: list[np.ndarray] = []
    for column in band_columns:
        keys = column[idx]
        del column
        order = np.argsort(keys, kind="stable")  # stable: within a bucket rows stay ascending
        ordered = keys[order]
        del keys
        start = np.r_[True, ordered[1:] != ordered[:-1]]
        del ordered
        if start.all():
            continue
        first = order[np.flatnonzero(start)][np.cumsum(start) - 1]
        member = ~start
        a, b = idx[first[member]], idx[order[member]]
        ok = _similar(bbits, a, b, threshold)
        left.append(a[ok])
        right.append(b[ok])
    if not left or not sum(len(x) for x in left):
        return []
    a, b = np.concatenate(left), np.concatenate(right)
    n = len(valid)
    graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    rows = np.unique(np.concatenate([a, b]))
    lab = labels[rows]
    order = np.lexsort((rows, lab))
    rows, lab = rows[order], lab[order]
    cuts = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]])
    clusters = np.split(rows, cuts[1:])
    clusters.sort(key=lambda c: int(c[0]))
    return clusters


# -- the ingest pass --------------------------------------------------------------------------------

@dataclass
class Result:
    """What ingest reports: the clusters with ids and sources, and which rows keep_first dropped."""

    settings: Settings
    clusters: list[list[tuple[int, str, str | None]]] = field(default_factory=list)  # (row, id, source)
    dropped: list[tuple[str, str | None, str]] = field(default_factory=list)  # (id, source, id of kept first)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            **self.settings.describe(),
            "cluster_count": len(self.clusters),
            "examples": sum(len(c) for c in self.clusters),
            "dropped": len(self.dropped),
            "clusters": [{"ids": [i for _, i, _ in c], "sources": [s for _, _, s in c]} for c in self.clusters],
        }
        if self.settings.mode == "keep_first":
            out["dropped_examples"] = [{"id": i, "source": s, "near_duplicate_of": f} for i, s, f in self.dropped]
        return out


def _drop_rows(path: Path, drop: np.ndarray) -> int:
    """Rewrite the dataset parquet without the given rows (same writer, so bytes depend on the rows only)."""
    keep = np.ones(pq.ParquetFile(path).metadata.num_rows, bool)
    keep[drop] = False

    def batches():
        offset = 0
        with pq.ParquetFile(path, pre_buffer=False) as pf:
            for batch in pf.iter_batches(batch_size=store.BATCH_ROWS, use_threads=False):
                n = batch.num_rows
                yield batch.filter(pa.array(keep[offset:offset + n]))
                offset += n

    tmp = path.with_name(path.name + ".kept")
    try:
        written = store.write_parquet(tmp, batches(), atomic=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return written


def links_table(clusters: list[list[tuple[int, str, str | None]]]) -> pa.Table:
    """The split's input: for every member of a cluster, its row, id and the row of the cluster's first member."""
    rows = [r for c in clusters for r, _, _ in c]
    ids = [i for c in clusters for _, i, _ in c]
    firsts = [c[0][0] for c in clusters for _ in c]
    return pa.table({"row": pa.array(rows, pa.int64()), "id": pa.array(ids, pa.string()),
                     "cluster": pa.array(firsts, pa.int64())})


def write_links(path: Path, table: pa.Table) -> None:
    pq.write_table(table, path, compression="zstd", write_statistics=False, version="2.6")


def read_links(path: Path) -> pa.Table:
    """The near-duplicate links ingest wrote; an empty table when there are none."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no near-duplicates file; it is written by `ftlib ingest` next to the "
                                "dataset (run ingest first, or leave out --near-duplicates)")
    with pq.ParquetFile(path) as pf:  # not pq.read_table: that imports pyarrow.dataset and pandas (~0.3 s)
        table = pf.read()
    if table.column_names != list(_LINK_COLUMNS):
        raise ValueError(f"{path}: not a near-duplicates file (columns {table.column_names}); re-run `ftlib ingest`")
    return table


def run(dataset: Path, settings: Settings, files: SketchFiles | None, links_out: Path | None) -> Result:
    """Find the clusters among a freshly written dataset parquet's rows (`files`: their sketches, in row order;
    None when the mode is off); keep_first rewrites the dataset without the later members.

    Writes the links file (row, id, cluster) the split stage reads: empty when nothing is left to keep together.
    """
    result = Result(settings)
    if settings.mode != "off" and files is not None:
        clusters = cluster_rows(files.band_columns(), files.bbits(), files.valid(), settings.threshold)
        if clusters:
            meta = rows_mod.ids_and_sources(rows_mod.parquet_batches(dataset), np.concatenate(clusters))
            result.clusters = [[(int(r), *meta[int(r)]) for r in c] for c in clusters]
    if settings.mode == "keep_first" and result.clusters:
        result.dropped = [(i, s, c[0][1]) for c in result.clusters for _, i, s in c[1:]]
        _drop_rows(dataset, np.array([r for c in result.clusters for r, _, _ in c[1:]], np.int64))
    if links_out is not None:
        write_links(links_out, links_table(result.clusters if settings.mode == "report" else []))
    return result
