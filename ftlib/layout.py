"""Where every file of a project lives, relative to the project folder: the one place paths and names are built.

dvc.yaml spells the same paths (it cannot import Python); tests/test_layout.py checks the two agree.
"""

from __future__ import annotations

from pathlib import Path

from ftlib.targets.base import METHOD_KIND, Kind, Method

DATA = Path("data")
BUILD = Path("build")
REPORTS = Path("reports")
MODELS = Path("models")  # the job ledger and model registry, tracked in git
DATASET = BUILD / "dataset.parquet"
SPLITS = BUILD / "splits"
MANIFEST = "manifest.json"
INGEST_REPORT = REPORTS / "ingest.json"
EXPORTS = BUILD / "export"
ARTIFACTS = BUILD / "models"  # what a job produced that DVC stores (a local adapter), one folder per target
RUNS = Path(".ftlib") / "runs"  # local training runs (checkpoints, logs): one folder per job key, not tracked
EVAL_CACHE = Path(".ftlib") / "eval"  # model replies already paid for (ftlib.evaluate.cache), not tracked
PARAMS = Path("params.yaml")


def split_file(split: str) -> str:
    return f"{split}.parquet"


def export_dir(target: str) -> Path:
    return EXPORTS / target


def export_file(split: str, kind: Kind) -> str:
    """train.jsonl for SFT, train.preference.jsonl for preference examples: one kind per file."""
    return f"{split}.jsonl" if kind == "sft" else f"{split}.preference.jsonl"


def kind_of(file_name: str) -> Kind:
    return "preference" if file_name.endswith(".preference.jsonl") else "sft"


def method_files(method: Method) -> tuple[str, str]:
    """(training file, validation file) names a job of this method reads from an export folder."""
    kind = METHOD_KIND[method]
    return export_file("train", kind), export_file("validation", kind)


def report(stage: str, target: str) -> Path:
    """reports/<stage>/<target>.json for stage in export, validation, estimate, finetune, eval."""
    return REPORTS / stage / f"{target}.json"


def eval_examples(report_path: Path) -> Path:
    """The per-example results beside an eval report: reports/eval/<target>.examples.jsonl."""
    return report_path.with_name(f"{report_path.stem}.examples.jsonl")
