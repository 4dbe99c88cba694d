"""Dataset: the user-facing collection of examples, held as Arrow record batches (or streamed from parquet).

Examples are never kept as a Python list: rows are buffered and packed into record batches, parquet-backed
datasets stream batch by batch, and dedupe/split produce row masks over the same files instead of copies.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any, overload

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ftlib import atomic, formats, readers, store, targets, tokens, validate
from ftlib import split as splitting
from ftlib.issues import Issue
from ftlib.records import Example

DEFAULT_RATIOS: dict[str, float] = {"train": 0.9, "validation": 0.1}
LIGHT_COLUMNS: list[str] = [n for n in store.SCHEMA.names if n != "blobs"]  # everything but attachment bytes


class DatasetError(ValueError):
    """Loading or exporting failed; `issues` holds every problem (each str() is "file:line: ...")."""

    def __init__(self, message: str, issues: Sequence[Issue] = ()) -> None:
        super().__init__(message)
        self.issues = list(issues)


@dataclass
class ExportResult:
    """What export_jsonl wrote and what it could not write (errors: skipped examples; warnings: dropped fields).

    It is path-like (os.fspath gives the file written), as the seed library's export_jsonl returned the path."""

    path: Path
    written: int
    issues: list[Issue] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return sum(1 for i in self.issues if i.severity == "error")

    def __fspath__(self) -> str:
        return os.fspath(self.path)


def _issue_line(issue: Issue) -> str:
    where = issue.source or (issue.example_id[:12] if issue.example_id else "?")
    fld = f"{issue.field}: " if issue.field else ""
    return f"{where}: {fld}{issue.message}"


