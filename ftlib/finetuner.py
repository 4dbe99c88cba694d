"""The seed library's tuner surface over ftlib.api, so moving from it is an import change.

    from ftlib.finetuner import OpenAIFineTuner      # was: from ractogateway.finetune import OpenAIFineTuner
    model = OpenAIFineTuner().run_pipeline(ds, model="gpt-4o-mini-2024-07-18", validation_dataset=val, suffix="v1")

`FineTuner(provider)` works for every target with a job backend; `<Target>FineTuner` (OpenAIFineTuner,
AnthropicFineTuner, GeminiFineTuner, LocalFineTuner) is the same class bound to one target. The method names,
parameters and return shapes are the seed's (upload_dataset -> file id, create_job -> job id, get_status -> dict,
wait_for_completion -> model id); underneath, every call goes through ftlib's submit-once job core and ledger,
so a re-run of a notebook cell finds its job instead of paying for a second one.

Differences worth knowing: credentials and endpoints come from the provider SDK's environment, never from
arguments; "status" in get_status is ftlib's normalized state (pending, running, succeeded, failed, cancelled,
unknown) with the provider's own word in "raw_status"; failures raise ftlib's ProviderError (a RuntimeError, as
the seed raised) and data the provider would refuse raises DatasetError (a ValueError, as the seed raised).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from ftlib import api, layout, targets
from ftlib.dataset import Dataset
from ftlib.digest import sha256_file
from ftlib.errors import ConfigError, ProviderError
from ftlib.finetune import backend_options
from ftlib.jobs.spec import JobSpec, JobStatus
from ftlib.targets.base import METHOD_KIND

_CREDENTIALS = ("ftlib takes credentials and endpoints from the environment the provider's SDK reads, never as "
                "arguments (they would end up in notebooks and logs): set them there (README, Providers) and drop "
                "api_key/base_url")


def _merge(hyperparameters: Mapping[str, Any] | None, named: Mapping[str, Any]) -> dict[str, Any] | None:
    """The seed's keyword hyperparameters (n_epochs=..., epoch_count=...) merged into one dict; "auto" and None
    mean "the provider decides", as leaving them out does. A misspelled or foreign name is refused later by the
    target's declared hyperparameters, with the name this target uses."""
    hp = dict(hyperparameters or {})
    for key, value in named.items():
        if value is None or (isinstance(value, str) and value == "auto"):
            continue
        if key in hp and hp[key] != value:
            raise ValueError(f"hyperparameter {key} is given twice: {hp[key]!r} in hyperparameters and {value!r}")
        hp[key] = value
    return hp or None


def _unix(t: datetime | None) -> int | None:
    return int(t.timestamp()) if t is not None else None


