"""The library path from a Dataset to a tuned model: `ftlib.finetune(train, validation, provider=...)` returns a Job.

It runs the same pieces as `ftlib finetune` and `dvc repro` (build_spec, the validate stage's checks, submit_once,
the Ledger), so a notebook re-run, the CLI and the pipeline find one job instead of paying for a second.
Datasets are exported content-addressed (a folder named by the hash of the files in it): the same examples give the
same bytes, hence the same job key and the same job.

Where things live (ftlib.layout.home): inside a project (params.yaml or dvc.yaml in the working directory or a
parent) the project's models/ ledger, its params.yaml `finetune.<provider>` settings as defaults and .ftlib/ for
exports; elsewhere the per-user home ($FTLIB_HOME, else the platform's user data dir), never the current folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from ftlib import formats, layout, pipeline, targets
from ftlib import params as params_file
from ftlib.dataset import Dataset, DatasetError
from ftlib.digest import sha256_file
from ftlib.finetune import _job_view, _write_artifacts, backend_options, build_spec, plan_or_submit
from ftlib.issues import Issue
from ftlib.jobs.ledger import Ledger
from ftlib.jobs.spec import Backend, JobEvent, JobSpec, JobState, JobStatus, ProviderError
from ftlib.jobs.submit import Poll, stderr_console
from ftlib.jobs.submit import wait as wait_for
from ftlib.jsonfile import write_json_atomic
from ftlib.targets.base import METHOD_KIND, Target

Source = Dataset | str | os.PathLike[str]  # a Dataset, or an export folder (`ftlib export`) holding train.jsonl
FILES = "files.json"  # in each content-addressed folder: {file name: sha256}, to find an uploaded file again
_LISTED = 10  # problems quoted in an error message; the report has them all


@dataclass(frozen=True)
class Session:
    """One target in one home: its settings (params.yaml in a project, then `options`), backend, ledger, console."""

    target: Target
    home: layout.Home
    settings: dict[str, Any]
    backend: Backend
    ledger: Ledger
    console: Console

    @classmethod
    def open(cls, provider: str, *, options: Mapping[str, Any] | None = None, project: str | Path | None = None,
             progress: bool = True) -> Session:
        target = targets.get(provider)
        home = layout.home(project)
        settings: dict[str, Any] = {}
        if home.project:
            settings = params_file.finetune_settings(params_file.load(home.root / layout.PARAMS), provider)
        settings.update(options or {})
        for name, path in home.backend_paths(provider).items():
            settings.setdefault(name, path)
        backend = target.make_backend(backend_options(settings))  # an export-only target fails here, with the fix
        return cls(target, home, settings, backend, Ledger(home.models), _console(progress))

    @property
    def name(self) -> str:
        return self.target.name

    def quiet(self, progress: bool) -> Session:
        return self if progress else replace(self, console=_console(False))

    def job_settings(self, **explicit: Any) -> dict[str, Any]:
        """The settings with the caller's arguments on top (None keeps the project's setting or the default)."""
        return {**self.settings, **{k: v for k, v in explicit.items() if v is not None}}

    def spec(self, folder: Path, settings: dict[str, Any]) -> JobSpec:
        method = settings.get("method") or "supervised"
        train_name = layout.method_files(method)[0] if method in METHOD_KIND else None
        if train_name and not (folder / train_name).is_file():
            kind = METHOD_KIND[method]
            others = sorted(p.name for p in folder.glob("train*.jsonl"))
            hint = f"; it holds {', '.join(others)}: pick the method that trains on them" if others else ""
            raise ValueError(f"the training data has no {kind} examples, which a {method} job trains on{hint}")
        spec, _ = build_spec(folder, self.target, settings, self.backend)
        return spec

    # exports
    def export(self, parts: Mapping[str, Dataset]) -> Path:
        """{split: Dataset} -> <home>/exports/<export target>/<content hash>/ with train.jsonl, validation.jsonl..."""
        with self._staging() as tmp:
            for split, ds in parts.items():
                _write_split(ds, split, self.target, tmp)
            return self._publish(tmp)

    def link(self, files: Mapping[str, Path]) -> Path:
        """Files already exported, under the names a job reads (train.jsonl, ...), in a content-addressed folder."""
        with self._staging() as tmp:
            for name, src in files.items():
                try:
                    os.link(src, tmp / name)
                except OSError:  # another file system, or links not allowed
                    shutil.copyfile(src, tmp / name)
            return self._publish(tmp)

    def _staging(self) -> _Staging:
        return _Staging(self.home.exports / self.target.export_name)

    def _publish(self, tmp: Path) -> Path:
        shas = {p.name: sha256_file(p) for p in sorted(tmp.glob("*.jsonl"))}
        if not shas:
            raise ValueError("nothing to export: the datasets are empty")
        write_json_atomic(tmp / FILES, shas)
        final = tmp.parent / _digest(shas)
        if not final.is_dir():
            try:
                os.replace(tmp, final)
            except OSError:
                if not final.is_dir():  # not a concurrent writer of the same bytes: a real failure
                    raise
        return final

    def exported_files(self) -> dict[str, Path]:
        """{sha256: path} of every file this home exported for the target (to find an uploaded file again)."""
        out: dict[str, Path] = {}
        for listing in sorted((self.home.exports / self.target.export_name).glob("*/" + FILES)):
            if not listing.parent.name.startswith("."):
                for name, sha in orjson.loads(listing.read_bytes()).items():
                    out.setdefault(sha, listing.parent / name)
        return out

    # the gate
    def reports(self, folder: Path) -> tuple[Path, Path]:
        """(validation report, estimate) of an export folder, named by its content like the folder itself."""
        stem = self.home.reports / self.target.export_name / _digest(
            {p.name: sha256_file(p) for p in sorted(folder.glob("*.jsonl"))})
        return stem.parent / f"{stem.name}.validation.json", stem.parent / f"{stem.name}.estimate.json"

    def validate(self, folder: Path, base_model: str | None, *, strict: bool = True) -> dict[str, Any]:
        """`ftlib validate` on exactly the files that will be uploaded; errors raise DatasetError (nothing is sent)."""
        report, estimate = self.reports(folder)
        result = pipeline.validate_export(folder, self.target.export_name, base_model, report=report,
                                          estimate_out=estimate)
        result = {**result, "report": str(report), "estimate": str(estimate)}
        _say(self.console, f"[{self.name}] validation: {result['errors']} error(s), {result['warnings']} warning(s) "
                           f"(report: {report})")
        if strict and not result["ok"]:
            issues = [Issue(**{**i, "source": i.get("source") or name})  # a dataset-level finding names its file
                      for name, f in result["files"].items() for i in f["issues"] if i["severity"] == "error"]
            listed = "\n".join(f"  {i}" for i in issues[:_LISTED])
            more = f"\n  ... {len(issues) - _LISTED} more" if len(issues) > _LISTED else ""
            raise DatasetError(f"{result['errors']} validation error(s) for {self.name} on {base_model}; nothing was "
                               f"uploaded (all findings in {report}):\n{listed}{more}", issues)
        return result

    def upload(self, path: Path, spec: JobSpec) -> str:
        """One file through the backend, reusing the upload cache submit_once reads (so it is never sent twice)."""
        send = getattr(self.backend, "upload", None)
        if send is None:  # the backend reads the file where it is (the local trainer)
            return path.resolve().as_posix()
        sha = spec.train_sha256
        ref = self.ledger.upload_ref(self.name, sha)
        if ref is None:
            ref = send(path, sha, spec)
            self.ledger.record_upload(self.name, sha, ref)
            _say(self.console, f"[{self.name}] uploaded {path.name} as {ref}")
        return ref


class _Staging:
    """A temporary folder beside the published ones (same file system, so publishing is one rename)."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)  # gone already when it was published


