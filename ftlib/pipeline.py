"""The data stages: ingest, split, export, validate. dvc.yaml (through the CLI) and the Prefect flows call these.

Each stage streams Arrow record batches from disk to disk, so memory stays flat as data grows, and writes
deterministic bytes (fixed order, fixed writer options, no timestamps) so two machines produce identical outputs.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from ftlib import (
    atomic,
    export_checks,
    jsonfile,
    layout,
    parallel,
    readers,
    store,
    strategies,
    targets,
    validate,
)
from ftlib import split as splitting
from ftlib.dataset import Dataset
from ftlib.errors import StageError
from ftlib.first_seen import FirstSeen
from ftlib.issues import Issue
from ftlib.quality import near_duplicates as near_dups
from ftlib.records import Example
from ftlib.validation_stage import validate_export  # the validate stage: own module so it starts quickly

Progress = Callable[[int], None]  # called with a count of items just processed


# -- ingest -------------------------------------------------------------------------------------

@dataclass
class IngestResult:
    read: int = 0
    kept: int = 0
    duplicates: int = 0
    rejected: list[Issue] = field(default_factory=list)  # the first KEEP_REJECTS; all of them are in the report
    rejected_issues: int = 0  # every reject issue, however many
    _spool: Any = field(default=None, repr=False)  # every reject, rendered for the report, in an anonymous temp file

    KEEP_REJECTS = 1000

    def add_rejects(self, issues: list[Issue]) -> None:
        """Rejects are streamed to disk as they come, so 3M rejected lines keep memory flat; the first
        KEEP_REJECTS stay in memory for printing. Messages are already redacted (Issue does it)."""
        if not issues:
            return
        if self._spool is None:
            self._spool = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the result; deleted on close)
        for issue in issues:
            if len(self.rejected) < self.KEEP_REJECTS:
                self.rejected.append(issue)
            block = orjson.dumps(issue.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
            self._spool.write((b",\n    " if self.rejected_issues else b"    ") + block.replace(b"\n", b"\n    "))
            self.rejected_issues += 1

    def write_report(self, fh: Any) -> None:
        """The report's bytes, identical to jsonfile.dumps(to_dict()) with every reject, streamed from the spool."""
        head = jsonfile.dumps({**self.to_dict(), "rejects": []})
        marker = b'\n  "rejects": [],\n'
        before, found, after = head.partition(marker)
        if not found:
            raise AssertionError("ingest report layout changed: the rejects marker is missing")
        fh.write(before)
        if not self.rejected_issues:
            fh.write(marker)
        else:
            fh.write(b'\n  "rejects": [\n')
            self._spool.seek(0)
            shutil.copyfileobj(self._spool, fh, 1 << 20)
            fh.write(b"\n  ],\n")
        fh.write(after)
    per_file: dict[str, Counter] = field(default_factory=dict)
    formats: dict[str, Counter] = field(default_factory=dict)  # per file: format name -> records read as it
    skipped_files: dict[str, str] = field(default_factory=dict)  # files in input folders that are not inputs: why
    near_duplicates: near_dups.Result | None = None

    def to_dict(self) -> dict[str, Any]:
        files = {k: {**dict(sorted(v.items())), "formats": dict(sorted(self.formats.get(k, Counter()).items()))}
                 for k, v in sorted(self.per_file.items())}
        return {
            "read": self.read,
            "kept": self.kept,
            "duplicates": self.duplicates,
            "rejected": sum(c["rejected"] for c in self.per_file.values()),
            "files": files,
            "skipped_files": dict(sorted(self.skipped_files.items())),
            "rejects": [i.to_dict() for i in self.rejected],
            **({"near_duplicates": self.near_duplicates.to_dict()} if self.near_duplicates else {}),
        }


@dataclass
class _Checked:
    """One chunk of input lines, decoded and checked (in a worker process): what survives and what was rejected."""

    batch: pa.RecordBatch | None
    ids: list[str]
    rejects: list[Issue]
    read: int
    rejected_lines: int
    formats: Counter = field(default_factory=Counter)  # format name -> records decoded as it
    unreadable: int = 0  # file-level problems (a file or its rest could not be read)
    sketches: near_dups.Sketches | None = None  # near-duplicate sketches of the batch's rows, when asked


