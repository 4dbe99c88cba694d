"""The `local` job backend: LoRA training with TRL + PEFT on this machine, behind the same protocol as hosted APIs.

A job is a run folder named by the job key (`.ftlib/runs/<key>/`): spec.json and a private copy of the exact
training bytes are written before the trainer starts, so the folder is the job's identity (find_job) and a
resumed run can never train on different data. The trainer runs as a detached process
(`python -m ftlib.targets.huggingface.runner`, or `accelerate launch` of it for several GPUs) that holds a lock on
its folder while alive, so a dead run (kill -9, reboot) is told apart from a live one and resumed from its last
checkpoint by the next submit. torch is never imported here: only the runner and the preflight load it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from ftlib import layout
from ftlib.digest import sha256_tree
from ftlib.errors import ConfigError, ProviderError
from ftlib.jobs.spec import JobEvent, JobSpec, JobState, JobStatus
from ftlib.jsonfile import write_json_atomic
from ftlib.targets.huggingface import runner

TRAIN_PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets")
_STATES = {"running": JobState.RUNNING, "succeeded": JobState.SUCCEEDED, "failed": JobState.FAILED,
           "cancelled": JobState.CANCELLED}
STARTUP_GRACE_S = 120.0  # a run folder with no live runner and no state this long after start died while starting
_MAX_LISTED_ISSUES = 10


class LocalBackend:
    """Options (params.yaml finetune.local): runs_dir, artifacts_dir, num_processes (GPUs; >1 uses accelerate
    launch), base_model_revision (pin a hub model's revision into the job key)."""

    name = "local"

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options = dict(options or {})
        self.runs_dir = Path(self.options.get("runs_dir") or layout.RUNS)
        # Where the finetune stage puts the adapter for DVC; the model id names it there.
        self.artifacts_dir = Path(self.options.get("artifacts_dir") or layout.ARTIFACTS / self.name)
        self.num_processes = int(self.options.get("num_processes", 1))

    # configuration
    def check_config(self) -> None:
        missing = [p for p in TRAIN_PACKAGES if importlib.util.find_spec(p) is None]
        if missing:
            raise ConfigError(f"local training needs {', '.join(missing)}: install the training extra with "
                              "`pip install 'ftlib[train]'`")
        if self.num_processes < 1:
            raise ConfigError("finetune.local.num_processes must be at least 1")

    def base_model_revision(self, base_model: str) -> str | None:
        """A local model folder's content hash (so retraining after the weights change is a new job), or the
        pinned revision of a hub model; None for an unpinned hub id."""
        path = Path(base_model).expanduser()
        if path.is_dir():
            return "sha256:" + sha256_tree(path)
        pinned = self.options.get("base_model_revision")
        return str(pinned) if pinned else None

    def run_dir(self, job_id: str) -> Path:
        if not job_id or "/" in job_id or job_id.startswith("."):
            raise ValueError(f"{job_id!r} is not a local job id (the job key, 32 hex characters)")
        return self.runs_dir / job_id

    # submit-once
    def find_job(self, spec: JobSpec) -> str | None:
        return spec.key if (self.run_dir(spec.key) / "spec.json").is_file() else None

    def create_job(self, spec: JobSpec, train_ref: str, validation_ref: str | None) -> str:
        """Copy the exact bytes into the run folder, then start the trainer (check_data ran just before)."""
        run = self.run_dir(spec.key)
        data = run / "data"
        data.mkdir(parents=True, exist_ok=True)
        files = {"train_file": _copy(Path(train_ref), data)}
        files["validation_file"] = _copy(Path(validation_ref), data) if validation_ref else None
        from ftlib.targets import get

        hp = {**get(self.name).hyperparameters[spec.method]().model_dump(), **spec.hyperparameters}
        write_json_atomic(run / "spec.json", {
            "job_key": spec.key, "base_model": spec.base_model, "base_model_revision": spec.base_model_revision,
            "method": spec.method, "hyperparameters": hp, "seed": spec.seed if spec.seed is not None else 0, **files,
        })  # written last: from here on find_job sees the job
        self._start(run)
        return spec.key

    def resume(self, job_id: str) -> bool:
        """Start the trainer again for a run that died (kill -9, reboot) or was cancelled; True if started."""
        run = self.run_dir(job_id)
        state = _read(run / runner.STATE_NAME) or {}
        if state.get("state") == "succeeded" or runner.is_live(run) or not (run / "spec.json").is_file():
            return False
        self._start(run)
        return True

    def check_data(self, spec: JobSpec) -> None:
        """Render every example with the base model's chat template, check the assistant-only loss mask, count
        tokens with its tokenizer; refuse on errors, with file:line, before anything is started."""
        for var in ("HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_TELEMETRY"):
            os.environ.setdefault(var, "1")  # this command's output is ftlib's lines, not library progress bars
        from ftlib.targets.huggingface import training  # heavy: loads the tokenizer

        files = [spec.train_file] + ([spec.validation_file] if spec.validation_file else [])
        max_length = int(spec.hyperparameters.get("max_length") or _default(spec, "max_length"))
        issues, stats = training.preflight(files, spec.base_model, spec.method, max_length)
        report = self.runs_dir / f"{spec.key}.preflight.json"
        write_json_atomic(report, {"stats": stats, "issues": [i.to_dict() for i in issues]})
        errors = [i for i in issues if i.severity == "error"]
        if errors:
            listed = "\n".join(f"  {i}" for i in errors[:_MAX_LISTED_ISSUES])
            more = f"\n  ... {len(errors) - _MAX_LISTED_ISSUES} more" if len(errors) > _MAX_LISTED_ISSUES else ""
            raise ProviderError(f"{len(errors)} example(s) cannot train on {spec.base_model}; nothing was started "
                                f"(all findings in {report}):\n{listed}{more}")

    def _start(self, run: Path) -> None:
        """A detached trainer: it outlives this command, like a hosted job outlives the API call."""
        cmd = training_command(run, self.num_processes)
        now = f"{time.time():.0f}"
        state = _read(run / runner.STATE_NAME) or {}
        # "starting" until the runner holds the lock: not mistaken for the dead runner of a run being resumed
        write_json_atomic(run / runner.STATE_NAME, {**state, "state": "starting", "started": now})
        with open(run / "runner.out", "ab") as out:
            subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    # status
    def get_job(self, job_id: str) -> JobStatus:
        run = self.run_dir(job_id)
        if not (run / "spec.json").is_file():
            raise ProviderError(f"no local run {job_id} in {self.runs_dir}; the run folder was deleted or this is "
                                "another machine: submit again (the job key is the same) to train it here")
        state = _read(run / runner.STATE_NAME) or {}
        raw = state.get("state") or "starting"
        live = runner.is_live(run)
        progress = _last_progress(run)
        starting_too_long = raw == "starting" and time.time() - float(state.get("started") or 0) > STARTUP_GRACE_S
        if not live and (raw == "running" or starting_too_long):
            step = progress.get("step")
            return JobStatus(job_id, JobState.FAILED, "interrupted", error=(
                f"the training process stopped{f' at step {step}' if step else ''} (killed or the machine "
                "restarted); submit again to resume from the last checkpoint"), detail=_detail(progress),
                created_at=_mtime(run / "spec.json"))
        state_enum = _STATES.get(raw, JobState.PENDING)
        model_id = metrics = None
        if state_enum is JobState.SUCCEEDED:
            model_id = f"sha256:{state['adapter_sha256']}@{(self.artifacts_dir / 'adapter').as_posix()}"
            metrics = {k: state.get(k) for k in ("adapter_sha256", "train_loss", "eval_loss", "steps", "versions",
                                                 "device")}
        total = progress.get("max_steps") or 0
        return JobStatus(job_id, state_enum, raw, model_id=model_id, error=state.get("error"),
                         progress=min(1.0, progress["step"] / total) if total and progress.get("step") else None,
                         detail=_detail(progress), metrics=metrics,
                         created_at=_mtime(run / "spec.json"),  # written once, when the job is created
                         finished_at=_mtime(run / runner.STATE_NAME) if state_enum.terminal else None)

    def list_events(self, job_id: str, limit: int = 20) -> list[JobEvent]:
        """The run's history: created, one event per logged step or evaluation (progress.jsonl), and its end."""
        status = self.get_job(job_id)
        run = self.run_dir(job_id)
        events = [JobEvent(status.created_at, f"run created for {_read(run / 'spec.json', {}).get('base_model')}")]
        for line in _progress_lines(run / "progress.jsonl", limit):
            events.append(JobEvent(None, _step_message(line), data=line))
        if status.state.terminal:
            ended = f"training {status.raw_state}" + (f": {status.error}" if status.error else "")
            events.append(JobEvent(status.finished_at, ended, "error" if status.error else "info", status.metrics))
        return events[-limit:]

    def cancel(self, job_id: str) -> None:
        run = self.run_dir(job_id)
        pid = _lock_pid(run) if runner.is_live(run) else None
        if pid is None:
            state = _read(run / runner.STATE_NAME) or {}
            if state.get("state") != "succeeded":
                write_json_atomic(run / runner.STATE_NAME, {**state, "state": "cancelled"})
            return
        try:
            os.killpg(pid, signal.SIGTERM)  # the runner (and accelerate's workers) record "cancelled" and stop
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 60
        while runner.is_live(run) and time.monotonic() < deadline:
            time.sleep(0.2)

    def list_jobs(self, limit: int = 20) -> list[JobStatus]:
        runs = sorted((p for p in self.runs_dir.glob("*/spec.json")), key=lambda p: p.stat().st_mtime, reverse=True)
        return [self.get_job(p.parent.name) for p in runs[:limit]]

    # the stage's DVC-tracked output
    def export_artifacts(self, job_id: str, out_dir: Path) -> None:
        """Copy the finished adapter (with tokenizer and config) and its loss curve into out_dir (a fresh folder
        the stage moves into place whole)."""
        run = self.run_dir(job_id)
        shutil.copytree(run / "adapter", out_dir / "adapter")
        if (run / "loss.csv").is_file():
            shutil.copy2(run / "loss.csv", out_dir / "loss.csv")


def _default(spec: JobSpec, name: str) -> Any:
    from ftlib.targets import get

    return get("local").hyperparameters[spec.method].model_fields[name].default


def _copy(src: Path, folder: Path) -> str:
    """A private copy of the exact bytes the job key hashed; the run never reads the export folder again."""
    dest = folder / src.name
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    return f"data/{dest.name}"


def _read(path: Path, default: dict[str, Any] | None = None) -> dict[str, Any] | None:
    try:
        data = orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return default
    return data if isinstance(data, dict) else default


def _mtime(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except FileNotFoundError:
        return None


def _progress_lines(path: Path, limit: int) -> list[dict[str, Any]]:
    """The last `limit` readable lines of progress.jsonl (a line cut by kill -9 is skipped)."""
    try:
        raw = path.read_bytes().splitlines()[-limit:] if limit > 0 else []
    except FileNotFoundError:
        return []
    out = []
    for line in raw:
        try:
            out.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue
    return out


def _step_message(p: dict[str, Any]) -> str:
    parts = [f"step {p.get('step')}/{p.get('max_steps') or '?'}"]
    parts += [f"{k.replace('_', ' ')} {p[k]:.4f}" for k in ("loss", "eval_loss") if isinstance(p.get(k), int | float)]
    return ", ".join(parts)


def _lock_pid(run: Path) -> int | None:
    try:
        return int((run / runner.LOCK_NAME).read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def _last_progress(run: Path) -> dict[str, Any]:
    """The newest progress (the runner appends one line per logged step, and one per evaluation)."""
    path = run / "progress.jsonl"
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - 8192))
            lines = [ln for ln in fh.read().splitlines() if ln.strip()]
    except FileNotFoundError:
        return {}
    merged: dict[str, Any] = {}
    for line in lines[-5:]:
        try:
            merged.update({k: v for k, v in orjson.loads(line).items() if v is not None})
        except orjson.JSONDecodeError:  # the first line of the window may be cut
            continue
    return merged


def _detail(p: dict[str, Any]) -> str | None:
    if not p.get("step"):
        return None
    parts = [f"step {p['step']}/{p.get('max_steps') or '?'}"]
    if p.get("loss") is not None:
        parts.append(f"loss {p['loss']:.4f}")
    if p.get("eta_s") is not None:
        parts.append(f"ETA {int(p['eta_s'])}s")
    return ", ".join(parts)


def training_command(run: Path, num_processes: int, python: str = sys.executable) -> list[str]:
    """The trainer's command line: the runner module, or `accelerate launch` of it for several GPUs (run through
    `python -m` so it is this interpreter's accelerate, whether or not its script is on PATH)."""
    if num_processes < 1:
        raise ValueError("num_processes must be at least 1")
    entry = ["-m", "ftlib.targets.huggingface.runner", str(run)]
    if num_processes == 1:
        return [python, *entry]
    return [python, "-m", "accelerate.commands.launch", "--num_processes", str(num_processes), "--multi_gpu", *entry]