def _digest(shas: Mapping[str, str]) -> str:
    return hashlib.sha256("".join(f"{n}\0{s}\n" for n, s in sorted(shas.items())).encode()).hexdigest()[:32]


def _console(progress: bool) -> Console:
    return stderr_console() if progress else Console(quiet=True)


def _say(con: Console, msg: str) -> None:
    con.print(msg, markup=False, emoji=False, highlight=False, soft_wrap=True)


def _write_split(ds: Dataset, split: str, target: Target, folder: Path) -> None:
    """One split as the target's files, one per example kind; examples it cannot hold raise, losses warn."""
    if not isinstance(ds, Dataset):
        raise TypeError(f"the {split} data must be a Dataset (ftlib.dataset.Dataset), got {type(ds).__name__}")
    handles: dict[str, Any] = {}
    errors: list[Issue] = []
    losses: list[Issue] = []
    try:
        for item in formats.encode_lines(ds, target.export_name):
            if isinstance(item, Issue):
                (errors if item.severity == "error" else losses).append(item)
                continue
            name = layout.export_file(split, item[0])
            fh = handles.get(name) or handles.setdefault(name, (folder / name).open("wb"))
            fh.write(item[1])
    finally:
        for fh in handles.values():
            fh.close()
    if errors:
        listed = "\n".join(f"  {i}" for i in errors[:_LISTED])
        more = f"\n  ... {len(errors) - _LISTED} more" if len(errors) > _LISTED else ""
        raise DatasetError(f"{len(errors)} {split} example(s) cannot be written for {target.name}; nothing was "
                           f"uploaded:\n{listed}{more}\nDrop or fix them, or pick a target that holds them "
                           "(`ftlib targets`).", errors)
    if losses:
        warnings.warn(f"{len(losses)} {split} example(s) lose fields in the {target.name} format, e.g. {losses[0]}",
                      stacklevel=4)


