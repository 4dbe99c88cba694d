"""OpenAI (and Azure OpenAI) fine-tuning through the official SDK: one method per API call, no loops.

Retries on 429/5xx are the SDK's own (max_retries, timeout from options). Submit-once logic lives in ftlib.jobs; this
module only knows how to tag a job with its key and find it again (job metadata, sha256 in the upload filename).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ftlib.errors import JobNotFound
from ftlib.jobs.spec import ConfigError, JobEvent, JobSpec, JobState, JobStatus, ProviderError

_MB = 1 << 20
_STATES = {
    "validating_files": JobState.PENDING,
    "queued": JobState.PENDING,
    "running": JobState.RUNNING,
    "succeeded": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
    "cancelled": JobState.CANCELLED,
}
_WIND_DOWN = (
    "OpenAI refused to create the fine-tuning job (403 training_not_available): OpenAI is winding down hosted "
    "fine-tuning; organisations that never fine-tuned lose access first and no new jobs are accepted from 2027-01-06. "
    "Use Azure OpenAI (set finetune.openai.azure: true with AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY, "
    "OPENAI_API_VERSION) or export the data for open-weight training (ftlib export --provider huggingface)."
)
KEY_METADATA = "ftlib_job_key"


def file_name(sha256: str, path: Path) -> str:
    """The upload's filename carries the content hash, which is how upload() recognises bytes already sent."""
    return f"ftlib-{sha256}{''.join(path.suffixes) or '.jsonl'}"


def map_state(raw: str) -> JobState:
    return _STATES.get(raw, JobState.UNKNOWN)