class FineTuner:
    """Seed-style tuner for one target: upload_dataset, create_job, get_status, list_jobs, list_events, cancel_job,
    wait_for_completion and run_pipeline. `options` are backend settings (role_arn, s3_bucket, gcs_uri, ...);
    `project` a project folder (default: the one around the working directory, else the per-user home)."""

    def __init__(self, provider: str, api_key: str | None = None, *, base_url: str | None = None,
                 options: Mapping[str, Any] | None = None, project: str | Path | None = None) -> None:
        if api_key is not None or base_url is not None:
            raise ConfigError(_CREDENTIALS)
        self.provider = provider
        self._s = api.Session.open(provider, options=options, project=project)
        self._uploaded: dict[str, Path] = {}  # file reference -> the exported file, for this process

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self.provider!r})"

    # data
    def upload_dataset(self, dataset: Dataset, *, split: str = "train", method: str | None = None,
                       verbose: bool = True) -> str:
        """Export the dataset, check it as the `split` file (minimums differ), upload it once; returns its
        reference (a file id, an s3:// or gs:// URI, or a local path for the local trainer)."""
        s = self._s.quiet(verbose)
        folder = s.export({split: dataset})
        kinds = [k for k in ("sft", "preference") if (folder / layout.export_file(split, k)).is_file()]
        kind = METHOD_KIND[method] if method in METHOD_KIND else kinds[0]
        path = folder / layout.export_file(split, kind)
        if not path.is_file():
            raise ValueError(f"the dataset has no {kind} examples for a {method} job")
        if len(kinds) > 1 and method is None:
            import warnings

            warnings.warn("the dataset mixes chat and preference examples; only the chat examples were uploaded "
                          "(pass method='dpo' to upload the preference ones)", stacklevel=2)
        settings = s.job_settings()
        base_model = settings.get("base_model") or s.target.default_base_model
        s.validate(folder, base_model)
        s.backend.check_config()
        spec = JobSpec(provider=s.name, base_model=base_model or "", method=method or _method_of(path),
                       train_file=path, train_sha256=sha256_file(path), options=backend_options(settings))
        ref = s.upload(path, spec)
        self._uploaded[ref] = path
        return ref

    def _exported(self, ref: str | Dataset, split: str, verbose: bool) -> tuple[Path, bool]:
        """(the exported file behind a reference, whether ftlib checked it), from this process or the ledger."""
        if isinstance(ref, Dataset):
            ref = self.upload_dataset(ref, split=split, verbose=verbose)
        if ref in self._uploaded:
            return self._uploaded[ref], True
        ledger, name = self._s.ledger, self._s.name
        for sha, path in self._s.exported_files().items():
            if ledger.upload_ref(name, sha) == ref:
                return path, True
        if getattr(self._s.backend, "upload", None) is None and Path(ref).is_file():
            return Path(ref), False  # the local trainer reads files where they are
        raise ValueError(f"{ref!r} is not a file ftlib uploaded for {name} (ledger {ledger.root}); pass the Dataset, "
                         "or upload it with upload_dataset first")

    # jobs
    def create_job(self, training_file: str | Dataset, model: str | None = None, *, validation_file: str | None = None,
                   suffix: str | None = None, hyperparameters: dict[str, Any] | None = None, method: str | None = None,
                   attempt: int | None = None, base_model: str | None = None, display_name: str | None = None,
                   n_epochs: int | str | None = None, batch_size: int | str | None = None,
                   learning_rate_multiplier: float | str | None = None, verbose: bool = True,
                   **more_hyperparameters: Any) -> str:
        """Start (or find) the job for these files and settings; returns the provider job id, without waiting."""
        train, checked = self._exported(training_file, "train", verbose)
        method = method or _method_of(train)
        train_name, val_name = layout.method_files(method) if method in METHOD_KIND else (train.name, None)
        files = {train_name: train}
        if validation_file is not None:
            val, val_checked = self._exported(validation_file, "validation", verbose)
            files[val_name or val.name] = val
            checked = checked and val_checked
        s = self._s.quiet(verbose)
        settings = s.job_settings(
            base_model=model or base_model, method=method, suffix=suffix or display_name, attempt=attempt,
            hyperparameters=_merge(hyperparameters, {"n_epochs": n_epochs, "batch_size": batch_size,
                                                     "learning_rate_multiplier": learning_rate_multiplier,
                                                     **more_hyperparameters}))
        return api.submit(s, s.link(files), settings, validated=checked, wait=False).id

    def get_status(self, job_id: str) -> dict[str, Any]:
        """id, status (normalized), raw_status, model (base), fine_tuned_model, created_at, finished_at (Unix
        seconds), trained_tokens, error, job_key."""
        job = api.attach(self._s, job_id)
        return self._as_dict(job.status(), job)

    def _as_dict(self, s: JobStatus, job: api.Job) -> dict[str, Any]:
        record = job.record or {}
        return {"id": s.job_id, "status": s.state.value, "raw_status": s.raw_state, "model": record.get("base_model"),
                "fine_tuned_model": s.model_id, "created_at": _unix(s.created_at), "finished_at": _unix(s.finished_at),
                "trained_tokens": s.trained_tokens, "error": s.error, "job_key": job.key}

    def list_jobs(self, limit: int = 10) -> list[dict[str, Any]]:
        """The provider's most recent jobs, newest first, as get_status dicts."""
        return [self._as_dict(j.last_status, j) for j in api.listed(self._s, limit) if j.last_status]

    def list_events(self, job_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """The job's most recent events, newest first: message, level, created_at (Unix seconds or None)."""
        events = api.attach(self._s, job_id).events(limit)
        return [{"message": e.message, "level": e.level, "created_at": _unix(e.created_at)} for e in reversed(events)]

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        s = api.attach(self._s, job_id).cancel()
        return {"id": s.job_id, "status": s.state.value}

    def wait_for_completion(self, job_id: str, *, poll_interval: float = 30, verbose: bool = True,
                            timeout: float | None = None) -> str:
        """Poll until the job ends; returns the tuned model id. A failed or cancelled job raises ProviderError."""
        s = api.attach(self._s, job_id).wait(poll_interval=poll_interval, timeout=timeout, progress=verbose)
        if not s.model_id:
            raise ProviderError(f"{self.provider} job {job_id} succeeded but reported no model id")
        return s.model_id

    def run_pipeline(self, dataset: Dataset, model: str | None = None, *, validation_dataset: Dataset | None = None,
                     suffix: str | None = None, hyperparameters: dict[str, Any] | None = None,
                     poll_interval: float = 30, verbose: bool = True, base_model: str | None = None,
                     display_name: str | None = None, method: str | None = None, attempt: int | None = None,
                     n_epochs: int | str | None = None, batch_size: int | str | None = None,
                     learning_rate_multiplier: float | str | None = None, **more_hyperparameters: Any) -> str:
        """Export, validate, upload, train and wait in one call (ftlib.finetune); returns the tuned model id.
        Calling it again with the same data and settings returns the same model without a second job."""
        s = self._s.quiet(verbose)
        settings = s.job_settings(
            base_model=model or base_model, method=method, suffix=suffix or display_name, attempt=attempt,
            hyperparameters=_merge(hyperparameters, {"n_epochs": n_epochs, "batch_size": batch_size,
                                                     "learning_rate_multiplier": learning_rate_multiplier,
                                                     **more_hyperparameters}))
        job = api.submit(s, api.inputs(s, dataset, validation_dataset), settings, poll_interval=poll_interval)
        model_id = job.model_id
        if not model_id:
            raise ProviderError(f"{self.provider} job {job.id} succeeded but reported no model id")
        return model_id


def _method_of(path: Path) -> str:
    """The method a file's example kind trains (train.preference.jsonl -> dpo)."""
    kind = layout.kind_of(path.name)
    return next(m for m, k in METHOD_KIND.items() if k == kind)


@cache
def _bound(provider: str, name: str) -> type[FineTuner]:
    def __init__(self: FineTuner, api_key: str | None = None, *, base_url: str | None = None,
                 options: Mapping[str, Any] | None = None, project: str | Path | None = None) -> None:
        FineTuner.__init__(self, provider, api_key, base_url=base_url, options=options, project=project)

    return type(name, (FineTuner,), {"__init__": __init__, "__module__": __name__,
                                     "__doc__": f"FineTuner({provider!r}) under the seed library's class name."})


def __getattr__(name: str) -> type[FineTuner]:
    """OpenAIFineTuner, AnthropicFineTuner, GeminiFineTuner, LocalFineTuner...: FineTuner bound to that target."""
    prefix = name.removesuffix("FineTuner")
    if prefix and prefix != name and prefix.lower() in targets.names():
        return _bound(prefix.lower(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FineTuner"]
