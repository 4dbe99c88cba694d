"""Gemini tuning on Vertex AI: datasets in GCS, jobs through google-genai's `tunings` with a job-key label.

Only Vertex AI can tune Gemini (the api_key / AI Studio path lost its last tunable model in 2025), so an api_key
configuration is refused before anything is uploaded. Submit-once and waiting live in ftlib.providers.jobs; this
module makes single calls. Retries are the SDK's own (HttpRetryOptions), never a loop here, and the create call
is retried only on 429 (refused before processing) so a retry can never leave a second job behind.
The SDK imports sit at the top on purpose: ftlib.providers imports this module only when a Gemini job runs.
"""

from __future__ import annotations

import base64
import hashlib
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import google_crc32c
import httpx
from google import genai
from google.api_core import exceptions as gcs_errors
from google.auth import _cloud_sdk
from google.auth import exceptions as auth_errors
from google.auth.compute_engine import _metadata as _gce_metadata
from google.cloud import storage
from google.cloud.storage import exceptions as storage_errors
from google.genai import errors, types

from ftlib.errors import JobNotFound
from ftlib.jobs.spec import ConfigError, JobEvent, JobSpec, JobState, JobStatus, ProviderError

LABEL_KEY = "ftlib_job_key"
API_KEY_VARS = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
DEFAULT_LOCATION = "us-central1"
CONSOLE = "https://console.cloud.google.com/vertex-ai/generative/language/locations/{location}/tuning/tuningJob/{id}"
ADC_FIX = (
    "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file"
)
API_KEY_REFUSAL = (
    "Gemini tuning exists only on Vertex AI since 2025: the Gemini API (api_key / AI Studio) has no tunable models. "
    "Set GOOGLE_CLOUD_PROJECT (or finetune.gemini.project) and GOOGLE_CLOUD_LOCATION, put the data bucket in "
    f"finetune.gemini.gcs_uri, and {ADC_FIX}; remove the api_key setting."
)
_STATES = {
    "JOB_STATE_QUEUED": JobState.PENDING,
    "JOB_STATE_PENDING": JobState.PENDING,
    "JOB_STATE_RUNNING": JobState.RUNNING,
    "JOB_STATE_UPDATING": JobState.RUNNING,
    "JOB_STATE_SUCCEEDED": JobState.SUCCEEDED,
    "JOB_STATE_FAILED": JobState.FAILED,
    "JOB_STATE_CANCELLING": JobState.CANCELLED,
    "JOB_STATE_CANCELLED": JobState.CANCELLED,
}
_ADAPTER_SIZES = {1: "ADAPTER_SIZE_ONE", 2: "ADAPTER_SIZE_TWO", 4: "ADAPTER_SIZE_FOUR", 8: "ADAPTER_SIZE_EIGHT",
                  16: "ADAPTER_SIZE_SIXTEEN"}
_SDK_FIELDS = {"epoch_count", "learning_rate_multiplier", "adapter_size", "beta"}
_CHUNK = 1 << 20



