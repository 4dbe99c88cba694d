"""The validate stage: exported JSONL files -> validation report and train-file estimate (DVC metrics).

Apart from pipeline.py so the stage starts quickly: when export's checks stand in for decoding (ftlib.export_checks)
nothing here needs pyarrow, the readers or worker processes, and none of them is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftlib import atomic, export_checks, formats, jsonfile, layout, targets, tokens, validate
from ftlib.digest import sha256_file
from ftlib.errors import StageError

Progress = Callable[[int], None]  # called with a count of items just processed


def _validate_chunk(task: tuple[str, str, str, str | None, str, list[tuple[int, bytes]]]) -> validate.ValidationReport:
    """Decode and check one chunk of an exported file (runs in a worker process)."""
    path, fmt_name, provider, base_model, split_name, lines = task
    return validate.check_lines(formats.get(fmt_name), path, lines, provider, base_model, split_name)


def validate_export(
    export_dir: Path, provider: str, base_model: str | None = None, report: Path | None = None,
    estimate_out: Path | None = None, prices: dict[str, float] | None = None, n_epochs: int | None = None,
    progress: Progress | None = None, workers: int | None = None, checks: Path | None = None,
) -> dict[str, Any]:
    """Check every exported file against the provider's rules; write the report and the train-file estimate.

    `checks`: the file export wrote while it validated these files (ftlib.export_checks); used only when it
    matches these exact bytes, target, base model and code, else every line is decoded and checked here.
    """
    target_formats = targets.get(provider).formats
    files = sorted(export_dir.glob("*.jsonl"))
    if not files:
        raise StageError(f"no .jsonl files in {export_dir}; run `ftlib export ... --out {export_dir}` first")
    per_file: dict[str, Any] = {}
    estimates: dict[str, Any] = {}
    # sha256: the submit guard (ftlib.upload_check) reuses this report only for these exact bytes
    shas = {path.name: sha256_file(path) for path in files}
    found = export_checks.load_usable(checks, export_dir, provider, base_model, shas)
    for path in files:
        kind = layout.kind_of(path.name)
        split_name = path.name.split(".")[0]
        if found is not None:  # export checked these very bytes while writing them
            entry = found[path.name]
            per_file[path.name] = {**entry["report"], "sha256": shas[path.name]}
            if split_name == "train":
                estimates[path.name] = {**tokens.estimate(entry["tokens"], provider, base_model, n_epochs=n_epochs,
                                                          prices=prices), "sha256": shas[path.name]}
            if progress:
                progress(entry["report"]["examples"])
            continue
        fmt = target_formats.get(kind)
        if fmt is None:
            raise StageError(f"{path}: {provider} has no {kind} format; re-run `ftlib export` into a clean folder")
        from ftlib import parallel, readers  # the full check only: readers load pyarrow

        tasks = ((path.as_posix(), fmt.name, provider, base_model, split_name, chunk)
                 for chunk in parallel.chunked(readers.iter_raw_lines(path)))
        checked = validate.ValidationReport.empty(provider, base_model, split_name)
        for part in parallel.ordered_map(_validate_chunk, tasks, workers):
            checked.merge(part)
            if progress:
                progress(part.examples)
        validate.finish_dataset(checked, base_model)
        per_file[path.name] = {**checked.to_dict(max_issues=1000), "sha256": shas[path.name]}
        if split_name == "train":
            estimates[path.name] = {**tokens.estimate(checked.tokens, provider, base_model, n_epochs=n_epochs,
                                                      prices=prices), "sha256": shas[path.name]}
    errors = sum(f["errors"] for f in per_file.values())
    result = {
        "provider": provider,
        "base_model": base_model,
        "ok": errors == 0,
        "errors": errors,
        "warnings": sum(f["warnings"] for f in per_file.values()),
        "files": per_file,
    }
    with atomic.staged() as outputs:  # the report and the estimate appear together
        if report:
            outputs.write_bytes(Path(report), jsonfile.dumps(result))
        if estimate_out:
            outputs.write_bytes(Path(estimate_out), jsonfile.dumps(estimates))
    return result


__all__ = ["validate_export"]
