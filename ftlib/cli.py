"""`ftlib` command line: thin wrappers over ftlib.pipeline (data stages) and ftlib.finetune (jobs).

Exit codes: 0 ok, 1 data or job errors, 2 usage or configuration errors. Bad input never shows a traceback.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from ftlib import layout
from ftlib.errors import exit_code, message


class _OnFirstUse:
    """A module imported when a command first uses it: `ftlib --help` stays quick (under 0.3 s of CPU), and each
    command loads only what it runs."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


if TYPE_CHECKING:
    from ftlib import params as params_file
    from ftlib import pipeline, targets, validation_stage
else:
    pipeline, targets, params_file, validation_stage = (
        _OnFirstUse(f"ftlib.{m}") for m in ("pipeline", "targets", "params", "validation_stage"))

app = typer.Typer(
    help="Prepare fine-tuning data and run fine-tuning jobs reproducibly.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


@contextmanager
def progress_bar(label: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr for long steps; silent when stderr is not a terminal (CI, DVC logs)."""
    if not console.is_terminal:  # under DVC, CI or a pipe: no bar, and no need to load one
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


class _HidePandas:
    """A module finder that reports pandas as not installed (see _arrow_without_pandas)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas":
            raise ModuleNotFoundError("pandas is hidden while pyarrow looks for it", name=name)


def _arrow_without_pandas() -> None:
    """pyarrow imports pandas (~0.2 s) on its first array built from Python objects, only to ask whether the input
    is a pandas object; the data stages never hand it one. Let pyarrow ask once while pandas is hidden: it
    remembers the answer, and anything else in the process can still import pandas (its pyarrow conversions
    aside)."""
    if "pandas" in sys.modules:
        return
    import pyarrow as pa

    finder = _HidePandas()
    sys.meta_path.insert(0, finder)
    try:
        pa.array([None])
    finally:
        sys.meta_path.remove(finder)


def _provider(value: str) -> str:
    if value not in targets.names():
        raise typer.BadParameter(f"unknown target {value!r}; use one of: {', '.join(targets.names())}")
    return value


ProviderOpt = Annotated[str, typer.Option("--provider", "-p", help="the target (`ftlib targets` lists them)",
                                          callback=_provider)]


def _refuse_outputs_on_inputs(paths: list[Path], outputs: dict[str, Path]) -> None:
    """Before anything is written: the inputs hold input files, and no output lands on an input or inside an input
    folder (it would overwrite raw data, or be read back as input by the next ingest)."""
    from ftlib import readers

    found = readers.scan(list(paths))  # a missing path raises FileNotFoundError naming it
    if not found.files:
        skipped = f"; {len(found.skipped)} other file(s) there are not inputs (see their names)" if found.skipped \
            else ""
        raise ValueError(f"no input files in {', '.join(str(p) for p in paths)}{skipped}; ftlib reads "
                         f"{readers.WHAT_IS_READ}: put the raw data there or name the files")
    files = {f.resolve() for f in found.files}
    folders = [p.resolve() for p in paths if p.is_dir()]
    for flag, target in outputs.items():
        where = target.resolve()
        if where in files:
            raise ValueError(f"{flag} {target} is one of the input files: writing it would overwrite raw data; "
                             "choose a path outside the inputs")
        inside = next((d for d in folders if where.is_relative_to(d)), None)
        if inside is not None:
            raise ValueError(f"{flag} {target} is inside the input folder {inside}: the next ingest would read it as "
                             "input; choose a path outside the inputs")


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Input files or folders (.jsonl in any supported format, .csv)")],
    out_path: Annotated[Path, typer.Option("--out", help="Dataset parquet to write")] = layout.DATASET,
    report: Annotated[Path, typer.Option(help="Ingest report (counts, rejects with file:line)")] = layout.INGEST_REPORT,
    strict: Annotated[bool, typer.Option(
        "--strict/--lenient", help="--strict fails on any bad line; --lenient keeps the good ones")] = False,
    near_duplicates: Annotated[str, typer.Option(
        "--near-duplicates", help="report: list near-copies and keep each cluster on one side of the split; "
        "keep_first: also drop all but the first of each cluster; off: skip the check")] = "report",
    near_duplicate_threshold: Annotated[float, typer.Option(
        help="estimated Jaccard similarity of word 3-grams from which two examples are near-duplicates")] = 0.8,
) -> None:
    """Read raw files into one deduplicated parquet dataset; report every rejected line and near-duplicate."""
    _arrow_without_pandas()
    from ftlib.quality.near_duplicates import Settings

    try:
        nd = Settings(mode=near_duplicates, threshold=near_duplicate_threshold)  # type: ignore[arg-type]
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--near-duplicates") from None
    _refuse_outputs_on_inputs(list(paths), {"--out": out_path, "--report": report})
    with progress_bar("ingest") as advance:
        result = pipeline.ingest(list(paths), out_path, report, strict=strict, progress=advance,
                                 near_duplicates=nd, near_duplicates_out=layout.near_duplicates_file(out_path))
    out.print(f"ingest: read {result.read}, kept {result.kept}, duplicates {result.duplicates}, "
              f"rejected {sum(c['rejected'] for c in result.per_file.values())} -> {out_path} (report: {report})")
    if result.near_duplicates and result.near_duplicates.clusters:
        found = result.near_duplicates
        dropped = f", dropped {len(found.dropped)} (keep_first)" if found.dropped else ""
        out.print(f"near-duplicates: {len(found.clusters)} cluster(s) of {sum(map(len, found.clusters))} "
                  f"examples{dropped}; listed in {report}")
    for issue in result.rejected[:20]:
        console.print(f"  [yellow]{issue}[/]", highlight=False, markup=True)
    if result.rejected_issues > 20:
        console.print(f"  ... {result.rejected_issues - 20} more in {report}")


@app.command("split")
def split_cmd(
    dataset: Annotated[Path, typer.Argument(help="Dataset parquet from `ftlib ingest`")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for <split>.parquet and the manifest")] = layout.SPLITS,
    seed: Annotated[int, typer.Option(help="Split seed")] = 0,
    ratios: Annotated[str, typer.Option(help="e.g. train=0.9,validation=0.1[,test=...]")] = "train=0.9,validation=0.1",
    group_by: Annotated[str | None, typer.Option("--group-by", help="Keep examples sharing this value together: "
                                                 "'group' or a metadata field")] = None,
    near_duplicates: Annotated[Path | None, typer.Option(
        "--near-duplicates", help="ingest's near-duplicate links (default: the file beside the dataset)")] = None,
) -> None:
    """Stable seeded split: an example's split depends only on (seed, group or id); near-duplicates stay together."""
    _arrow_without_pandas()
    from ftlib.split import check_dataset_file, parse_ratios

    try:
        parsed = parse_ratios(ratios)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--ratios") from None
    beside = layout.near_duplicates_file(dataset)
    links = near_duplicates or (beside if beside.is_file() else None)
    check_dataset_file(dataset)  # corrupt or foreign parquet: one line, not a traceback
    manifest = pipeline.split(dataset, out_dir, seed, parsed, group_by, near_duplicates=links)
    achieved = ", ".join(f"{k}={v} ({manifest['achieved'][k]:.1%})" for k, v in manifest["counts"].items())
    out.print(f"split (seed {seed}): {achieved} -> {out_dir}")


@app.command("export")
def export_cmd(
    splits_dir: Annotated[Path, typer.Argument(help="Folder from `ftlib split`")],
    provider: ProviderOpt,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Default build/export/PROVIDER")] = None,
    report: Annotated[Path | None, typer.Option(help="Default reports/export/PROVIDER.json")] = None,
    params: Annotated[Path | None, typer.Option(
        help="params.yaml whose providers.PROVIDER.strategy shapes the examples (reasoning, JSON or tool-call "
             "replies)")] = None,
    base_model: Annotated[str | None, typer.Option(
        "--base-model", help="With --checks: validate for this model while writing")] = None,
    checks: Annotated[Path | None, typer.Option(
        help="Also validate every line as it is written and save the findings here, for `ftlib validate --checks` "
             "(which then need not decode the files again)")] = None,
) -> None:
    """Write each split as JSONL in the provider's format(s); report what could not be exported."""
    _arrow_without_pandas()
    from ftlib import strategies

    out_dir = out_dir or layout.export_dir(provider)
    report = report or layout.report("export", provider)
    strategy = strategies.for_target(params_file.load(params, required=True), provider, params.parent) if params \
        else None
    from ftlib.split import check_split_files

    check_split_files(splits_dir)  # corrupt or foreign split files: one line naming the file
    with progress_bar(f"export {provider}") as advance:
        result = pipeline.export(splits_dir, provider, out_dir, report, progress=advance, strategy=strategy,
                                 checks=checks, base_model=base_model)
    files = ", ".join(f"{k}: {v}" for k, v in result["files"].items())
    out.print(f"export {provider}: {files}; skipped {result['skipped']} (see {report}) -> {out_dir}")


@app.command("validate")
def validate_cmd(
    export_dir: Annotated[Path, typer.Argument(help="Folder from `ftlib export`")],
    provider: ProviderOpt,
    base_model: Annotated[str | None, typer.Option("--base-model", help="Checks token limits for this model")] = None,
    report: Annotated[Path | None, typer.Option(help="Default reports/validation/PROVIDER.json")] = None,
    estimate: Annotated[Path | None, typer.Option(help="Token/cost estimate JSON (a DVC metric)")] = None,
    params: Annotated[Path | None, typer.Option(help="params.yaml with optional prices overrides")] = None,
    checks: Annotated[Path | None, typer.Option(
        help="The checks file `ftlib export --checks` wrote: used when it matches these exact files (sha256), "
             "target, base model and ftlib code; otherwise every line is decoded and checked")] = None,
) -> None:
    """Check exported files against the provider's rules. Exit 1 when there are errors."""
    report = report or layout.report("validation", provider)
    prices = params_file.load(params, required=True).get("prices") if params else None
    with progress_bar(f"validate {provider}") as advance:
        result = validation_stage.validate_export(export_dir, provider, base_model, report, estimate,
                                                  prices=prices, progress=advance, checks=checks)
    out.print(f"validate {provider}: {result['errors']} error(s), {result['warnings']} warning(s) (report: {report})")
    if not result["ok"]:
        raise typer.Exit(1)


@app.command("quality")
def quality_cmd(
    splits_dir: Annotated[Path, typer.Argument(help="Folder from `ftlib split`")] = layout.SPLITS,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the quality reports and plots")] = layout.QUALITY,
    eval_files: Annotated[list[Path] | None, typer.Option(
        "--eval", help="An eval set to check against train as well (repeat for several); \"\" for none")] = None,
    ngram: Annotated[int, typer.Option(help="Leakage n-gram size in words")] = 8,
    threshold: Annotated[float, typer.Option(
        help="Share of an example's n-grams found in train from which it counts as contaminated")] = 0.5,
    iqr_factor: Annotated[float, typer.Option(help="Outliers lie beyond Q1 - k*IQR and Q3 + k*IQR")] = 3.0,
) -> None:
    """Leakage of held-out splits and eval files into train (n-gram overlap), and length/turn outliers per split."""
    _arrow_without_pandas()
    from ftlib.quality import leakage, outliers, report

    try:
        leak = leakage.Settings(ngram=ngram, threshold=threshold)
        outl = outliers.Settings(iqr_factor=iqr_factor)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    evals = [p for p in eval_files or () if str(p) not in ("", ".")]
    with progress_bar("quality"):
        result = report.run(splits_dir, out_dir, evals, leak, outl)
    leaks = ", ".join(f"{k}: {v}" for k, v in result["contaminated"].items()) or "no held-out data"
    odd = ", ".join(f"{k}: {v['tokens']} by length, {v['turns']} by turns" for k, v in result["outliers"].items())
    out.print(f"quality: contaminated {leaks}; outliers {odd} -> {out_dir}")


@app.command()
def inspect(
    path: Annotated[Path, typer.Argument(help="A .jsonl/.csv input, a dataset .parquet or an export folder")],
    provider: Annotated[str | None, typer.Option(
        "--provider", "-p", help="count tokens as this target does (default: the first with exact counts)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Summarise a file: examples, kinds, turns, multimodal and tool use, tokens."""
    from ftlib.dataset import Dataset

    if path.is_dir():
        ds = Dataset()
        for f in sorted(path.glob("*.jsonl")):
            ds.extend(Dataset.from_jsonl(f, strict=False))
    elif path.suffix == ".parquet":
        from ftlib.split import check_dataset_file

        check_dataset_file(path)
        ds = Dataset.from_parquet(path)
    else:
        ds = Dataset.from_jsonl(path, strict=False)
    summary = ds.summary(provider=provider)
    if as_json:
        import orjson

        out.print_json(orjson.dumps(summary).decode())
        return
    from rich.table import Table

    table = Table(title=str(path), show_header=False)
    for key, value in _flatten(summary):
        table.add_row(key, str(value))
    out.print(table)


def _flatten(d: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _register_job_commands() -> None:
    try:
        from ftlib import cli_jobs
    except ImportError:  # provider layer not installed in this build
        return
    cli_jobs.register(app)
    from ftlib import cli_evaluate

    cli_evaluate.register(app)


_register_job_commands()


@app.command("targets")
def targets_cmd() -> None:
    """Every target found (built in or from another package), what it writes and whether it runs jobs."""
    from rich.table import Table

    table = Table("target", "title", "sft format", "preference format", "job methods", "reads export of")
    for t in targets.all_targets():
        table.add_row(t.name, t.title, *((t.formats.get(k).name if t.formats.get(k) else "-")
                                         for k in ("sft", "preference")),
                      ", ".join(t.methods) or "export only", t.export_name)
    out.print(table)


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps known errors to one readable line and an exit code (ftlib.errors), never a traceback."""
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit:
        raise
    except Exception as e:
        code = exit_code(e)
        if code is None:
            raise
        console.print(f"[red]error:[/] {escape(message(e))}", highlight=False)
        sys.exit(code)


if __name__ == "__main__":
    main()