class VertexBackend:
    """Options (params.yaml finetune.gemini): project, location, gcs_uri, tuned_model_display_name, retry_attempts,
    retry_initial_delay, retry_max_delay, retry_jitter, timeout_seconds. `credentials` is for tests and custom auth;
    by default the SDKs use Application Default Credentials."""

    name = "gemini"

    def __init__(self, options: dict[str, Any] | None = None, *, credentials: Any = None,
                 storage_client: Any = None) -> None:
        self.options = dict(options or {})
        self.project: str | None = self.options.get("project") or os.environ.get("GOOGLE_CLOUD_PROJECT")
        self.location: str = (
            self.options.get("location") or os.environ.get("GOOGLE_CLOUD_LOCATION") or DEFAULT_LOCATION
        )
        self.gcs_uri: str | None = self.options.get("gcs_uri")
        self._credentials = credentials or self.options.get("credentials")
        self._storage = storage_client
        self._client: Any = None

    # configuration
    def check_config(self) -> None:
        self._check_vertex()
        if "adapter_size" in self.options:
            raise ConfigError(
                "gemini: adapter_size changes what is trained, so it belongs with the hyperparameters (it is part of "
                "the job key); move finetune.gemini.adapter_size into the gemini hyperparameters"
            )
        _split_gcs_uri(self.gcs_uri)
        if self._credentials is None:
            _check_adc()

    def _check_vertex(self) -> None:
        """What every Vertex call needs (status and cancel need no bucket)."""
        if self.options.get("api_key") or (not self.project and any(os.environ.get(v) for v in API_KEY_VARS)):
            raise ConfigError(API_KEY_REFUSAL)
        if not self.project:
            raise ConfigError(
                "gemini: no Google Cloud project; set GOOGLE_CLOUD_PROJECT (or finetune.gemini.project in params.yaml)"
            )

    def check_spec(self, spec: JobSpec) -> None:
        """Vertex-only limits (adapter sizes, beta only for dpo), checked by submit_once before any upload."""
        _hyperparameters(spec)

    # calls
    def upload(self, path: Path, sha256: str, spec: JobSpec) -> str:
        bucket_name, prefix = _split_gcs_uri(self.gcs_uri)
        object_name = f"{prefix}/{sha256}/{path.name}" if prefix else f"{sha256}/{path.name}"
        md5, crc = _local_checksums(path, sha256)
        with self._errors("upload", f"gs://{bucket_name}"):
            bucket = self._gcs().bucket(bucket_name)
            blob = bucket.get_blob(object_name)
            if blob is None or not (blob.crc32c == crc or blob.md5_hash == md5):
                blob = bucket.blob(object_name)
                blob.upload_from_filename(str(path), content_type="application/jsonl", checksum="crc32c")
        if blob.crc32c != crc and blob.md5_hash != md5:
            raise ProviderError(
                f"gemini: gs://{bucket_name}/{object_name} does not match {path} after upload "
                f"(crc32c {blob.crc32c} != {crc}); re-run to upload again"
            )
        return f"gs://{bucket_name}/{object_name}"

    def find_job(self, spec: JobSpec) -> str | None:
        jobs = self.jobs_for_key(spec.key)
        return jobs[-1].job_id if jobs else None  # listed newest first: the oldest is the one that counts

    def jobs_for_key(self, key: str) -> list[JobStatus]:
        """Every tuning job labelled with the key (all pages), for reconciliation after create."""
        config = types.ListTuningJobsConfig(filter=f'labels.{LABEL_KEY}="{key}"', page_size=100)
        with self._errors("list tuning jobs"):
            # The label check below also covers a server that ignores the filter: then this scans every page.
            return [self._status(job) for job in self._genai().tunings.list(config=config)
                    if (job.labels or {}).get(LABEL_KEY) == key]

    def has_upload(self, ref: str) -> bool:
        """Is a cached gs:// training file still there (lifecycle rules delete old objects)?"""
        bucket_name, _, object_name = ref.removeprefix("gs://").partition("/")
        with self._errors("check", ref):
            return self._gcs().bucket(bucket_name).get_blob(object_name) is not None

    def create_job(self, spec: JobSpec, train_ref: str, validation_ref: str | None) -> str:
        config = types.CreateTuningJobConfig(
            tuned_model_display_name=self._display_name(spec),
            labels={LABEL_KEY: spec.key, "ftlib_method": spec.method},
            validation_dataset=types.TuningValidationDataset(gcs_uri=validation_ref) if validation_ref else None,
            method=types.TuningMethod.PREFERENCE_TUNING if spec.method == "dpo" else None,
            http_options=self._http_options(retry_codes=[429], timeout_seconds=600.0),
            **_hyperparameters(spec),
        )
        try:
            with self._errors("create tuning job", spec.base_model), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The SDK's tuning implementation is experimental")
                job = self._genai().tunings.tune(
                    base_model=spec.base_model, training_dataset=types.TuningDataset(gcs_uri=train_ref), config=config
                )
        except ProviderError as e:
            # A 5xx or a lost connection may still have created the job: look before reporting a failure.
            if isinstance(e.__cause__, errors.ServerError | httpx.TransportError) and (found := self.find_job(spec)):
                return found
            raise
        if not job.name:
            raise ProviderError("gemini: Vertex AI answered the create call without a job name; re-run to look it up")
        return job.name

    def get_job(self, job_id: str) -> JobStatus:
        try:
            with self._errors("get tuning job", job_id):
                job = self._genai().tunings.get(name=job_id)
        except ProviderError as e:
            if isinstance(e.__cause__, errors.APIError) and e.__cause__.code == 404:
                raise JobNotFound(str(e)) from None
            raise
        return self._status(job)

    def cancel(self, job_id: str) -> None:
        with self._errors("cancel tuning job", job_id):
            self._genai().tunings.cancel(name=job_id)

    def list_jobs(self, limit: int = 20) -> list[JobStatus]:
        out: list[JobStatus] = []
        with self._errors("list tuning jobs"):
            for job in self._genai().tunings.list(config=types.ListTuningJobsConfig(page_size=min(limit, 100))):
                out.append(self._status(job))
                if len(out) >= limit:
                    break
        return out

    def list_events(self, job_id: str, limit: int = 20) -> list[JobEvent]:
        """Vertex tuning jobs have no event log: their create, start and end times with the final state."""
        with self._errors("get tuning job", job_id):
            job = self._genai().tunings.get(name=job_id)
        status = self._status(job)
        events = [JobEvent(status.created_at, f"tuning job created on {job.base_model or 'its base model'}")]
        if job.start_time is not None:
            events.append(JobEvent(_utc(job.start_time), "tuning started"))
        if status.state.terminal:
            ended = f"tuning {status.state.value}" + (f": {status.error}" if status.error else "")
            events.append(JobEvent(status.finished_at, ended, "error" if status.error else "info",
                                   {"model": status.model_id} if status.model_id else None))
        return events[-limit:]

    # helpers
    def _status(self, job: Any) -> JobStatus:
        raw = getattr(job.state, "value", job.state) or "JOB_STATE_UNSPECIFIED"
        tuned = job.tuned_model
        error = job.error.message if job.error is not None and job.error.message else None
        state = _STATES.get(str(raw), JobState.UNKNOWN)
        return JobStatus(
            job_id=job.name,
            state=state,
            raw_state=str(raw),
            model_id=(tuned.endpoint or tuned.model) if tuned is not None else None,
            error=error,
            console_url=console_url(job.name),
            created_at=_utc(job.create_time),
            # endTime is set on entering a final state; without it, the last update is when that happened
            finished_at=_utc(job.end_time or job.update_time) if state.terminal else None,
        )

    def _display_name(self, spec: JobSpec) -> str:
        parts = [self.options.get("tuned_model_display_name") or "ftlib", spec.suffix, spec.key[:8]]
        return "-".join(p for p in parts if p)[:128]

    def _http_options(self, *, retry_codes: list[int] | None = None, timeout_seconds: float | None = None) -> Any:
        opts = self.options
        retry = types.HttpRetryOptions(
            attempts=int(opts.get("retry_attempts", 5)),
            initial_delay=float(opts.get("retry_initial_delay", 1.0)),
            max_delay=float(opts.get("retry_max_delay", 60.0)),
            jitter=float(opts.get("retry_jitter", 1.0)),
            http_status_codes=retry_codes,
        )
        timeout = timeout_seconds or float(opts.get("timeout_seconds", 120.0))
        return types.HttpOptions(retry_options=retry, timeout=int(timeout * 1000))

    def _genai(self) -> Any:
        if self._client is None:
            self._check_vertex()
            self._client = genai.Client(
                vertexai=True, project=self.project, location=self.location, credentials=self._credentials,
                http_options=self._http_options(),
            )
        return self._client

    def _gcs(self) -> Any:
        if self._storage is None:
            self._storage = storage.Client(project=self.project, credentials=self._credentials)
        return self._storage

    @contextmanager
    def _errors(self, action: str, subject: str = "") -> Iterator[None]:
        """SDK exceptions become ProviderError/ConfigError that say what failed and what to do about it."""
        where = f"{action} {subject}".strip()
        try:
            yield
        except errors.APIError as e:
            raise ProviderError(f"gemini: {where} failed: {e.code} {e.status or ''} {e.message or ''}".rstrip()
                                + f"; {self._fix(e.code, e.message or '')}") from e
        except gcs_errors.GoogleAPICallError as e:
            code = int(e.code or 0)
            raise ProviderError(f"gemini: {where} failed: {code} {e.message}; {self._fix(code, e.message)}") from e
        except (storage_errors.DataCorruption, storage_errors.InvalidResponse) as e:
            raise ProviderError(f"gemini: {where} failed: {e}; re-run to upload again") from e
        except auth_errors.DefaultCredentialsError as e:
            raise ConfigError(f"gemini: no Google Cloud credentials ({e}); {ADC_FIX}") from e
        except auth_errors.GoogleAuthError as e:
            raise ConfigError(f"gemini: Google Cloud credentials failed ({e}); {ADC_FIX}") from e
        except (httpx.TransportError, OSError) as e:  # refused, reset, timed out: no answer from the server
            raise ProviderError(f"gemini: {where} failed: {e}; check the network and GOOGLE_VERTEX_BASE_URL") from e

    def _fix(self, code: int, message: str) -> str:
        lowered = message.lower()
        if code == 401:
            return f"the credentials were rejected: {ADC_FIX}"
        if code == 403:
            return (f"grant the caller roles/aiplatform.user in project {self.project} (and write access to the "
                    "bucket), and enable the Vertex AI API (aiplatform.googleapis.com)")
        if code == 429:
            return (f"tuning quota or rate limit reached in {self.location}: retry later, or request more quota "
                    "(IAM & Admin > Quotas) or set another GOOGLE_CLOUD_LOCATION")
        if code == 400 and "model" in lowered:
            return "use a base model Vertex AI can tune, such as gemini-2.5-flash or gemini-2.5-flash-lite"
        if code == 404:
            return f"check the job name, project {self.project} and location {self.location}"
        if code >= 500:
            return "a Vertex AI server error; re-run later (the job key prevents a duplicate job)"
        return "fix the request as the message says and re-run"