def inputs(s: Session, train: Source, validation: Dataset | None) -> Path:
    """The export folder a job trains on: Datasets exported content-addressed, or an export folder as given."""
    if isinstance(train, Dataset):
        return s.export({"train": train, **({"validation": validation} if validation is not None else {})})
    if isinstance(train, str | os.PathLike):
        folder = Path(train)
        if validation is not None:
            raise ValueError(f"{folder}: an export folder brings its own validation file; pass validation=None")
        if not folder.is_dir():
            raise NotADirectoryError(f"{folder}: not a folder; pass a Dataset or an export folder from `ftlib export`")
        return folder
    raise TypeError(f"train must be a Dataset or an export folder, got {type(train).__name__}")


def submit(s: Session, folder: Path, settings: dict[str, Any], *, validated: bool = False, wait: bool = True,
           poll_interval: float | None = None, timeout: float | None = None) -> Job:
    """The CLI's path: `ftlib validate` on the files (skipped for a job the ledger already has), then the same call
    `ftlib finetune --submit` makes (plan_or_submit: check_config, submit_once with its checks, the ledger)."""
    spec = s.spec(folder, settings)  # the method's file, hyperparameters: refused here before anything runs
    s.backend.check_config()
    record = s.ledger.get(s.name, spec.key)
    if not validated and not (record and record.get("job_id")):
        s.validate(folder, spec.base_model)
    report, estimate = s.reports(folder)
    result = plan_or_submit(folder, s.name, settings, submit=True, wait=False, models_dir=s.home.models,
                            console=s.console, estimate=estimate, validation=report)  # the guard reuses it
    job = Job(s, result["job"]["job_id"], result["job_key"])
    if wait:
        job.wait(poll_interval=poll_interval, timeout=timeout)
    return job