def _check_items(items: Iterable[readers.Read], sketch: near_dups.Settings | None = None) -> _Checked:
    good: list[Example] = []
    ids: list[str] = []
    rejects: list[Issue] = []
    read = rejected_lines = unreadable = 0
    names: Counter = Counter()
    for name, item in items:
        if isinstance(item, Issue) and item.code == "unreadable_file":
            rejects.append(item)
            unreadable += 1
            continue
        read += 1
        if name:
            names[name] += 1
        errors = [item] if isinstance(item, Issue) else [
            i for i in validate.check_basic(item) if i.severity == "error"]
        if errors:
            rejects.extend(errors)
            rejected_lines += 1
            continue
        good.append(item)
        ids.append(item.id)
    batch = store.batch_from_examples(good, ids) if good else None
    sketches = near_dups.sketch_batch(batch, sketch) if sketch is not None and batch is not None else None
    return _Checked(batch, ids, rejects, read, rejected_lines, names, unreadable, sketches)


def _check_chunk(task: tuple[readers.Chunk, near_dups.Settings | None]) -> _Checked:
    chunk, sketch = task
    return _check_items(readers.decode_chunk(chunk), sketch)


def _checked_chunks(path: Path, workers: int | None, sketch: near_dups.Settings | None) -> Iterator[_Checked]:
    """Records are read in order here and decoded, checked and (when asked) sketched for near-duplicates on worker
    processes (readers.chunks)."""
    yield from parallel.ordered_map(_check_chunk, ((c, sketch) for c in readers.chunks(path)), workers)


def _unique_batches(
    paths: list[str | Path], result: IngestResult, progress: Progress | None, workers: int | None = None,
    sketches: near_dups.SketchFiles | None = None,
) -> Iterator[pa.RecordBatch]:
    """Good, first-seen examples as record batches, in input order; rejects and duplicates go into `result`, the
    near-duplicate sketches of the rows kept into `sketches`."""
    seen = FirstSeen()
    inputs = readers.scan(list(paths))
    result.skipped_files = inputs.skipped
    for path in inputs.files:
        stats = result.per_file.setdefault(path.as_posix(), Counter())
        read_as = result.formats.setdefault(path.as_posix(), Counter())
        for chunk in _checked_chunks(path, workers, sketches.settings if sketches is not None else None):
            result.read += chunk.read
            result.add_rejects(chunk.rejects)
            stats["rejected"] += chunk.rejected_lines
            read_as.update(chunk.formats)
            if chunk.unreadable:
                stats["unreadable"] += chunk.unreadable
            keep = seen.first(chunk.ids)
            kept = int(keep.sum())
            result.duplicates += len(keep) - kept
            stats["duplicates"] += len(keep) - kept
            stats["kept"] += kept
            if chunk.batch is not None and kept:
                if chunk.sketches is not None and sketches is not None:
                    sketches.add(chunk.sketches if kept == len(keep) else chunk.sketches.take(keep))
                yield chunk.batch if kept == len(keep) else chunk.batch.filter(pa.array(keep))
            if progress:
                progress(chunk.read)


