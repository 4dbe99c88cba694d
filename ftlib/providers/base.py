"""The provider plug-in protocol and the shared types every adapter speaks.

Adapters implement only their own API calls; the shared work (hyperparameter checks, the job key,
the ledger, submit-once, waiting) lives in ftlib.providers.jobs so no adapter can get it wrong.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Protocol

from ftlib.records import canonical_json

Method = Literal["supervised", "dpo"]


class ProviderError(RuntimeError):
    """A provider refusal or failure a user can act on; the message names the cause and the fix."""


class ConfigError(ProviderError):
    """Missing or wrong configuration (credentials, endpoint, role, bucket), raised before any upload."""


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


@dataclass(frozen=True)
class Param:
    """A declared hyperparameter: checked by one generic validator before any network call."""

    name: str
    type: type  # int | float
    min: float
    max: float
    default: Any = None
    min_exclusive: bool = False
    allow_auto: bool = False


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

    @property
    def key(self) -> str:
        """hash(exported bytes, provider, base model, method, hyperparameters, attempt), 32 hex chars."""
        ident = {
            "provider": self.provider,
            "base_model": self.base_model,
            "method": self.method,
            "train": self.train_sha256,
            "validation": self.validation_sha256,
            "hyperparameters": self.hyperparameters,
            "attempt": self.attempt,
        }
        return hashlib.sha256(canonical_json(ident)).hexdigest()[:32]


class Provider(Protocol):
    """One fine-tuning backend. Each method is one provider call; none of them loops or waits.

    Optional hook (looked up with getattr, so adapters without it still conform):
    `check_spec(spec: JobSpec) -> None` raises ValueError for provider limits (suffix length, ...) before any upload.
    """

    name: str
    params: dict[Method, tuple[Param, ...]]  # declared hyperparameters per method
    default_base_model: str

    def check_config(self) -> None:
        """Raise ConfigError naming the variable to set when credentials/settings are missing. No network."""
        ...

    def upload(self, path: Path, sha256: str, spec: JobSpec) -> str:
        """Upload one file (idempotent by sha256: reuse an existing upload) and return its reference."""
        ...

    def find_job(self, spec: JobSpec) -> str | None:
        """The id of a job already created for spec.key at the provider (metadata, name or labels)."""
        ...

    def create_job(self, spec: JobSpec, train_ref: str, validation_ref: str | None) -> str:
        """Create the job, tagged with spec.key, and return its id."""
        ...

    def get_job(self, job_id: str) -> JobStatus: ...

    def cancel(self, job_id: str) -> None: ...

    def list_jobs(self, limit: int = 20) -> list[JobStatus]: ...