def finetune(
    train: Source,
    validation: Dataset | None = None,
    *,
    provider: str,
    base_model: str | None = None,
    method: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
    suffix: str | None = None,
    attempt: int | None = None,
    seed: int | None = None,
    options: Mapping[str, Any] | None = None,
    wait: bool = True,
    poll_interval: float | None = None,
    timeout: float | None = None,
    progress: bool = True,
    project: str | Path | None = None,
) -> Job:
    """Train `provider` on `train` (and `validation`): export, validate, submit exactly once, wait; returns the Job.

    Arguments left as None take the project's params.yaml `finetune.<provider>` value, else ftlib's default
    (method "supervised", attempt 0, the target's default base model). Raise `attempt` to train again on unchanged
    data. `options` are backend settings (role_arn, s3_bucket, gcs_uri, ...), never credentials: those come from
    the provider SDK's usual environment. `wait=False` returns as soon as the job exists; `timeout` (seconds)
    stops waiting while the job keeps running. `progress=False` keeps stderr quiet.
    """
    s = Session.open(provider, options=options, project=project, progress=progress)
    settings = s.job_settings(base_model=base_model, method=method, hyperparameters=hyperparameters, suffix=suffix,
                              attempt=attempt, seed=seed)
    return submit(s, inputs(s, train, validation), settings, wait=wait, poll_interval=poll_interval, timeout=timeout)


def plan(
    train: Source,
    validation: Dataset | None = None,
    *,
    provider: str,
    base_model: str | None = None,
    method: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
    suffix: str | None = None,
    attempt: int | None = None,
    seed: int | None = None,
    options: Mapping[str, Any] | None = None,
    progress: bool = True,
    project: str | Path | None = None,
) -> dict[str, Any]:
    """What finetune would do, spending nothing and needing no credentials: the same plan as `ftlib finetune`
    (job key, files, token and cost estimate, an existing job) plus the validation summary and the export folder."""
    s = Session.open(provider, options=options, project=project, progress=progress)
    settings = s.job_settings(base_model=base_model, method=method, hyperparameters=hyperparameters, suffix=suffix,
                              attempt=attempt, seed=seed)
    folder = inputs(s, train, validation)
    spec = s.spec(folder, settings)
    checked = s.validate(folder, spec.base_model, strict=False)
    result = plan_or_submit(folder, s.name, settings, submit=False, wait=False, models_dir=s.home.models,
                            console=s.console, estimate=Path(checked["estimate"]))
    summary = {k: checked[k] for k in ("ok", "errors", "warnings", "report")}
    return {**result, "export_dir": folder.as_posix(), "validation": summary}