def ingest(
    paths: list[str | Path], out: Path, report: Path | None = None, strict: bool = False,
    progress: Progress | None = None, workers: int | None = None,
    near_duplicates: near_dups.Settings | None = None, near_duplicates_out: Path | None = None,
) -> IngestResult:
    """Raw files -> one parquet of unique examples (first occurrence wins, in sorted file order).

    Lenient mode keeps the good rows and lists every reject with file:line in the report; strict mode
    writes the report and then fails without writing the dataset. With near_duplicates settings the report lists
    clusters of near-copies (keep_first also drops the later members) and near_duplicates_out gets the links the
    split stage uses to keep each cluster on one side.
    """
    result = IngestResult()
    # Temp names unique to this run (two ingests into one output never share one); the dataset and the report
    # are renamed into place together at the end, so a kill or a failure leaves the previous pair.
    sketches = (near_dups.SketchFiles(near_duplicates)
                if near_duplicates is not None and near_duplicates.mode != "off" else None)
    with atomic.staged() as outputs, contextlib.ExitStack() as cleanup:
        if sketches is not None:
            cleanup.callback(sketches.close)
        dataset_tmp = outputs.file(Path(out))
        result.kept = store.write_parquet(
            dataset_tmp, _unique_batches(paths, result, progress, workers, sketches), atomic=False)
        if strict and result.rejected:
            outputs.discard()  # strict: the report says why, the previous dataset stays
            if report:
                with atomic.replacing(Path(report)) as fh:
                    result.write_report(fh)
            raise StageError(
                f"{result.rejected_issues} bad line(s) rejected (strict mode); first: {result.rejected[0]}. "
                f"Fix them or drop --strict to keep the good rows."
            )
        if near_duplicates is not None:
            links = outputs.file(Path(near_duplicates_out)) if near_duplicates_out else None
            result.near_duplicates = near_dups.run(dataset_tmp, near_duplicates, sketches, links)
            _count_near_duplicates_dropped(result)
        if report:
            with open(outputs.file(Path(report)), "wb") as fh:
                result.write_report(fh)
    return result


def _count_near_duplicates_dropped(result: IngestResult) -> None:
    """keep_first: the dropped near-copies leave `kept` and are counted per file as near_duplicates."""
    dropped = result.near_duplicates.dropped if result.near_duplicates else []
    result.kept -= len(dropped)
    for _, source, _ in dropped:
        stats = result.per_file.get((source or "").rpartition(":")[0])
        if stats is not None:
            stats["kept"] -= 1
            stats["near_duplicates"] += 1


# -- split --------------------------------------------------------------------------------------

def split(
    dataset: Path, out_dir: Path, seed: int, ratios: dict[str, float], group_by: str | None = None,
    near_duplicates: Path | None = None,
) -> dict[str, Any]:
    """dataset.parquet -> <split>.parquet per split + manifest.json. Stable: a row's split is f(seed, key).

    near_duplicates (the links file ingest wrote) joins the split keys of each near-duplicate cluster, so no
    cluster straddles train and validation. Returns the manifest without its id lists (those can hold millions of
    ids: they are streamed to the file).
    """
    ds = Dataset.from_parquet(dataset)
    links = near_dups.read_links(near_duplicates) if near_duplicates is not None else None
    if links is not None and links.num_rows:
        keys = splitting.join_near_duplicates(ds.split_keys(group_by), ds.ids(), links)
        ds.split_keys = lambda _group_by=None: keys  # Dataset.split assigns by these keys
    parts = ds.split(ratios, seed=seed, group_by=group_by)
    # The parquet files and the manifest appear together: built in a temp folder, swapped in whole.
    with atomic.staged() as outputs:
        tmp = outputs.folder(Path(out_dir))
        parts.to_parquet({name: tmp / layout.split_file(name) for name in parts})
        return parts.write_manifest(tmp / layout.MANIFEST)


# -- export -------------------------------------------------------------------------------------

@dataclass
class _Encoded:
    """One row group encoded (in a worker process): per example kind, the JSONL bytes and the line count."""

    blobs: dict[str, bytes]
    counts: Counter
    issues: list[Issue]
    checks: dict[str, export_checks.LineChecks]  # per kind, when export also validates (export_checks)


def _export_row_group(
    task: tuple[str, int, str, strategies.Strategy | None, export_checks.Checker | None],
) -> _Encoded:
    """Read, shape (the target's training strategy), encode and (when asked) check one parquet row group; only
    joined bytes and findings travel back, so memory stays small."""
    path, row_group, provider, strategy, checker = task
    done = export_checks.Encoded()
    for batch in store.read_row_group(Path(path), row_group):
        examples = store.examples_from_batch(batch)
        if strategy is not None:
            examples, skipped = strategies.apply_all(examples, strategy, provider)
            done.issues.extend(skipped)
        done.add(examples, provider, checker, Path(path).stem)
        del examples, batch
        pa.default_memory_pool().release_unused()  # this batch's Arrow buffers, returned before the next is read
    parallel.trim_heap()
    parts = done.parts
    return _Encoded({k: b"".join(v) for k, v in parts.items()}, Counter({k: len(v) for k, v in parts.items()}),
                    done.issues, done.checks)