class Dataset:
    """An ordered collection of examples, stored as Arrow record batches (ftlib.records.arrow_schema()).

    Build one with Dataset(examples), add/extend, from_pairs, from_jsonl or from_parquet. Operations that
    reorder or select (shuffle, split, dedupe) return new Datasets and leave this one unchanged.
    """

    def __init__(self, examples: Iterable[Example] = (), *, batch_rows: int = store.BATCH_ROWS) -> None:
        self.batch_rows = batch_rows
        self.rejects: list[Issue] = []  # lines from_jsonl(strict=False) could not read
        self.skipped: list[Issue] = []  # files in a folder given to from_jsonl that are not input files (warnings)
        self._parts: list[store.Part] = []
        self._pending: list[Example] = []  # at most batch_rows, then packed into a record batch
        self._keep: list[object] = []  # temp directories holding files our parts read from
        self.extend(examples)

    def _derive(self, parts: list[store.Part], keep: Sequence[object] = ()) -> Dataset:
        ds = Dataset(batch_rows=self.batch_rows)
        ds._parts = parts
        ds._keep = [*self._keep, *keep]
        return ds

    # -- building -------------------------------------------------------------------------------
    def add(self, ex: Example) -> None:
        if not isinstance(ex, Example):
            raise TypeError(f"Dataset.add takes an Example, got {type(ex).__name__}; build one with Example.from_pair")
        # a snapshot, so later changes to the caller's object (group, metadata) do not leak into stored data
        self._pending.append(replace(ex, metadata=dict(ex.metadata)) if ex.metadata else replace(ex))
        if len(self._pending) >= self.batch_rows:
            self._flush()

    def extend(self, examples: Iterable[Example]) -> None:
        for ex in examples:
            self.add(ex)

    def _flush(self) -> None:
        if self._pending:
            self._parts.append(store.batch_from_examples(self._pending))
            self._pending = []

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]], system: str | None = None) -> Dataset:
        """Single-turn examples from (user, assistant) text pairs, with an optional shared system prompt."""
        return cls(Example.from_pair(user, assistant, system=system) for user, assistant in pairs)

    @classmethod
    def from_jsonl(
        cls, path: str | Path, fmt: str | None = None, strict: bool = True, *, provider: str | None = None,
    ) -> Dataset:
        """Read an input file, or every input file under a folder; the shape is detected per record.

        Any file ftlib reads: JSON Lines (.jsonl/.ndjson, also gzip or zstd compressed), .json documents (an
        array of records; read whole), CSV pairs and parquet (e.g. a Hugging Face dataset's files), holding any
        known shape (README "Formats"; ftlib.formats.all_formats()). Files in a folder that are not inputs are
        listed in `.skipped` (with a warning). `fmt` forces one format name; `provider` (the seed library's argument:
        the target the file was exported for, e.g. a name from `ftlib targets`) tries that target's formats
        first and then detects as usual; "generic" means plain detection. A target name given as `fmt` is taken
        as `provider`. strict=True raises DatasetError listing every bad record as file:line: reason;
        strict=False keeps the good examples and puts the bad records in `.rejects`.
        """
        if fmt is not None and fmt in targets.names():
            fmt, provider = None, fmt if provider is None else provider
        prefer: tuple[str, ...] = ()
        if provider is not None and provider != "generic":
            prefer = tuple(f.name for f in targets.get(provider).formats.values() if f is not None)
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file or directory")
        inputs = readers.scan([p])
        ds = cls()
        ds.skipped = [Issue("not_an_input", "warning", why, source=name) for name, why in inputs.skipped.items()]
        if ds.skipped:
            warnings.warn(f"{len(ds.skipped)} file(s) in {p} were not read (see .skipped), e.g. "
                          f"{ds.skipped[0].source}: {ds.skipped[0].message}", stacklevel=2)
        for f in inputs.files:
            for item in readers.read_file(f, fmt, prefer):
                if isinstance(item, Issue):
                    ds.rejects.append(item)
                else:
                    ds.add(item)
        if strict and ds.rejects:
            lines = "\n".join(f"  {_issue_line(i)}" for i in ds.rejects)
            raise DatasetError(
                f"{len(ds.rejects)} bad line(s) in {p}:\n{lines}\n"
                "Fix these lines, or load with strict=False to keep the good examples (bad ones go to .rejects).",
                ds.rejects,
            )
        return ds

    @classmethod
    def from_parquet(cls, path: str | Path) -> Dataset:
        """A dataset streamed from a parquet file written by to_parquet or `ftlib ingest` (nothing is loaded yet).

        Parquet files of training records in another layout (a Hugging Face dataset's) are inputs: from_jsonl."""
        try:
            part = store.open_parquet(path)
        except ValueError as e:
            raise ValueError(f"{e}; to read a parquet file of training records in another layout (e.g. a Hugging "
                             "Face dataset's), use Dataset.from_jsonl(path) or `ftlib ingest`") from None
        ds = cls()
        ds._parts = [part]
        return ds

    # -- reading --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return sum(p.num_rows for p in self._parts) + len(self._pending)

    def __repr__(self) -> str:
        return f"Dataset({len(self)} examples)"

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        """The rows as Arrow record batches; pass columns (e.g. LIGHT_COLUMNS) to skip reading the rest."""
        self._flush()
        for part in self._parts:
            yield from store.iter_part(part, columns, self.batch_rows)

    def iter_examples(self, with_blobs: bool = True) -> Iterator[Example]:
        """Examples batch by batch; with_blobs=False leaves attachment bytes unread (attachments keep sha256/URI)."""
        for batch in self.batches(None if with_blobs else LIGHT_COLUMNS):
            yield from store.examples_from_batch(batch)

    def __iter__(self) -> Iterator[Example]:
        return self.iter_examples()

    @overload
    def __getitem__(self, index: int) -> Example: ...
    @overload
    def __getitem__(self, index: slice) -> list[Example]: ...
    def __getitem__(self, index: int | slice) -> Example | list[Example]:
        """ds[i] (negative counts from the end) or ds[a:b] as a list; reads batches up to the row, nothing more."""
        n = len(self)
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            if step != 1:
                return [self[i] for i in range(start, stop, step)]
            return list(islice(self.iter_examples(), start, max(start, stop)))
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} examples")
        for batch in self.batches():
            if i < batch.num_rows:
                return store.examples_from_batch(batch.slice(i, 1))[0]
            i -= batch.num_rows
        raise IndexError(index)  # unreachable: len() counted these rows

    def ids(self) -> pa.ChunkedArray:
        return pa.chunked_array([b.column(0) for b in self.batches(["id"])], pa.string())

    # -- selecting and reordering ------------------------------------------------------------------
    def dedupe(self) -> Dataset:
        """One example per id, the first occurrence winning (ids hash the training content only)."""
        n = len(self)
        ids = self.ids()
        pos = store.positions(n)
        firsts = pa.table({"id": ids, "pos": pos}).group_by("id").aggregate([("pos", "min")]).column("pos_min")
        if len(firsts) == n:
            return self._derive(list(self._parts))
        return self._derive(store.apply_mask(self._parts, pc.is_in(pos, value_set=firsts)))

    def shuffle(self, seed: int | None = 0) -> Dataset:
        """A new dataset ordered by sha256(seed, id): the same order on every machine, whatever the input order.

        Parquet-backed data is shuffled through temporary files, so memory stays bounded. seed=None is seed 0:
        ftlib never shuffles differently from run to run.
        """
        seed = 0 if seed is None else seed
        self._flush()
        order = splitting.hash64_array(seed, self.ids())
        if all(isinstance(p, pa.RecordBatch) for p in self._parts):
            return self._derive(store.shuffle_in_memory(self._parts, order, self.batch_rows))  # type: ignore[arg-type]
        tmp = store.temp_dir("ftlib-shuffle-")
        out = Path(tmp.name) / "shuffled.parquet"
        store.shuffle_external(self.batches(), order, out)
        return self._derive([store.open_parquet(out)], keep=[tmp])

    def split_keys(self, group_by: str | None = None) -> pa.Array:
        """Per row, the key that decides its split: "group:<value>" for grouped rows, else the example id.

        group_by is "group" (the group field) or a metadata key. Duplicates (same id) take the key of their
        first occurrence, so a duplicate can never land in another split than the original.
        """
        ids = self.ids().combine_chunks()
        if not group_by:
            return ids
        if group_by == "group":
            groups = pa.chunked_array([b.column(0) for b in self.batches(["group"])], pa.string()).combine_chunks()
            keys = pc.coalesce(pc.binary_join_element_wise("group:", groups, ""), ids)
        else:
            values = []
            for b in self.batches(["id", "metadata"]):
                for i, m in zip(b.column(0).to_pylist(), b.column(1).to_pylist(), strict=True):
                    v = orjson.loads(m).get(group_by) if m else None
                    values.append(f"group:{v}" if v is not None else i)
            keys = pa.array(values, pa.string())
        if _has_duplicates(ids):
            pos = store.positions(len(ids))
            firsts = pa.table({"id": ids, "pos": pos}).group_by("id").aggregate([("pos", "min")])
            first_key = pc.take(keys, firsts.column("pos_min"))
            keys = pc.take(first_key, pc.index_in(ids, value_set=firsts.column("id")))
        return keys

    @overload
    def split(self, ratios: float, seed: int | None = 0, group_by: str | None = None) -> SplitPair: ...
    @overload
    def split(self, ratios: Mapping[str, float] | str | None = None, seed: int | None = 0,
              group_by: str | None = None, *, train_ratio: float | None = None) -> Splits | SplitPair: ...
    def split(
        self, ratios: Mapping[str, float] | str | float | None = None, seed: int | None = 0,
        group_by: str | None = None, *, train_ratio: float | None = None,
    ) -> Splits | SplitPair:
        """Stable, seeded, leakage-safe split: a row's split depends only on (seed, group or id).

        With ratios as a mapping or text ("train=0.9,validation=0.1"), returns {name: Dataset} in ratio order.
        With one number (the seed library's form: `train, val = ds.split(0.8, seed=42)`, or `train_ratio=0.8`),
        returns the (train, validation) pair. Either result has `.manifest` (counts, achieved ratios, ids).
        Splits are hash buckets, not a shuffled cut: the achieved ratio is close to the asked one on large data
        and can be off on a handful of examples; adding data never moves an old example.
        """
        if train_ratio is not None:
            if ratios is not None:
                raise TypeError("pass the ratios or train_ratio=, not both")
            ratios = train_ratio
        seed = 0 if seed is None else seed
        if isinstance(ratios, int | float) and not isinstance(ratios, bool):
            if not 0 < ratios < 1:
                raise ValueError(f"train_ratio must be strictly between 0 and 1, got {ratios}; e.g. 0.8 keeps 80% "
                                 "for training and 20% for validation")
            return SplitPair(self.split({"train": float(ratios), "validation": 1.0 - float(ratios)}, seed, group_by))
        ratios = splitting.parse_ratios(ratios) if isinstance(ratios, str) else splitting.check_ratios(
            DEFAULT_RATIOS if ratios is None else ratios)
        self._flush()
        idx = splitting.assign_indices(seed, self.split_keys(group_by), ratios)
        out = Splits(seed=seed, ratios=ratios, group_by=group_by, ids=self.ids(), indices=idx, source=self)
        for i, name in enumerate(ratios):
            out[name] = self._derive(store.apply_mask(self._parts, pc.equal(idx, pa.scalar(i, pa.int8()))))
        return out

    # -- writing ----------------------------------------------------------------------------------
    def to_parquet(self, path: str | Path) -> int:
        """Write all rows (attachment bytes included); the same rows always give the same bytes."""
        return store.write_parquet(path, self.batches())

    def _encode(self, target: str) -> Iterator[bytes | Issue]:
        """One JSONL line (bytes) per writable example, and an Issue for each one skipped or written lossily."""
        for item in formats.encode_lines(self, target):
            yield item if isinstance(item, Issue) else item[1]

    def kind_counts(self) -> dict[str, int]:
        """{"sft": n, "preference": m}, read from the kind column alone."""
        counts = Counter({"sft": 0, "preference": 0})
        for b in self.batches(["kind"]):
            counts.update(b.column(0).to_pylist())
        return dict(counts)

    def of_kind(self, kind: str) -> Dataset:
        """Only the SFT ("sft") or only the preference ("preference") examples, in order."""
        if kind not in ("sft", "preference"):
            raise ValueError(f"kind must be 'sft' or 'preference', got {kind!r}")
        self._flush()
        column = pa.chunked_array([b.column(0) for b in self.batches(["kind"])], pa.string())
        return self._derive(store.apply_mask(self._parts, pc.equal(column, kind)))

    def _one_file(self, target: str, kind: str | None, where: str) -> Dataset:
        """What one output file gets: the chosen kind, or everything after refusing a mix of kinds for a target
        that writes both (a fine-tuning file holds one kind; every provider rejects a mixed file)."""
        if kind is not None:
            return self.of_kind(kind)
        if target not in targets.names() or not all(targets.get(target).formats.get(k) for k in ("sft", "preference")):
            return self  # one format, one kind: examples of the other kind are reported one by one
        counts = self.kind_counts()
        if counts["sft"] and counts["preference"]:
            raise DatasetError(
                f"the dataset holds {counts['sft']} SFT and {counts['preference']} preference example(s); {where} "
                f"would mix them, and a {target} fine-tuning file holds one kind. Pass kind=\"sft\" for the "
                "supervised file and kind=\"preference\" for the preference file (another path, e.g. "
                "train.preference.jsonl), or split them first with ds.of_kind(...).")
        return self

    @staticmethod
    def _target(fmt_or_provider: str | None, provider: str | None) -> str:
        if fmt_or_provider is not None and provider is not None and fmt_or_provider != provider:
            raise TypeError(f"two targets given ({fmt_or_provider!r} and provider={provider!r}); pass one")
        target = provider or fmt_or_provider
        if not target:
            raise TypeError(f"name the target or format to write, e.g. provider={targets.names()[0]!r} "
                            f"(targets: {', '.join(targets.names())})")
        return target

    def to_jsonl(self, fmt_or_provider: str | None = None, *, provider: str | None = None,
                 kind: str | None = None) -> str:
        """The whole dataset as JSONL text for a target or format; raises DatasetError if any example cannot be
        written, or if a target that writes both kinds would get SFT and preference examples (pass kind=)."""
        target = self._target(fmt_or_provider, provider)
        data = self._one_file(target, kind, "one JSONL text")
        lines: list[bytes] = []
        errors: list[Issue] = []
        losses: list[Issue] = []
        for item in data._encode(target):
            if isinstance(item, bytes):
                lines.append(item)
            else:
                (errors if item.severity == "error" else losses).append(item)
        if errors:
            listed = "\n".join(f"  {_issue_line(i)}" for i in errors)
            raise DatasetError(
                f"{len(errors)} example(s) cannot be written as {target}:\n{listed}\n"
                "Use export_jsonl to write the others and get this list back.", errors)
        if losses:
            warnings.warn(f"{len(losses)} example(s) lost fields in {target}, e.g. {_issue_line(losses[0])}",
                          stacklevel=2)
        return b"".join(lines).decode()

    def to_jsonl_string(self, provider: str | None = None, *, kind: str | None = None) -> str:
        """The seed library's name for to_jsonl(provider)."""
        return self.to_jsonl(provider=provider, kind=kind)

    def export_jsonl(
        self, path: str | Path, fmt_or_provider: str | None = None, overwrite: bool = False, *,
        provider: str | None = None, kind: str | None = None,
    ) -> ExportResult:
        """Write JSONL for a target (`provider=`, the seed library's name, or positionally) or a format name.

        One file holds one kind: for a target that writes both, a dataset holding SFT and preference examples
        is refused (nothing is written) unless kind="sft" or kind="preference" picks the examples for this file.
        Examples the format cannot hold are skipped and returned as issues. The file appears whole or not at all.
        """
        target = self._target(fmt_or_provider, provider)
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
        data = self._one_file(target, kind, f"writing {path.name}")
        result = ExportResult(path, 0)
        with atomic.replacing(path) as f:  # a temp name unique to this call: two writers of one path never share it
            for item in data._encode(target):
                if isinstance(item, bytes):
                    f.write(item)
                    result.written += 1
                else:
                    result.issues.append(item)
        return result

    # -- checking -----------------------------------------------------------------------------------
    def validate(self, provider: str, base_model: str | None = None, split: str = "train") -> list[Issue]:
        """Every problem the provider would reject or silently mangle (see ftlib.validate); `split` names
        the role of this data (train/validation), which changes the dataset-level minimums."""
        return list(validate.check_dataset(iter(self), provider, base_model, split))

    def summary(self, provider: str | None = None, base_model: str | None = None) -> dict[str, Any]:
        """Counts a user checks before paying for a job. A turn is one assistant reply (a preference pair counts 1).

        Tokens are counted as `provider` bills them; by default with the first target whose counts are exact."""
        provider = provider or targets.exact_counter()
        n = messages = with_attachments = with_tools = 0
        kinds: Counter[str] = Counter()
        turns: list[int] = [0, 0, 0]  # min, max, total
        toks: list[int] = [0, 0]  # max, total
        for ex in self:
            kind = ex.kind
            kinds[kind] += 1
            t = sum(1 for m in ex.messages if m.role == "assistant") + (kind == "preference")
            turns = [t, t, t] if n == 0 else [min(turns[0], t), max(turns[1], t), turns[2] + t]
            msgs = list(ex.all_messages())
            messages += len(msgs)
            with_attachments += any(m.attachments for m in msgs)
            with_tools += any(m.tool_calls for m in msgs)
            c = tokens.count_tokens(ex, provider, base_model)
            toks = [max(toks[0], c), toks[1] + c]
            n += 1
        return {
            "examples": n,
            "by_kind": dict(sorted(kinds.items())),
            "messages": messages,
            # the seed library's names for the same counts (avg_turns_per_example is messages per example there)
            "total_messages": messages,
            "avg_turns_per_example": round(messages / max(n, 1), 2),
            "multimodal_examples": with_attachments,
            "turns": {"min": turns[0], "mean": round(turns[2] / n, 3) if n else 0, "max": turns[1]},
            "with_attachments": with_attachments,
            "with_tool_calls": with_tools,
            "tokens": {
                "provider": provider, "base_model": base_model,
                "total": toks[1], "mean": round(toks[1] / n, 3) if n else 0, "max": toks[0],
            },
        }