class Job:
    """A fine-tuning job: its provider id, its ftlib job key (None for a job ftlib did not create) and its state.

    Every call is one request to the provider (or a look at the local run folder) and keeps the ledger current,
    as `ftlib status` does; nothing here starts a second job.
    """

    def __init__(self, session: Session, job_id: str, key: str | None = None,
                 last_status: JobStatus | None = None) -> None:
        self._s = session
        self.id = job_id
        self.key = key
        self.provider = session.name
        self.last_status = last_status  # the newest state seen, without asking again

    def __repr__(self) -> str:
        return f"Job(provider={self.provider!r}, id={self.id!r}, key={self.key!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and (self.provider, self.id) == (other.provider, other.id)

    def __hash__(self) -> int:
        return hash((self.provider, self.id))

    @property
    def record(self) -> dict[str, Any] | None:
        """The job's ledger record (base model, hyperparameters, dataset sha256, status, model id)."""
        ledger = self._s.ledger
        return ledger.get(self.provider, self.key) if self.key else ledger.find_by_job_id(self.provider, self.id)

    def status(self) -> JobStatus:
        """Normalized and raw state, model id, error, created_at/finished_at (UTC), trained tokens, progress."""
        s = self._s.backend.get_job(self.id)
        self._s.ledger.record_status(self.provider, s)
        self.last_status = s
        return s

    def wait(self, poll_interval: float | None = None, timeout: float | None = None, *,
             progress: bool | None = None) -> JobStatus:
        """Poll until the job ends, printing each change on stderr; a failed or cancelled job raises ProviderError.

        `poll_interval` seconds between polls (default: 5 s growing to 60 s); after `timeout` seconds WaitTimeout is
        raised and the job keeps running (wait again to resume). Ctrl-C leaves it running too.
        """
        poll = Poll(start=poll_interval, cap=max(poll_interval, 1.0)) if poll_interval else Poll()
        con = self._s.console if progress is None else _console(progress)
        s = wait_for(self._s.backend, self.id, timeout, poll, ledger=self._s.ledger, console=con)
        self.last_status = s
        self._publish_artifacts(s)
        return s

    def events(self, limit: int = 100) -> list[JobEvent]:
        """The job's history, oldest first: OpenAI's job events, Bedrock's and Vertex's phases with their times,
        the local trainer's progress log. Empty for a backend with no history."""
        hook = getattr(self._s.backend, "list_events", None)
        return list(hook(self.id, limit)) if hook is not None else []

    def cancel(self) -> JobStatus:
        self._s.backend.cancel(self.id)
        return self.status()

    @property
    def model_id(self) -> str | None:
        """The tuned model's id once the job succeeded (from the ledger, else one status call); None before."""
        record = self.record
        if record and record.get("model_id"):
            return record["model_id"]
        last = self.last_status
        if last is None or not last.state.terminal:
            last = self.status()
        return last.model_id if last.state is JobState.SUCCEEDED else None

    def _publish_artifacts(self, s: JobStatus) -> None:
        """Outside a project no pipeline stage copies a local adapter to where its model id points: do it here."""
        export = getattr(self._s.backend, "export_artifacts", None)
        folder = self._s.settings.get("artifacts_dir")
        if self._s.home.project or export is None or not folder or not self.key or s.state is not JobState.SUCCEEDED:
            return
        folder = Path(folder)
        try:
            if orjson.loads((folder / "model.json").read_bytes()).get("model_id") == s.model_id:
                return
        except (FileNotFoundError, orjson.JSONDecodeError):
            pass
        _write_artifacts(folder, self._s.backend, self.key, _job_view(self.record))


def attach(s: Session, job_id: str) -> Job:
    """A Job for a provider job id, with its key when the ledger knows it."""
    record = s.ledger.find_by_job_id(s.name, job_id)
    return Job(s, job_id, record["job_key"] if record else None)


def job(key_or_id: str, *, provider: str | None = None, options: Mapping[str, Any] | None = None,
        project: str | Path | None = None, progress: bool = True) -> Job:
    """Reattach to a job by ftlib job key or provider job id (the ledger is searched; `provider` allows a job the
    ledger does not know, e.g. one from another tool)."""
    home = layout.home(project)
    for record in Ledger(home.models).records(provider):
        if key_or_id in (record.get("job_key"), record.get("job_id")):
            if not record.get("job_id"):
                raise ProviderError(f"job key {record['job_key']} was recorded but the job was never created (status "
                                    f"{record.get('status')}); call ftlib.finetune again with the same data and "
                                    "settings to finish submitting it")
            s = Session.open(record["provider"], options=options, project=home.root if home.project else None,
                             progress=progress)
            return Job(s, record["job_id"], record["job_key"])
    if provider is None:
        raise ValueError(f"no job with key or id {key_or_id!r} in the ledger {home.models}; pass provider= to attach "
                         "to a job this ledger does not know")
    return Job(Session.open(provider, options=options, project=project, progress=progress), key_or_id)


def jobs(provider: str, limit: int = 20, *, options: Mapping[str, Any] | None = None,
         project: str | Path | None = None) -> list[Job]:
    """The provider's recent jobs, newest first (ones ftlib did not create included, with key None)."""
    return listed(Session.open(provider, options=options, project=project, progress=False), limit)


def listed(s: Session, limit: int) -> list[Job]:
    s.backend.check_config()
    out = []
    for status in s.backend.list_jobs(limit):
        record = s.ledger.find_by_job_id(s.name, status.job_id)
        out.append(Job(s, status.job_id, record["job_key"] if record else None, last_status=status))
    return out


__all__ = ["Job", "JobEvent", "JobState", "JobStatus", "finetune", "job", "jobs", "plan"]