def export(splits_dir: Path, provider: str, out_dir: Path, report: Path | None = None,
           progress: Progress | None = None, workers: int | None = None,
           strategy: strategies.Strategy | None = None, checks: Path | None = None,
           base_model: str | None = None) -> dict[str, Any]:
    """Split parquet files -> JSONL per split and example kind in the provider's formats.

    Examples the format cannot hold are skipped and listed per example; information a format drops
    (losses) is listed too. Nothing disappears without a line in the report. A training strategy
    (providers.<target>.strategy) shapes each example first; examples it cannot shape are skipped the same way.
    With `checks`, every line is also validated for `base_model` as it is written (ftlib.export_checks), so
    validate_export(..., checks=) need not decode the files again.
    """
    target = targets.get(provider)
    if strategy is not None:
        strategies.check(strategy, provider)
    split_files = _split_files(Path(splits_dir))  # checked before anything is touched: a bad input keeps the export
    issues: list[Issue] = []
    files: dict[str, int] = {}
    checker = export_checks.Checker(provider, base_model) if checks else None
    if checker is not None:
        checker.prepare()  # before the workers fork: they inherit the tokenizer instead of each building it
    checked: dict[str, export_checks.FileChecks] = {}
    # Every file of the export and the report appear together: a temp folder swapped in whole, then the report.
    with atomic.staged() as outputs:
        tmp = outputs.folder(Path(out_dir))
        # Every row group of every split file in one pool: the workers stay busy across files (one pool per file
        # left one worker idle at the end of each).
        tasks = [(str(f), i, provider, strategy, checker) for f in split_files for i in range(store.row_groups(f))]
        handles: dict[str, Any] = {}
        try:
            for task, done in zip(tasks, parallel.ordered_map(_export_row_group, tasks, workers), strict=True):
                split_name = Path(task[0]).stem
                issues.extend(done.issues)
                for kind, blob in done.blobs.items():
                    name = layout.export_file(split_name, kind)
                    fh = handles.get(name) or handles.setdefault(name, (tmp / name).open("wb"))
                    fh.write(blob)
                    files[name] = files.get(name, 0) + done.counts[kind]
                    if checker is not None:
                        fc = checked.get(name) or checked.setdefault(name, export_checks.FileChecks(
                            (Path(out_dir) / name).as_posix(), checker.new_report(split_name).report))
                        fc.add(blob, done.counts[kind], done.checks.get(kind))
                lines = sum(done.counts.values())
                del done
                parallel.trim_heap()  # the chunk's ~16 MB of lines: freed heap pages go back to the OS
                if progress:
                    progress(lines)
        finally:
            for fh in handles.values():
                fh.close()
        result = {
            "provider": provider,
            "formats": {kind: f.name if f else None for kind, f in sorted(target.formats.items())},
            **({"strategy": strategy.describe()} if strategy is not None else {}),
            "files": dict(sorted(files.items())),
            "skipped": sum(1 for i in issues if i.severity == "error"),
            "issues": [i.to_dict() for i in issues],
        }
        if report:
            outputs.write_bytes(Path(report), jsonfile.dumps(result))
        if checks:
            outputs.write_bytes(Path(checks), jsonfile.dumps(
                export_checks.checks_document(provider, base_model, Path(out_dir), checked)))
    return result


def _split_files(splits_dir: Path) -> list[Path]:
    """The split parquet files to export; a missing, empty or foreign folder is refused with the fix."""
    if not splits_dir.is_dir():
        raise FileNotFoundError(f"{splits_dir}: no such folder; export reads the folder `ftlib split` wrote "
                                f"(e.g. {layout.SPLITS}): run `ftlib split` first or fix the path")
    found = sorted(splits_dir.glob("*.parquet"))
    if not found:
        raise FileNotFoundError(f"{splits_dir}: no split .parquet files in this folder; run `ftlib split DATASET "
                                f"--out {splits_dir}` first (the existing export was left as it was)")
    return found


__all__ = [
    "IngestResult", "StageError", "export", "ingest", "split",
    "validate_export",
]