def console_url(job_name: str) -> str | None:
    """The Vertex AI tuning page of a job `projects/P/locations/L/tuningJobs/ID`."""
    parts = job_name.split("/")
    if len(parts) != 6 or parts[0] != "projects":
        return None
    return CONSOLE.format(location=parts[3], id=parts[5]) + f"?project={parts[1]}"


def _hyperparameters(spec: JobSpec) -> dict[str, Any]:
    """Our names are the SDK's field names; adapter_size becomes its enum."""
    allowed = _SDK_FIELDS if spec.method == "dpo" else _SDK_FIELDS - {"beta"}
    hp = {k: v for k, v in spec.hyperparameters.items() if v is not None}
    if unknown := sorted(set(hp) - allowed):
        raise ProviderError(f"gemini: hyperparameters {unknown} are not supported for method {spec.method}; "
                            f"use {sorted(allowed)}")
    if "adapter_size" in hp:
        size = hp["adapter_size"]
        if size not in _ADAPTER_SIZES:
            raise ProviderError(f"gemini: adapter_size {size} is not supported; use one of {sorted(_ADAPTER_SIZES)}")
        hp["adapter_size"] = _ADAPTER_SIZES[size]
    return hp


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _split_gcs_uri(uri: str | None) -> tuple[str, str]:
    if not uri or not uri.startswith("gs://") or not uri[5:].split("/", 1)[0]:
        raise ConfigError(
            f"gemini: finetune.gemini.gcs_uri must be a gs://bucket/prefix where training files go (got {uri!r}); "
            "Vertex AI reads tuning data only from Cloud Storage"
        )
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix.strip("/")


