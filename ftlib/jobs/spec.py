"""The job backend protocol and the shared types every backend speaks (hosted APIs and the local trainer alike).

Backends implement only their own calls; the shared work (hyperparameter checks, the job key, the ledger,
submit-once, waiting) lives in ftlib.jobs so no backend can get it wrong.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from ftlib.errors import ConfigError, ProviderError
from ftlib.records import canonical_json
from ftlib.targets.base import Method


class JobState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    state: JobState
    raw_state: str
    model_id: str | None = None
    error: str | None = None
    trained_tokens: int | None = None
    progress: float | None = None  # 0..1 where the provider says
    console_url: str | None = None
    detail: str | None = None  # progress in words (step, loss, ETA) where the backend knows it
    metrics: dict[str, Any] | None = None  # final figures the ledger keeps with the model (losses, versions)
    created_at: datetime | None = None  # when the job was created, timezone-aware UTC (never written to the ledger)
    finished_at: datetime | None = None  # when it reached a terminal state, UTC; None while it runs


@dataclass(frozen=True)
class JobEvent:
    """One line of a job's history: a provider's job event, a phase change, or a step of the local trainer."""

    created_at: datetime | None  # timezone-aware UTC; None where the source gives no time (a training step)
    message: str
    level: str = "info"  # info | warning | error
    data: dict[str, Any] | None = None  # structured figures where the source has them (step, loss, ...)


@dataclass(frozen=True)
class JobSpec:
    """Everything that decides what a job trains on and how; its key is the submit-once identity."""

    provider: str
    base_model: str
    method: Method
    train_file: Path
    train_sha256: str
    validation_file: Path | None = None
    validation_sha256: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    attempt: int = 0
    suffix: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # provider settings (role ARN, bucket, ...), not hashed
    seed: int | None = None  # where the trainer takes one (local): part of the key
    base_model_revision: str | None = None  # content hash or revision of a local base model: part of the key

    @property
    def key(self) -> str:
        """hash(exported bytes, provider, base model [+ revision], method, hyperparameters, [seed,] attempt)."""
        extra = {k: v for k, v in (("seed", self.seed), ("base_model_revision", self.base_model_revision))
                 if v is not None}
        ident = {**extra,
            "provider": self.provider,
            "base_model": self.base_model,
            "method": self.method,
            "train": self.train_sha256,
            "validation": self.validation_sha256,
            "hyperparameters": self.hyperparameters,
            "attempt": self.attempt,
        }
        return hashlib.sha256(canonical_json(ident)).hexdigest()[:32]


class Backend(Protocol):
    """One place that runs fine-tuning jobs. Each method is one call; none of them loops or waits.

    Optional hooks (looked up with getattr, so backends without them still conform):
    `upload(path, sha256, spec) -> str` sends one file (idempotent by sha256) and returns its reference; a backend
    without it (the local trainer) reads the exported files where they are.
    `check_spec(spec) -> None` raises ValueError for backend limits (suffix length, ...) before any upload.
    `check_data(spec) -> None` raises ProviderError for data the backend would refuse, before anything is recorded
    (the local trainer renders every example with the model's chat template).
    `resume(job_id) -> bool` restarts a job that died on this machine (the local trainer after kill -9).
    `export_artifacts(job_id, out_dir) -> None` copies what a finished job produced (an adapter) for DVC to track.
    `list_events(job_id, limit) -> list[JobEvent]` the job's history, oldest first, at most the `limit` newest events
    (OpenAI's job events, Bedrock's and Vertex's phases with their times, the local trainer's progress log).
    `jobs_for_key(key) -> list[JobStatus]` every job tagged with the key, with `created_at`: reconciliation after
    create keeps the oldest and cancels the others (ftlib.jobs.submit.reconcile); without it, find_job is used.
    `has_upload(ref) -> bool` whether a cached upload reference still exists at the provider (else it is sent again).
    """

    name: str

    def check_config(self) -> None:
        """Raise ConfigError naming the variable to set when credentials/settings are missing. No network."""
        ...

    def find_job(self, spec: JobSpec) -> str | None:
        """The id of a job already created for spec.key (provider metadata, job name, labels, a run folder)."""
        ...

    def create_job(self, spec: JobSpec, train_ref: str, validation_ref: str | None) -> str:
        """Start the job, tagged with spec.key, and return its id."""
        ...

    def get_job(self, job_id: str) -> JobStatus: ...

    def cancel(self, job_id: str) -> None: ...

    def list_jobs(self, limit: int = 20) -> list[JobStatus]: ...


__all__ = ["Backend", "ConfigError", "JobEvent", "JobSpec", "JobState", "JobStatus", "ProviderError"]
