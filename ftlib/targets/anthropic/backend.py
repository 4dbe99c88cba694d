"""Claude fine-tuning through Amazon Bedrock model customization (boto3 `bedrock` + `s3`).

The `anthropic` SDK has no fine-tuning API, so jobs go through Bedrock; the SDK serves only `smoke_test`.
Every method is one AWS call (plus a lookup where idempotency needs it): submit-once and waiting live in
ftlib.providers.jobs. The job name and request token derive from the job key, so a crashed submitter (or a second
machine) finds its job by name; moto rejects a repeated token instead of returning the job, so the name is the anchor.
Credentials come from the usual AWS chain and are never read or stored here; AWS_ENDPOINT_URL* is honoured by boto3.
"""

from __future__ import annotations

import base64
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any

from ftlib.errors import JobNotFound
from ftlib.jobs.spec import ConfigError, JobEvent, JobSpec, JobState, JobStatus, ProviderError
from ftlib.targets.anthropic.models import HAIKU, HAIKU_EOL

log = logging.getLogger(__name__)

DEFAULT_REGION = "us-west-2"  # the only region where Claude 3 Haiku can be customized
DEFAULT_MAX_RETRIES = 7  # botocore counts retries after the first attempt
MAX_PUT_BYTES = 5 * 1024**3  # single PUT limit; Bedrock training files are far below it

_STATES = {
    "InProgress": JobState.RUNNING,
    "Completed": JobState.SUCCEEDED,
    "Failed": JobState.FAILED,
    "Stopping": JobState.CANCELLED,
    "Stopped": JobState.CANCELLED,
}
_REGION = re.compile(r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d+")
_ROLE_ARN = re.compile(r"arn:aws(-[^:]+)?:iam::(\d{12})?:role/.+")
_MODEL_NAME_BAD = re.compile(r"[^0-9a-zA-Z_-]+")
_MODEL_NAME_SEPS = re.compile(r"[_-]{2,}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound", "ResourceNotFoundException"})
_ALREADY_EXISTS = frozenset({"ResourceInUseException", "ConflictException"})
_ACCESS = frozenset({"AccessDeniedException", "AccessDenied", "UnrecognizedClientException",
                     "InvalidSignatureException", "ExpiredTokenException", "InvalidAccessKeyId",
                     "SignatureDoesNotMatch", "ExpiredToken"})
_THROTTLED = frozenset({"ThrottlingException", "TooManyRequestsException", "SlowDown", "RequestLimitExceeded"})