def _local_checksums(path: Path, sha256: str) -> tuple[str, str]:
    """GCS-style base64 md5 and crc32c, read once; the sha256 check catches a file changed since it was hashed."""
    md5, sha, crc = hashlib.md5(usedforsecurity=False), hashlib.sha256(), google_crc32c.Checksum()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            md5.update(chunk)
            sha.update(chunk)
            crc.update(chunk)
    if sha.hexdigest() != sha256:
        raise ProviderError(f"gemini: {path} changed since it was hashed (sha256 {sha.hexdigest()} != {sha256}); "
                            "re-run the export stage")
    return base64.b64encode(md5.digest()).decode(), base64.b64encode(crc.digest()).decode()


def _check_adc() -> None:
    """Application Default Credentials exist (no network): key file, gcloud's file, or a Google Cloud runtime."""
    key_file = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if key_file:
        if not Path(key_file).is_file():
            raise ConfigError(f"gemini: GOOGLE_APPLICATION_CREDENTIALS points to {key_file}, which does not exist; "
                              "set it to a service-account key file or unset it and run "
                              "`gcloud auth application-default login`")
        return
    if Path(_cloud_sdk.get_application_default_credentials_path()).is_file():
        return
    if any(os.environ.get(v) for v in ("GCE_METADATA_HOST", "K_SERVICE", "CLOUD_RUN_JOB", "FUNCTION_TARGET")):
        return
    try:
        if _gce_metadata.detect_gce_residency_linux():
            return
    except Exception:  # a private helper; without it we simply cannot tell
        pass
    raise ConfigError(f"gemini: no Google Cloud credentials found; {ADC_FIX}")