class OpenAIBackend:
    name = "openai"

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options = dict(options or {})
        self.azure = bool(self.options.get("azure", bool(self.options.get("azure_endpoint"))))
        self.max_retries = int(self.options.get("max_retries", 5))
        self.timeout = float(self.options.get("timeout", 120))
        self.upload_threshold = int(self.options.get("upload_threshold_bytes", 100 * _MB))
        self.part_size = int(self.options.get("part_size_bytes", 64 * _MB))
        self._client: Any = None

    # configuration
    def check_config(self) -> None:
        env = os.environ
        if self.azure:
            if not (self.options.get("azure_endpoint") or env.get("AZURE_OPENAI_ENDPOINT")):
                raise ConfigError("Azure OpenAI needs an endpoint: set AZURE_OPENAI_ENDPOINT or "
                                  "finetune.openai.azure_endpoint in params.yaml")
            if not (env.get("AZURE_OPENAI_API_KEY") or env.get("AZURE_OPENAI_AD_TOKEN")):
                raise ConfigError("Azure OpenAI credentials missing: set AZURE_OPENAI_API_KEY "
                                  "(or AZURE_OPENAI_AD_TOKEN)")
            if not (self.options.get("api_version") or env.get("OPENAI_API_VERSION")):
                raise ConfigError("Azure OpenAI needs an API version: set OPENAI_API_VERSION or "
                                  "finetune.openai.api_version in params.yaml")
        elif not env.get("OPENAI_API_KEY"):
            raise ConfigError("OpenAI credentials missing: set OPENAI_API_KEY (and OPENAI_BASE_URL for a proxy); "
                              "for Azure OpenAI set finetune.openai.azure: true")

    def check_spec(self, spec: JobSpec) -> None:
        if spec.suffix is not None and len(spec.suffix) > 64:
            raise ValueError(f"finetune.openai.suffix is {len(spec.suffix)} characters; OpenAI allows at most 64")

    @property
    def client(self) -> Any:
        if self._client is None:
            self.check_config()
            import openai  # lazy: `ftlib validate` never pays for the SDK import

            common = {"max_retries": self.max_retries, "timeout": self.timeout}
            if self.azure:
                self._client = openai.AzureOpenAI(
                    azure_endpoint=self.options.get("azure_endpoint") or os.environ["AZURE_OPENAI_ENDPOINT"],
                    api_version=self.options.get("api_version") or os.environ.get("OPENAI_API_VERSION"),
                    **common,
                )
            else:
                self._client = openai.OpenAI(**common)
        return self._client

    # files
    def upload(self, path: Path, sha256: str, spec: JobSpec) -> str:
        name = file_name(sha256, path)
        size = path.stat().st_size
        with _api_errors("upload"):
            for f in self.client.files.list(purpose="fine-tune"):
                if f.filename == name and f.bytes == size and f.status != "error":
                    return f.id
            if size > self.upload_threshold:
                return self._upload_parts(path, name, size)
            with open(path, "rb") as fh:
                return self.client.files.create(file=(name, fh, "application/jsonl"), purpose="fine-tune").id

    def _upload_parts(self, path: Path, name: str, size: int) -> str:
        from rich.progress import Progress

        from ftlib.jobs.submit import stderr_console

        up = self.client.uploads.create(bytes=size, filename=name, mime_type="text/jsonl", purpose="fine-tune")
        part_ids = []
        con = stderr_console()
        with Progress(console=con, transient=True, disable=not con.is_terminal) as bar, open(path, "rb") as fh:
            task = bar.add_task(f"uploading {path.name}", total=size)
            while data := fh.read(self.part_size):
                part_ids.append(self.client.uploads.parts.create(upload_id=up.id, data=data).id)
                bar.advance(task, len(data))
        done = self.client.uploads.complete(upload_id=up.id, part_ids=part_ids)
        if done.file is None:
            raise ProviderError(f"OpenAI upload {up.id} of {path} completed without a file (status {done.status})")
        return done.file.id

    def has_upload(self, ref: str) -> bool:
        """Is a cached file id still usable? Files can be deleted, and a failed one cannot train."""
        import openai

        try:
            with _api_errors(f"file lookup of {ref}"):
                f = self.client.files.retrieve(ref)
        except ProviderError as e:
            if isinstance(e.__context__, openai.NotFoundError):
                return False
            raise
        return f.status not in ("error", "deleted")

    # jobs
    def find_job(self, spec: JobSpec) -> str | None:
        jobs = self.jobs_for_key(spec.key)
        return jobs[-1].job_id if jobs else None  # listed newest first: the oldest is the one that counts

    def jobs_for_key(self, key: str) -> list[JobStatus]:
        """Every job tagged with the key (all pages), for reconciliation after create; newest first, as listed."""
        with _api_errors("job lookup"):
            return [self._status(job) for job in
                    self.client.fine_tuning.jobs.list(metadata={KEY_METADATA: key}, limit=100)
                    if (job.metadata or {}).get(KEY_METADATA) == key]

    def create_job(self, spec: JobSpec, train_ref: str, validation_ref: str | None) -> str:
        self.check_spec(spec)
        kwargs: dict[str, Any] = {
            "model": spec.base_model,
            "training_file": train_ref,
            "method": {"type": spec.method, spec.method: {"hyperparameters": dict(spec.hyperparameters)}},
            "metadata": {KEY_METADATA: spec.key, "ftlib_train_sha256": spec.train_sha256},
        }
        if validation_ref:
            kwargs["validation_file"] = validation_ref
        if spec.suffix:
            kwargs["suffix"] = spec.suffix
        if spec.seed is not None:
            kwargs["seed"] = spec.seed
        import openai

        # No SDK retries here: a timeout or 5xx after the server stored the job would create a second one on retry.
        # An ambiguous failure is settled by one metadata lookup instead; a re-run is always safe (jobs.submit_once).
        try:
            with _api_errors("job creation"):
                return self.client.with_options(max_retries=0).fine_tuning.jobs.create(**kwargs).id
        except ProviderError as e:
            cause = e.__context__
            ambiguous = isinstance(cause, openai.APIConnectionError) or (
                isinstance(cause, openai.APIStatusError) and cause.status_code >= 500)
            found = self.find_job(spec) if ambiguous else None
            if found:
                return found
            if ambiguous or isinstance(cause, openai.RateLimitError):
                raise ProviderError(f"{e}; no job was created: re-running is safe (ftlib looks for the job first)"
                                    ) from None
            raise

    def get_job(self, job_id: str) -> JobStatus:
        import openai

        try:
            with _api_errors(f"status of {job_id}"):
                return self._status(self.client.fine_tuning.jobs.retrieve(job_id))
        except ProviderError as e:
            if isinstance(e.__context__, openai.NotFoundError):
                raise JobNotFound(str(e)) from None
            raise

    def cancel(self, job_id: str) -> None:
        with _api_errors(f"cancel of {job_id}"):
            self.client.fine_tuning.jobs.cancel(job_id)

    def list_jobs(self, limit: int = 20) -> list[JobStatus]:
        with _api_errors("job listing"):
            return [self._status(j) for j in self.client.fine_tuning.jobs.list(limit=limit).data]

    def list_events(self, job_id: str, limit: int = 20) -> list[JobEvent]:
        """OpenAI's job events (validation, steps with loss, completion), oldest first."""
        with _api_errors(f"events of {job_id}"):
            page = self.client.fine_tuning.jobs.list_events(job_id, limit=limit)
        return [JobEvent(_utc(e.created_at), e.message, e.level,
                         e.data if isinstance(getattr(e, "data", None), dict) else None) for e in reversed(page.data)]

    def _status(self, job: Any) -> JobStatus:
        error = None
        if job.error is not None and (job.error.message or job.error.code):
            error = f"{job.error.message or ''} ({job.error.code})".strip() if job.error.code else job.error.message
        return JobStatus(
            job_id=job.id,
            state=map_state(job.status),
            raw_state=job.status,
            model_id=job.fine_tuned_model,
            error=error,
            trained_tokens=job.trained_tokens,
            console_url=None if self.azure else f"https://platform.openai.com/finetune/{job.id}",
            created_at=_utc(job.created_at),
            finished_at=_utc(job.finished_at),
        )


def _utc(seconds: int | None) -> datetime | None:
    """OpenAI's Unix-second timestamps as aware UTC datetimes."""
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


@contextmanager
def _api_errors(action: str) -> Iterator[None]:
    """SDK exceptions become one actionable line; the SDK has already retried what is retryable."""
    import openai

    try:
        yield
    except openai.APIStatusError as e:
        code = getattr(e, "code", None)
        if e.status_code == 403 and code == "training_not_available":
            raise ProviderError(_WIND_DOWN) from None
        if e.status_code == 401:
            raise ConfigError(f"OpenAI rejected the credentials during {action} (401): {_message(e)}; "
                              "check OPENAI_API_KEY (or AZURE_OPENAI_API_KEY)") from None
        raise ProviderError(f"OpenAI {action} failed (HTTP {e.status_code}{f', {code}' if code else ''}): "
                            f"{_message(e)}") from None
    except openai.APIConnectionError as e:
        raise ProviderError(f"OpenAI {action} failed: cannot reach the API ({e.__class__.__name__}: {e}); "
                            "check OPENAI_BASE_URL / network") from None


def _message(e: Any) -> str:
    body = e.body if isinstance(e.body, dict) else {}
    err = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
    return str(err.get("message") or e.message)
