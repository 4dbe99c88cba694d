"""Where every file of a project lives, relative to the project folder: the one place paths and names are built.

dvc.yaml spells the same paths (it cannot import Python); tests/test_layout.py checks the two agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # targets.base pulls in pydantic: not on the path of `ftlib --help` and every stage's start-up
    from ftlib.targets.base import Kind, Method

DATA = Path("data")
BUILD = Path("build")
REPORTS = Path("reports")
MODELS = Path("models")  # the job ledger and model registry, tracked in git
DATASET = BUILD / "dataset.parquet"
SPLITS = BUILD / "splits"
MANIFEST = "manifest.json"
INGEST_REPORT = REPORTS / "ingest.json"
QUALITY = REPORTS / "quality"  # the quality stage: leakage and outlier reports, distributions DVC plots
LEAKAGE_REPORT = "leakage.json"
OUTLIERS_REPORT = "outliers.json"
TOKENS_PLOT = "tokens.csv"  # estimated tokens per example: share of each split per bin
TURNS_PLOT = "turns.csv"  # assistant turns per example: share of each split
EXPORTS = BUILD / "export"
ARTIFACTS = BUILD / "models"  # what a job produced that DVC stores (a local adapter), one folder per target
RUNS = Path(".ftlib") / "runs"  # local training runs (checkpoints, logs): one folder per job key, not tracked
EVAL_CACHE = Path(".ftlib") / "eval"  # model replies already paid for (ftlib.evaluate.cache), not tracked
PARAMS = Path("params.yaml")
DVC_YAML = Path("dvc.yaml")
WORK = Path(".ftlib")  # a project's untracked working files: training runs, the library's exports and reports
HOME_ENV = "FTLIB_HOME"  # outside a project: where the library keeps its ledger and files (default: per-user dir)


@dataclass(frozen=True)
class Home:
    """Where the library (ftlib.finetune, Job, FineTuner) keeps the ledger and its working files.

    In a project (a folder holding params.yaml or dvc.yaml: the working directory or one of its parents) that is the
    project's own `models/` ledger and `.ftlib/`, so the library, the CLI and `dvc repro` find the same jobs. Plain
    Python outside any project uses a per-user folder instead, never the current folder: $FTLIB_HOME if set, else the
    platform's user data dir (~/.local/share/ftlib on Linux, ~/Library/Application Support/ftlib on macOS,
    %LOCALAPPDATA%\\ftlib on Windows), holding `models/`, `exports/`, `reports/`, `runs/` and `artifacts/`.
    """

    root: Path
    project: bool

    @property
    def models(self) -> Path:
        return self.root / MODELS

    @property
    def work(self) -> Path:
        return self.root / WORK if self.project else self.root

    @property
    def exports(self) -> Path:
        """Library exports, one folder per content hash of the files in it, per export target."""
        return self.work / "exports"

    @property
    def reports(self) -> Path:
        return self.work / "reports"

    def backend_paths(self, target: str) -> dict[str, str]:
        """Folders a backend that trains on this machine writes (runs_dir, artifacts_dir; hosted ones ignore them).

        In a project the artifacts folder stays the pipeline's relative default, so the model id the ledger records
        reads the same whichever entry point polled the job; outside one the library puts the adapter in the home.
        """
        paths = {"runs_dir": str(self.root / RUNS if self.project else self.root / "runs")}
        if not self.project:
            paths["artifacts_dir"] = str(self.root / "artifacts" / target)
        return paths


def find_project(start: Path | None = None) -> Path | None:
    """The nearest folder, from `start` (the working directory) upwards, that holds params.yaml or dvc.yaml."""
    here = (start or Path.cwd()).resolve()
    return next((d for d in (here, *here.parents) if (d / PARAMS).is_file() or (d / DVC_YAML).is_file()), None)


def user_home() -> Path:
    """$FTLIB_HOME, else the per-user data dir (platformdirs): the library's home outside a project."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs  # only the library path needs it

    return platformdirs.user_data_path("ftlib", appauthor=False)


def home(project: str | Path | None = None) -> Home:
    """The project given (a folder), else the project around the working directory, else the per-user home."""
    if project is not None:
        root = Path(project).expanduser().resolve()
        if not root.is_dir():
            raise NotADirectoryError(f"project={str(project)!r} is not a folder; pass the folder holding params.yaml")
        return Home(root, True)
    found = find_project()
    return Home(found, True) if found is not None else Home(user_home(), False)


def near_duplicates_file(dataset: Path) -> Path:
    """Ingest's near-duplicate links (row, id, cluster) beside its dataset: build/dataset.near_duplicates.parquet.
    Written with the dataset, read by split to keep each cluster on one side."""
    return Path(dataset).with_name(f"{Path(dataset).stem}.near_duplicates.parquet")


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
    from ftlib.targets.base import METHOD_KIND

    kind = METHOD_KIND[method]
    return export_file("train", kind), export_file("validation", kind)


def report(stage: str, target: str) -> Path:
    """reports/<stage>/<target>.json for stage in export, validation, estimate, finetune, eval."""
    return REPORTS / stage / f"{target}.json"


def eval_examples(report_path: Path) -> Path:
    """The per-example results beside an eval report: reports/eval/<target>.examples.jsonl."""
    return report_path.with_name(f"{report_path.stem}.examples.jsonl")
