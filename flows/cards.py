"""Markdown and table content for the Prefect artifacts, built from the tracked reports (pure readers, no writes).

Timestamps and run ids belong here, in Prefect's UI, never in a tracked file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from ftlib import layout, targets
from ftlib.digest import sha256_file
from ftlib.jobs.ledger import Ledger

# Where a user looks at jobs when a record carries no job-specific link.


def read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    if not rows:
        return ["_none_"]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return out


def dataset_card(project: Path, run_note: str = "") -> str:
    """Splits, file hashes, validation and cost per export target, from build/ and reports/."""
    lines = ["# Dataset card", ""]
    if run_note:
        lines += [run_note, ""]
    dataset = project / layout.DATASET
    ingest = read_json(project / layout.INGEST_REPORT) or {}
    if dataset.is_file():
        lines.append(f"`build/dataset.parquet` sha256 `{sha256_file(dataset)}`: read {ingest.get('read')}, "
                     f"kept {ingest.get('kept')}, duplicates {ingest.get('duplicates')}, "
                     f"rejected {ingest.get('rejected')} (see reports/ingest.json)")
        lines.append("")
    manifest = read_json(project / layout.SPLITS / layout.MANIFEST) or {}
    lines += [f"## Splits (seed {manifest.get('seed')}, group by {manifest.get('group_by')})", ""]
    achieved = manifest.get("achieved") or {}
    lines += _table(["split", "examples", "share"],
                    [[k, v, achieved.get(k)] for k, v in (manifest.get("counts") or {}).items()])
    export_root = project / layout.EXPORTS
    providers = sorted(p.name for p in export_root.iterdir() if p.is_dir()) if export_root.is_dir() else []
    rows = []
    for provider in providers:
        counts = ((read_json(project / layout.report("export", provider)) or {}).get("files")) or {}
        for f in sorted((export_root / provider).glob("*.jsonl")):
            rows.append([provider, f.name, counts.get(f.name), f"`{sha256_file(f)}`"])
    lines += ["", "## Exported files", "", *_table(["provider", "file", "examples", "sha256"], rows)]
    rows = []
    for provider in providers:
        v = read_json(project / layout.report("validation", provider)) or {}
        rows.append([provider, v.get("base_model"), "yes" if v.get("ok") else "NO", v.get("errors"), v.get("warnings")])
    lines += ["", "## Validation", "", *_table(["provider", "base model", "ok", "errors", "warnings"], rows)]
    rows = []
    for provider in providers:
        e = read_json(project / layout.report("estimate", provider)) or {}
        cost = e.get("estimated_cost_usd")
        rows.append([provider, e.get("base_model"), e.get("examples"), e.get("n_epochs"), e.get("billed_tokens"),
                     f"${cost}" if cost is not None else "n/a", e.get("price_source")])
    lines += ["", "## Training tokens and cost estimate", ""]
    lines += _table(["provider", "base model", "train examples", "epochs", "billed tokens", "cost", "price source"],
                    rows)
    return "\n".join(lines) + "\n"


def jobs_rows(project: Path) -> list[dict[str, Any]]:
    """One row per (dataset hash, provider) from models/registry.json: which model came from which data."""
    index = read_json(project / Ledger(layout.MODELS).index_path) or {}
    rows = []
    for sha, by_provider in sorted(index.items()):
        for provider, entry in sorted(by_provider.items()):
            rows.append({
                "dataset_sha256": sha, "provider": provider, "base_model": entry.get("base_model"),
                "status": entry.get("status"), "model_id": entry.get("model_id"), "job_id": entry.get("job_id"),
                "job_key": entry.get("job_key"),
            })
    return rows


def eval_rows(reports: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per target from ftlib.evaluate's reports: model id, the data it came from, its score (or why not)."""
    rows = []
    for provider, r in sorted(reports.items()):
        scores = r.get("scores") or {}
        plan = r.get("plan") or {}
        rows.append({
            "provider": provider, "model_id": r.get("model_id"), "dataset_sha256": r.get("dataset_sha256"),
            "eval_sha256": (r.get("eval_set") or {}).get("sha256"),
            "examples": (r.get("eval_set") or {}).get("examples"),
            "score": scores.get("score"), "base_score": ((r.get("base") or {}).get("scores") or {}).get("score"),
            "gain": (r.get("gain") or {}).get("score"),
            "note": "" if r.get("evaluated") else f"{r.get('reason')} ({plan.get('calls')} call(s), about "
                                                   f"${plan.get('estimated_cost_usd')})",
        })
    return rows


def console_links(jobs: dict[str, dict[str, Any] | None]) -> dict[str, str]:
    """provider -> the most specific console page: the job's own link when the provider gave one."""
    consoles = {t.name: t.console for t in targets.all_targets() if t.console}
    return {provider: (job or {}).get("console_url") or consoles.get(provider, "") for provider, job in jobs.items()
            if (job or {}).get("console_url") or provider in consoles}