class BedrockBackend:
    """One Bedrock account/region; options are params.yaml `finetune.anthropic` (see check_config for the keys)."""

    name = "anthropic"

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options = dict(options or {})
        self.region = str(self.options.get("region") or DEFAULT_REGION)
        retries = self.options.get("max_retries")
        self.max_retries = DEFAULT_MAX_RETRIES if retries is None else int(retries)
        self.bucket, self.prefix = _bucket_and_prefix(self.options)

    # clients: created on first use so importing ftlib never needs boto3 or credentials
    @cached_property
    def session(self) -> Any:
        import boto3

        return boto3.session.Session(region_name=self.region)

    def _client(self, service: str) -> Any:
        from botocore.config import Config

        config = Config(retries={"mode": "standard", "max_attempts": self.max_retries})
        return self.session.client(service, config=config)  # boto3 reads AWS_ENDPOINT_URL(_<SERVICE>) itself

    @cached_property
    def bedrock(self) -> Any:
        return self._client("bedrock")

    @cached_property
    def s3(self) -> Any:
        return self._client("s3")

    # configuration
    def check_config(self) -> None:
        """Every missing setting at once, before any upload; credentials are resolved, never printed."""
        missing = []
        if not _REGION.fullmatch(self.region):
            missing.append(f"finetune.anthropic.region: {self.region!r} is not an AWS region; "
                           f"set e.g. {DEFAULT_REGION}")
        role = self.options.get("role_arn")
        if not role:
            missing.append("finetune.anthropic.role_arn: set the ARN of an IAM service role Bedrock can assume "
                           "(trusts bedrock.amazonaws.com, reads the training bucket, writes the output URI)")
        elif not _ROLE_ARN.fullmatch(str(role)):
            missing.append(f"finetune.anthropic.role_arn: {role!r} is not an IAM role ARN "
                           "(arn:aws:iam::<account>:role/<name>)")
        if not self.bucket:
            missing.append("finetune.anthropic.s3_bucket: set the bucket for training files "
                           "(or s3_prefix: s3://bucket/prefix)")
        out = self.options.get("output_s3_uri")
        if out and not str(out).startswith("s3://"):
            missing.append(f"finetune.anthropic.output_s3_uri: {out!r} must start with s3://")
        if not _has_credentials(self.session):
            missing.append("AWS credentials: none found in the usual chain; set AWS_PROFILE (after `aws sso login` "
                           "or `aws configure`) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
        if missing:
            raise ConfigError("Bedrock is not configured:\n  - " + "\n  - ".join(missing))

    def check_spec(self, spec: JobSpec) -> None:
        """Refusals Bedrock would make after the upload, made before it instead (jobs.submit_once calls this)."""
        _require_supervised(spec)
        if spec.base_model == HAIKU:
            log.warning("%s is Legacy on Bedrock with end of life %s: new jobs may be refused", HAIKU, HAIKU_EOL)

    # uploads
    def upload(self, path: Path, sha256: str, spec: JobSpec) -> str:
        """Content-addressed: <prefix>/<sha256>/<name>; an object already there with that SHA-256 is reused."""
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"upload {path}: sha256 must be 64 lowercase hex digits, got {sha256!r}")
        if not self.bucket:
            raise ConfigError("finetune.anthropic.s3_bucket is not set; set the bucket for training files")
        key = "/".join(p for p in (self.prefix, sha256, path.name) if p)
        uri = f"s3://{self.bucket}/{key}"
        expected = base64.b64encode(bytes.fromhex(sha256)).decode()
        if self._stored_checksum(key) == expected:
            log.info("reusing %s (same SHA-256)", uri)
            return uri
        size = path.stat().st_size
        if size > MAX_PUT_BYTES:
            raise ProviderError(f"{path}: {size} bytes is over S3's 5 GB single-upload limit and far over Bedrock's "
                                "training file limits; reduce the dataset")
        with self._calling(f"upload {path} to {uri}"), open(path, "rb") as body:
            # botocore hashes the bytes it sends and S3 checks them; we compare that hash with the caller's sha256.
            resp = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ChecksumAlgorithm="SHA256",
                                      ContentType="application/jsonl", Metadata={"ftlib-sha256": sha256})
        got = resp.get("ChecksumSHA256")
        if got != expected:
            with self._calling(f"delete mismatched upload {uri}"):
                self.s3.delete_object(Bucket=self.bucket, Key=key)
            raise ProviderError(f"upload {path}: S3 stored SHA-256 {got!r} but the file's sha256 should be "
                                f"{expected!r} (base64); the file changed after it was hashed: re-run the export stage")
        return uri

    def _stored_checksum(self, key: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            with self._calling(f"check s3://{self.bucket}/{key}", passthrough=_NOT_FOUND):
                head = self.s3.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError:
            return None
        return head.get("ChecksumSHA256")

    # jobs
    def job_name(self, spec: JobSpec) -> str:
        """Deterministic per key and within Bedrock's jobName rules (63 chars, [a-zA-Z0-9-+.]); see jobs_for_key."""
        return f"ftlib-{spec.key}"

    def custom_model_name(self, spec: JobSpec) -> str:
        """<prefix>[-<suffix>]-<key[:16]>: unique per key (Bedrock refuses a reused model name), 63 chars at most."""
        stem = "-".join(str(p) for p in (self._opt(spec, "custom_model_name") or "ftlib", spec.suffix) if p)
        stem = _MODEL_NAME_SEPS.sub("-", _MODEL_NAME_BAD.sub("-", stem)).strip("-_")[: 63 - 17]
        return f"{stem.rstrip('-_')}-{spec.key[:16]}" if stem else f"ftlib-{spec.key[:16]}"

    def find_job(self, spec: JobSpec) -> str | None:
        return self._job_arn_by_name(self.job_name(spec))

    def jobs_for_key(self, key: str) -> list[JobStatus]:
        """At most one: Bedrock refuses a second job with the key's deterministic name."""
        arn = self._job_arn_by_name(f"ftlib-{key}")
        return [self.get_job(arn)] if arn else []

    def has_upload(self, ref: str) -> bool:
        """Is a cached s3:// training file still there (a lifecycle rule or a person may have deleted it)?"""
        from botocore.exceptions import ClientError

        bucket, _, key = ref.removeprefix("s3://").partition("/")
        try:
            with self._calling(f"check {ref}", passthrough=_NOT_FOUND):
                self.s3.head_object(Bucket=bucket, Key=key)
        except ClientError:
            return False
        return True

    def _job_arn_by_name(self, name: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            with self._calling(f"look up job {name}", passthrough=_NOT_FOUND):
                job = self.bedrock.get_model_customization_job(jobIdentifier=name)
        except ClientError:
            return None
        return job["jobArn"]

    def create_job(self, spec: JobSpec, train_ref: str, validation_ref: str | None) -> str:
        from botocore.exceptions import ClientError

        _require_supervised(spec)
        role = self._opt(spec, "role_arn")
        if not role:
            raise ConfigError("finetune.anthropic.role_arn is not set; set the IAM service role Bedrock assumes")
        name = self.job_name(spec)
        request: dict[str, Any] = {
            "jobName": name,
            "customModelName": self.custom_model_name(spec),
            "roleArn": role,
            "baseModelIdentifier": spec.base_model,
            "customizationType": "FINE_TUNING",
            "trainingDataConfig": {"s3Uri": train_ref},
            "outputDataConfig": {"s3Uri": self._output_uri(spec)},
            "hyperParameters": {k: _hp_str(v) for k, v in sorted(spec.hyperparameters.items())},
            "clientRequestToken": f"ftlib-{spec.key}",
            "jobTags": [{"key": "ftlib-job-key", "value": spec.key}, *_tags(self._opt(spec, "job_tags"))],
        }
        if validation_ref:
            request["validationDataConfig"] = {"validators": [{"s3Uri": validation_ref}]}
        try:
            with self._calling(f"create job {name}", passthrough=_ALREADY_EXISTS | {"ValidationException"},
                               base_model=spec.base_model):
                return self.bedrock.create_model_customization_job(**request)["jobArn"]
        except ClientError as err:
            code, message = _code(err), _message(err)
            if code in _ALREADY_EXISTS or "exist" in message.lower():
                existing = self._job_arn_by_name(name)
                if existing:  # our earlier call (or a racing submitter) created it: that job is the one
                    log.info("job %s already exists: %s", name, existing)
                    return existing
            raise _translate(err, f"create job {name}", self.region, spec.base_model) from None

    def get_job(self, job_id: str) -> JobStatus:
        from botocore.exceptions import ClientError

        name = _job_name(job_id)
        try:
            with self._calling(f"get job {name}", passthrough=_NOT_FOUND):
                job = self.bedrock.get_model_customization_job(jobIdentifier=name)
        except ClientError as err:
            raise JobNotFound(str(_translate(err, f"get job {name}", self.region))) from None
        return self._status(job, job.get("status", ""), job.get("outputModelArn"), job.get("failureMessage"))

    def cancel(self, job_id: str) -> None:
        name = _job_name(job_id)
        with self._calling(f"stop job {name}"):
            self.bedrock.stop_model_customization_job(jobIdentifier=name)

    def list_jobs(self, limit: int = 20) -> list[JobStatus]:
        with self._calling("list jobs"):
            resp = self.bedrock.list_model_customization_jobs(
                maxResults=max(1, min(limit, 1000)), sortBy="CreationTime", sortOrder="Descending")
        return [self._status(s, s.get("status", ""), s.get("customModelArn"), None)
                for s in resp.get("modelCustomizationJobSummaries", [])[:limit]]

    def list_events(self, job_id: str, limit: int = 20) -> list[JobEvent]:
        """Bedrock has no event log: the job's phases (validation, data processing, training) with their times,
        its final losses and its end, as GetModelCustomizationJob reports them."""
        name = _job_name(job_id)
        with self._calling(f"get job {name}"):
            job = self.bedrock.get_model_customization_job(jobIdentifier=name)
        raw = job.get("status", "")
        events = [JobEvent(_utc(job.get("creationTime")), f"job {job.get('jobName', name)} created")]
        for phase, details in (job.get("statusDetails") or {}).items():
            if isinstance(details, dict) and details.get("status"):
                when = _utc(details.get("lastModifiedTime") or details.get("creationTime"))
                events.append(JobEvent(when, f"{phase.removesuffix('Details')}: {details['status']}"))
        terminal = _STATES.get(raw, JobState.UNKNOWN).terminal
        end = _utc(job.get("endTime")) if terminal else None
        losses = {"training loss": (job.get("trainingMetrics") or {}).get("trainingLoss"),
                  "validation loss": next(iter(job.get("validationMetrics") or []), {}).get("validationLoss")}
        for label, value in losses.items():
            if terminal and value is not None:
                events.append(JobEvent(end, f"{label} {value:.4f}", data={label.replace(' ', '_'): value}))
        if terminal:
            failed = raw == "Failed" and job.get("failureMessage")
            events.append(JobEvent(end, f"job {raw}" + (f": {job['failureMessage']}" if failed else ""),
                                   "error" if failed else "info"))
        return events[-limit:]

    def _status(self, job: dict[str, Any], raw: str, model_arn: str | None, failure: str | None) -> JobStatus:
        state = _STATES.get(raw, JobState.UNKNOWN)
        return JobStatus(
            job_id=job["jobArn"],
            state=state,
            raw_state=raw,
            model_id=model_arn if state is JobState.SUCCEEDED else None,  # Bedrock names the model before it exists
            error=failure if state is JobState.FAILED else None,
            console_url=f"https://{self.region}.console.aws.amazon.com/bedrock/home?region={self.region}#/custom-models",
            created_at=_utc(job.get("creationTime")),
            finished_at=_utc(job.get("endTime")) if state.terminal else None,  # moto fills it from the start
        )

    # using the result
    def smoke_test(self, model_arn: str, prompt: str, max_tokens: int = 256) -> str:
        """One message to the tuned model through anthropic.AnthropicBedrock; returns the reply text.

        Custom models answer only through Provisioned Throughput: pass the provisioned model ARN, not the
        custom model ARN (Bedrock refuses on-demand calls to custom models).
        """
        import anthropic

        endpoint = os.environ.get("AWS_ENDPOINT_URL_BEDROCK_RUNTIME") or os.environ.get("AWS_ENDPOINT_URL")
        client = anthropic.AnthropicBedrock(aws_region=self.region, base_url=endpoint,
                                            max_retries=self.max_retries)
        try:
            reply = client.messages.create(model=model_arn, max_tokens=max_tokens,
                                           messages=[{"role": "user", "content": prompt}])
        except anthropic.APIStatusError as err:
            raise ProviderError(f"Bedrock refused to run {model_arn} (HTTP {err.status_code}): {err.message}. Custom "
                                "models need Provisioned Throughput: buy it for the model in the Bedrock console and "
                                "pass the provisioned model ARN") from None
        return "".join(getattr(block, "text", "") for block in reply.content or [])

    # helpers
    def _opt(self, spec: JobSpec, name: str) -> Any:
        return spec.options.get(name) or self.options.get(name)

    def _output_uri(self, spec: JobSpec) -> str:
        out = self._opt(spec, "output_s3_uri")
        if out:
            return str(out)
        if not self.bucket:
            raise ConfigError("finetune.anthropic: set output_s3_uri or s3_bucket for the training output")
        return f"s3://{self.bucket}/{'/'.join(p for p in (self.prefix, 'output') if p)}/"

    @contextmanager
    def _calling(self, action: str, passthrough: frozenset[str] = frozenset(),
                 base_model: str | None = None) -> Iterator[None]:
        """Turns AWS errors a user can act on into ProviderError; codes in passthrough are the caller's to handle."""
        from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

        try:
            yield
        except ClientError as err:
            if _code(err) in passthrough:
                raise
            raise _translate(err, action, self.region, base_model) from None
        except NoCredentialsError:
            raise ConfigError(f"Bedrock {action}: no AWS credentials found; set AWS_PROFILE or "
                              "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY") from None
        except EndpointConnectionError as err:
            raise ProviderError(f"Bedrock {action}: cannot reach {err.kwargs.get('endpoint_url')}; check the "
                                "network, finetune.anthropic.region and AWS_ENDPOINT_URL") from None


def _bucket_and_prefix(options: dict[str, Any]) -> tuple[str, str]:
    """s3_bucket + s3_prefix ("ftlib" by default), or s3_prefix alone as s3://bucket/prefix."""
    prefix = str(options.get("s3_prefix") or "")
    if prefix.startswith("s3://"):
        bucket, _, key = prefix[5:].partition("/")
        return bucket, key.strip("/")
    return str(options.get("s3_bucket") or ""), (prefix or "ftlib").strip("/")


def _has_credentials(session: Any) -> bool:
    """Walks boto3's chain (env, profile, SSO, process, container, instance role) without printing anything.

    The chain stops at the first source found, so the instance-metadata endpoint is probed only when nothing
    else is configured (and never with AWS_EC2_METADATA_DISABLED=true).
    """
    from botocore.exceptions import BotoCoreError

    try:
        return session.get_credentials() is not None
    except BotoCoreError:
        return False


def _require_supervised(spec: JobSpec) -> None:
    if spec.method != "supervised":
        raise ProviderError(f"Bedrock customizes Claude with supervised fine-tuning only, not {spec.method!r}; "
                            "set finetune.anthropic.method: supervised, or export the preference data for "
                            "open-weight training (Hugging Face format)")


def _utc(value: Any) -> datetime | None:
    """boto3's timestamps as aware UTC datetimes (a naive one is read as UTC)."""
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _job_name(job_id: str) -> str:
    """Bedrock takes a name or an ARN; moto only a name, and the name is the ARN's last path segment."""
    return job_id.rsplit("/", 1)[-1] if job_id.startswith("arn:") else job_id


def _hp_str(value: Any) -> str:
    """Bedrock wants strings; plain decimals (never 1e-05), whole numbers without a trailing .0 for int params."""
    if isinstance(value, bool):
        raise ValueError(f"hyperparameter value {value!r} must be a number")
    if isinstance(value, float):
        text = format(Decimal(repr(value)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def _tags(tags: Any) -> list[dict[str, str]]:
    """job_tags as a mapping or as Bedrock's own [{key, value}] list."""
    if not tags:
        return []
    if isinstance(tags, dict):
        return [{"key": str(k), "value": str(v)} for k, v in sorted(tags.items())]
    return [{"key": str(t["key"]), "value": str(t["value"])} for t in tags]


def _code(err: Any) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _message(err: Any) -> str:
    return str(err.response.get("Error", {}).get("Message", "") or err)


def _translate(err: Any, action: str, region: str, base_model: str | None = None) -> ProviderError:
    """AWS's own message plus the fix a user can apply."""
    code, message = _code(err), _message(err)
    head = f"Bedrock {action} failed ({code}): {message}"
    if code in _ACCESS:
        return ProviderError(
            f"{head}. Check that (1) model access to the base model is granted in the Bedrock console "
            f"(Model access, region {region}), (2) your AWS identity may call bedrock:*ModelCustomizationJob*, "
            "s3:PutObject and iam:PassRole on finetune.anthropic.role_arn, and (3) that role trusts "
            "bedrock.amazonaws.com and can read the training bucket and write output_s3_uri")
    if code == "ValidationException" and _about_base_model(message, base_model):
        return ProviderError(
            f"{head}. Claude 3 Haiku ({HAIKU}) is the only Claude model Bedrock fine-tunes; it is Legacy with end of "
            f"life {HAIKU_EOL}, in {DEFAULT_REGION} only, so Bedrock may refuse new jobs for it. Check base_model and "
            "region, or export the dataset (Hugging Face conversational format) and train an open-weight model")
    if code == "ValidationException":
        return ProviderError(f"{head}. Check finetune.anthropic.role_arn, the S3 URIs and the hyperparameters")
    if code == "ServiceQuotaExceededException":
        return ProviderError(f"{head}. Your Bedrock model customization quota in {region} is used up: wait for "
                             "running jobs to finish (Bedrock console, Custom models) or request an increase in "
                             "Service Quotas")
    if code in _THROTTLED:
        return ProviderError(f"{head}. AWS kept throttling after the SDK's retries: wait a few minutes and re-run "
                             "(re-running is safe: the job is submitted once)")
    if code in ("NoSuchBucket", "AllAccessDisabled"):
        return ConfigError(f"{head}. Create the bucket or fix finetune.anthropic.s3_bucket / s3_prefix")
    if code == "ResourceNotFoundException":
        return ProviderError(f"{head}. Check finetune.anthropic.region ({region}) and the job id")
    return ProviderError(head)


def _about_base_model(message: str, base_model: str | None) -> bool:
    text = message.lower()
    return bool(
        (base_model and base_model.lower() in text)
        or any(w in text for w in ("base model", "basemodel", "end of life", "legacy", "not supported for"))
    )
