"""The quality stage: leakage of held-out splits and eval files into train, and per-split length and turn-count
distributions with their outliers. One pass over the split files; every output appears together.

Outputs (in the report folder, reports/quality by default; names in ftlib.layout):
- leakage.json: per held-out set (each split but train, each eval file) the contaminated examples with their
  overlap, id, file:line and one training example they share n-grams with;
- outliers.json: per split the token and turn distributions, Tukey fences and the outliers (id, file:line, value);
- tokens.csv, turns.csv: the distributions per split, for `dvc plots show`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ftlib import atomic, jsonfile, layout
from ftlib.quality import leakage, outliers
from ftlib.quality import rows as rows_mod
from ftlib.quality import text as text_mod

TEXT_COLUMNS = ("messages", "chosen", "rejected")
TRAIN = "train"


@dataclass
class _HeldOut:
    name: str  # split name, or the eval file's path
    start: int  # first row in the held-out spill
    rows: int
    batches: Callable[[Sequence[str]], Iterator[pa.RecordBatch]]  # the set's rows, only the given columns
    unreadable: int = 0  # eval lines that could not be read


def _eval_set(path: Path) -> tuple[Callable[[Sequence[str]], Iterator[pa.RecordBatch]], int]:
    from ftlib.dataset import Dataset

    if not path.exists():
        raise FileNotFoundError(f"{path}: eval set not found; set quality.eval to a file or folder ftlib can read "
                                "(any format `ftlib ingest` reads), or to \"\" to check the splits only")
    ds = Dataset.from_jsonl(path, strict=False)
    return (lambda columns: ds.batches(list(columns))), len(ds.rejects)


def _listed(found: dict[int, tuple[str, str | None]], rows: np.ndarray, limit: int) -> list[tuple[int, str, Any]]:
    return [(int(r), *found[int(r)]) for r in rows[:limit]]


def run(splits_dir: Path, out_dir: Path, eval_paths: Sequence[Path] = (),
        leak: leakage.Settings | None = None, outl: outliers.Settings | None = None) -> dict[str, Any]:
    """Check the split folder (and eval files) and write the quality reports; returns a short summary."""
    leak = leak or leakage.Settings()
    outl = outl or outliers.Settings()
    files = sorted(Path(splits_dir).glob("*.parquet"))
    train_file = Path(splits_dir) / layout.split_file(TRAIN)
    if train_file not in files:
        raise FileNotFoundError(f"{splits_dir}: no {train_file.name}; the quality stage reads the folder "
                                "`ftlib split` wrote (run it first, or fix the path)")
    values: dict[str, dict[str, np.ndarray]] = {}
    held: list[_HeldOut] = []
    with leakage.Workspace() as ws:
        train_rows = 0
        for f in files:
            chars: list[np.ndarray] = []
            turns: list[np.ndarray] = []
            spill = ws.train if f == train_file else ws.held
            offset = 0 if f == train_file else sum(h.rows for h in held)
            n = 0
            for batch in rows_mod.parquet_batches(f, TEXT_COLUMNS):
                chars.append(text_mod.char_lengths(batch))
                turns.append(text_mod.assistant_turns(batch))
                n += leakage.spill_batches(spill, [batch], leak.ngram, offset + n)
            values[f.stem] = {"tokens": outliers.estimate_tokens(np.concatenate(chars or [np.zeros(0, np.int64)])),
                              "turns": np.concatenate(turns or [np.zeros(0, np.int64)])}
            if f == train_file:
                train_rows = n
            else:
                held.append(_HeldOut(f.stem, offset, n, lambda cols, f=f: rows_mod.parquet_batches(f, cols)))
        for path in eval_paths:
            batches, unreadable = _eval_set(Path(path))
            offset = sum(h.rows for h in held)
            n = leakage.spill_batches(ws.held, batches(TEXT_COLUMNS), leak.ngram, offset)
            held.append(_HeldOut(Path(path).as_posix(), offset, n, batches, unreadable))
        ws.train.close()
        ws.held.close()
        train_grams = ws.train.grams
        overlap = leakage.join(ws.train, ws.held, sum(h.rows for h in held))

    share = overlap.share
    contaminated = {h.name: h.start + np.flatnonzero(share[h.start:h.start + h.rows] >= leak.threshold)
                    for h in held}
    listed = {k: v[:outl.max_listed] for k, v in contaminated.items()}
    train_refs = np.concatenate([overlap.train_row[v] for v in listed.values()] or [np.zeros(0, np.int64)])
    train_meta = rows_mod.ids_and_sources(rows_mod.parquet_batches(train_file), train_refs)
    sets: dict[str, Any] = {}
    for h in held:
        rows = listed[h.name]
        meta = rows_mod.ids_and_sources(h.batches(rows_mod.ID_COLUMNS), rows - h.start)
        entries = []
        for r in rows.tolist():
            ex_id, source = meta[r - h.start]
            t_id, t_source = train_meta[int(overlap.train_row[r])]
            entries.append({"id": ex_id, "source": source, "overlap": round(float(share[r]), 4),
                            "train_id": t_id, "train_source": t_source})
        hs = share[h.start:h.start + h.rows]
        sets[h.name] = {
            "examples": h.rows, "contaminated": len(contaminated[h.name]),
            "mean_overlap": round(float(hs.mean()), 4) if h.rows else 0.0,
            "max_overlap": round(float(hs.max()), 4) if h.rows else 0.0,
            **({"unreadable_lines": h.unreadable} if h.unreadable else {}),
            "listed": len(entries), "examples_contaminated": entries,
        }
    leakage_report = {"ngram": leak.ngram, "threshold": leak.threshold,
                      "train": {"examples": train_rows, "ngrams": train_grams},
                      "contaminated": sum(len(v) for v in contaminated.values()), "held_out": sets}

    dist, found = outliers.summary(values, outl.iqr_factor)
    for (split, metric), rows in found.items():
        f = Path(splits_dir) / layout.split_file(split)
        shown = rows[:outl.max_listed]
        meta = rows_mod.ids_and_sources(rows_mod.parquet_batches(f), shown)
        dist[split][metric]["examples_outlying"] = [
            {"id": meta[int(r)][0], "source": meta[int(r)][1], metric: int(values[split][metric][r])}
            for r in shown.tolist()]
    outliers_report = {"tokens": f"estimated: characters / {outliers.CHARS_PER_TOKEN}",
                       "iqr_factor": outl.iqr_factor, "splits": dist}

    out_dir = Path(out_dir)
    with atomic.staged() as outputs:
        outputs.write_bytes(out_dir / layout.LEAKAGE_REPORT, jsonfile.dumps(leakage_report))
        outputs.write_bytes(out_dir / layout.OUTLIERS_REPORT, jsonfile.dumps(outliers_report))
        outputs.write_bytes(out_dir / layout.TOKENS_PLOT, outliers.histogram_csv("tokens", {
            k: v["tokens"] for k, v in values.items()}).encode())
        outputs.write_bytes(out_dir / layout.TURNS_PLOT, outliers.histogram_csv("turns", {
            k: v["turns"] for k, v in values.items()}).encode())
    return {"contaminated": {k: len(v) for k, v in contaminated.items()},
            "outliers": {split: {m: dist[split][m]["outliers"] for m in outliers.METRICS} for split in dist}}


__all__ = ["run"]