def _has_duplicates(ids: pa.Array) -> bool:
    """Sort-based: at 1M ids a hash-based count_distinct costs ~220 MB of hash table, a sort ~5 MB."""
    if len(ids) < 2:
        return False
    ordered = pc.take(ids, pc.sort_indices(ids))
    return bool(pc.any(pc.equal(ordered.slice(1), ordered.slice(0, len(ordered) - 1))).as_py())


class Splits(dict[str, Dataset]):
    """{split name: Dataset} plus the manifest describing how the split was made."""

    def __init__(
        self, *, seed: int, ratios: Mapping[str, float], group_by: str | None, ids: pa.ChunkedArray, indices: pa.Array,
        source: Dataset,
    ) -> None:
        super().__init__()
        self.seed, self.ratios, self.group_by, self._source = seed, dict(ratios), group_by, source
        self._ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
        self._indices = indices
        self._manifest: dict[str, Any] | None = None

    def ids_by_split(self) -> dict[str, pa.Array]:
        """The example ids of each split, as Arrow arrays (no Python objects per id)."""
        return {name: self._ids.filter(pc.equal(self._indices, pa.scalar(i, pa.int8())))
                for i, name in enumerate(self.ratios)}

    @property
    def manifest(self) -> dict[str, Any]:
        """seed, ratios, group_by, counts, achieved and sorted ids per split (deterministic, no timestamps)."""
        if self._manifest is None:
            self._manifest = splitting.build_manifest(self.seed, self.ratios, self.group_by, self.ids_by_split())
        return self._manifest

    def write_manifest(self, path: str | Path) -> dict[str, Any]:
        """Stream the manifest to a file (same bytes as manifest_bytes(manifest)); returns it without ids."""
        return splitting.write_manifest(Path(path), self.seed, self.ratios, self.group_by, self.ids_by_split())

    def to_parquet(self, paths: Mapping[str, str | Path]) -> None:
        """Every split's parquet file in one pass over the dataset's rows (the same bytes as each split's
        Dataset.to_parquet, which would read every row once per split)."""
        with contextlib.ExitStack() as stack:
            writers = [stack.enter_context(store.RowGroupWriter(paths[name])) for name in self.ratios]
            offset = 0
            for batch in self._source.batches():
                n = batch.num_rows
                idx = self._indices.slice(offset, n)
                offset += n
                for i, writer in enumerate(writers):
                    mask = pc.equal(idx, pa.scalar(i, pa.int8()))
                    kept = mask.true_count
                    if kept:
                        writer.write(batch if kept == n else batch.filter(mask))


class SplitPair(tuple):
    """(train, validation), what `ds.split(0.8, seed=42)` returns (the seed library's shape), with the manifest."""

    splits: Splits

    def __new__(cls, splits: Splits) -> SplitPair:
        pair = super().__new__(cls, (splits["train"], splits["validation"]))
        pair.splits = splits
        return pair

    @property
    def train(self) -> Dataset:
        return self[0]

    @property
    def validation(self) -> Dataset:
        return self[1]

    @property
    def manifest(self) -> dict[str, Any]:
        return self.splits.manifest

    def write_manifest(self, path: str | Path) -> dict[str, Any]:
        return self.splits.write_manifest(path)


__all__ = ["DEFAULT_RATIOS", "Dataset", "DatasetError", "ExportResult", "SplitPair", "Splits"]
