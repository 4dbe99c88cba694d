"""The Bedrock adapter through the real boto3 against moto's server on 127.0.0.1 (S3 + Bedrock model customization)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from emulators.moto_server import bedrock_jobs, make_bucket, moto_aws, moto_url, set_job_status

from ftlib.jobs.spec import ConfigError, JobSpec, JobState, ProviderError
from ftlib.targets.anthropic.backend import BedrockBackend
from ftlib.targets.anthropic.models import HAIKU

__all__ = ["moto_aws", "moto_url"]  # fixtures, imported so pytest finds them

REGION = "us-west-2"
BUCKET = "ftlib-train"
ROLE = "arn:aws:iam::123456789012:role/ftlib-bedrock"
OPTIONS = {"role_arn": ROLE, "s3_bucket": BUCKET, "region": REGION, "job_tags": {"team": "ml"}}
LINE = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'


def _file(tmp_path: Path, name: str = "train.jsonl", data: bytes = LINE * 3) -> tuple[Path, str]:
    path = tmp_path / name
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def _spec(tmp_path: Path, **over: Any) -> JobSpec:
    path, sha = _file(tmp_path)
    fields: dict[str, Any] = {"provider": "anthropic", "base_model": HAIKU, "method": "supervised", "train_file": path,
                              "train_sha256": sha, "hyperparameters": {"epochCount": 3, "learningRateMultiplier": 0.5}}
    return JobSpec(**{**fields, **over})


@pytest.fixture
def provider(moto_aws: str) -> BedrockBackend:
    make_bucket(BUCKET, REGION)
    return BedrockBackend(dict(OPTIONS))


def _count_calls(client: Any, operation: str) -> list[int]:
    calls: list[int] = []
    client.meta.events.register(f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}",
                                 lambda **_: calls.append(1))
    return calls


# configuration -------------------------------------------------------------------------------------------------

def test_check_config_names_every_missing_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ConfigError) as err:
        BedrockBackend({}).check_config()
    text = str(err.value)
    assert "role_arn" in text and "s3_bucket" in text and "AWS credentials" in text and "AWS_PROFILE" in text

    with pytest.raises(ConfigError, match="not an AWS region"):
        BedrockBackend({**OPTIONS, "region": "oregon"}).check_config()
    with pytest.raises(ConfigError, match="not an IAM role ARN"):
        BedrockBackend({**OPTIONS, "role_arn": "ftlib-bedrock"}).check_config()


def test_check_config_passes_with_chain_credentials_and_never_shows_them(monkeypatch: pytest.MonkeyPatch,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSECRETLOOKING")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value")
    provider = BedrockBackend({"role_arn": ROLE, "s3_prefix": f"s3://{BUCKET}/runs/a"})
    provider.check_config()  # no server running: it must not need the network
    assert (provider.bucket, provider.prefix, provider.region) == (BUCKET, "runs/a", "us-west-2")
    out = capsys.readouterr()
    assert "very-secret-value" not in out.out + out.err

    with pytest.raises(ConfigError, match="output_s3_uri") as err:
        BedrockBackend({**OPTIONS, "output_s3_uri": "bucket/out"}).check_config()
    assert "very-secret-value" not in str(err.value)


# uploads ---------------------------------------------------------------------------------------------------------

def test_upload_is_content_addressed_checksummed_and_reused(provider: BedrockBackend, tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    puts = _count_calls(provider.s3, "PutObject")
    uri = provider.upload(spec.train_file, spec.train_sha256, spec)
    assert uri == f"s3://{BUCKET}/ftlib/{spec.train_sha256}/train.jsonl"
    s3 = boto3.client("s3", region_name=REGION)
    key = uri.split("/", 3)[3]
    head = s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(LINE * 3).digest()).decode()
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == LINE * 3

    assert provider.upload(spec.train_file, spec.train_sha256, spec) == uri
    assert len(puts) == 1  # the second call found the same bytes and did not upload again


def test_upload_replaces_an_object_with_other_bytes_under_its_key(provider: BedrockBackend, tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    key = f"ftlib/{spec.train_sha256}/train.jsonl"
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key=key, Body=b"truncated")
    provider.upload(spec.train_file, spec.train_sha256, spec)
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert body == LINE * 3


def test_upload_refuses_bytes_that_do_not_match_the_sha256(provider: BedrockBackend, tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    spec.train_file.write_bytes(LINE)  # the file changed after it was hashed
    with pytest.raises(ProviderError, match="changed after it was hashed"):
        provider.upload(spec.train_file, spec.train_sha256, spec)
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=BUCKET)
    assert listed.get("KeyCount", 0) == 0  # nothing left under a key that lies about its content


def test_upload_to_a_missing_bucket_says_what_to_fix(moto_aws: str, tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    with pytest.raises(ConfigError, match=r"NoSuchBucket.*s3_bucket"):
        BedrockBackend(dict(OPTIONS)).upload(spec.train_file, spec.train_sha256, spec)


# jobs ----------------------------------------------------------------------------------------------------------------

def test_create_then_find_job_by_key(provider: BedrockBackend, tmp_path: Path) -> None:
    spec = _spec(tmp_path, suffix="support bot")
    assert provider.find_job(spec) is None
    train = provider.upload(spec.train_file, spec.train_sha256, spec)
    arn = provider.create_job(spec, train, f"s3://{BUCKET}/val.jsonl")
    assert provider.find_job(spec) == arn
    assert provider.find_job(_spec(tmp_path, attempt=1)) is None  # another key is another job

    job = bedrock_jobs(REGION)[provider.job_name(spec)]
    assert job.job_arn == arn
    assert job.base_model_identifier == HAIKU and job.customization_type == "FINE_TUNING" and job.role_arn == ROLE
    assert job.training_data_config == {"s3Uri": train}
    assert job.validation_data_config == {"validators": [{"s3Uri": f"s3://{BUCKET}/val.jsonl"}]}
    assert job.output_data_config == {"s3Uri": f"s3://{BUCKET}/ftlib/output/"}
    assert job.hyper_parameters == {"epochCount": "3", "learningRateMultiplier": "0.5"}
    assert {"key": "ftlib-job-key", "value": spec.key} in job.job_tags
    assert {"key": "team", "value": "ml"} in job.job_tags
    # Bedrock's own name rules, from the botocore model
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9\+\-\.])*", job.job_name) and len(job.job_name) <= 63
    assert re.fullmatch(r"([0-9a-zA-Z][_-]?){1,63}", job.custom_model_name) and len(job.custom_model_name) <= 63
    assert re.fullmatch(r"[a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?", job.client_request_token)
    assert "support-bot" in job.custom_model_name


def test_create_twice_for_one_key_leaves_one_job(provider: BedrockBackend, tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    first = provider.create_job(spec, f"s3://{BUCKET}/train.jsonl", None)
    second = provider.create_job(spec, f"s3://{BUCKET}/train.jsonl", None)  # moto: ResourceInUseException
    assert first == second
    listed = boto3.client("bedrock", region_name=REGION).list_model_customization_jobs()
    assert [j["jobArn"] for j in listed["modelCustomizationJobSummaries"]] == [first]
    assert [s.job_id for s in provider.list_jobs()] == [first]


def test_create_refuses_preference_training(provider: BedrockBackend, tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="supervised fine-tuning only"):
        provider.create_job(_spec(tmp_path, method="dpo"), f"s3://{BUCKET}/t.jsonl", None)
    assert bedrock_jobs(REGION) == {}


@pytest.mark.parametrize(("raw", "state"), [
    ("InProgress", JobState.RUNNING), ("Completed", JobState.SUCCEEDED), ("Failed", JobState.FAILED),
    ("Stopping", JobState.CANCELLED), ("Stopped", JobState.CANCELLED), ("Paused", JobState.UNKNOWN),
])
def test_get_job_maps_states(provider: BedrockBackend, tmp_path: Path, raw: str, state: JobState) -> None:
    spec = _spec(tmp_path)
    arn = provider.create_job(spec, f"s3://{BUCKET}/train.jsonl", None)
    name = provider.job_name(spec)
    set_job_status(REGION, name, raw, failure_message="Training data line 7: messages must alternate")
    for job_id in (arn, name):  # the ARN (what create returns) and the bare name both work
        status = provider.get_job(job_id)
        assert (status.job_id, status.state, status.raw_state) == (arn, state, raw)
        model_arn = bedrock_jobs(REGION)[name].output_model_arn
        assert status.model_id == (model_arn if raw == "Completed" else None)
        assert status.error == ("Training data line 7: messages must alternate" if raw == "Failed" else None)
        assert status.console_url and f"region={REGION}" in status.console_url


def test_cancel_stops_the_job(provider: BedrockBackend, tmp_path: Path) -> None:
    arn = provider.create_job(_spec(tmp_path), f"s3://{BUCKET}/train.jsonl", None)
    provider.cancel(arn)
    assert provider.get_job(arn).state is JobState.CANCELLED


def test_unknown_job_says_where_it_looked(provider: BedrockBackend) -> None:
    with pytest.raises(ProviderError, match=r"ResourceNotFoundException.*region"):
        provider.get_job("arn:aws:bedrock:us-west-2:123456789012:model-customization-job/ftlib-nope")


# errors a user can act on ------------------------------------------------------------------------------------------

@contextmanager
def _stubbed_create(provider: BedrockBackend, code: str, message: str) -> Iterator[Stubber]:
    with Stubber(provider.bedrock) as stub:
        stub.add_client_error("create_model_customization_job", service_error_code=code, service_message=message,
                              http_status_code=400)
        yield stub


def _create_error(provider: BedrockBackend, spec: JobSpec, code: str, message: str) -> str:
    with _stubbed_create(provider, code, message), pytest.raises(ProviderError) as err:
        provider.create_job(spec, f"s3://{BUCKET}/train.jsonl", None)
    return str(err.value)


def test_error_translation(moto_aws: str, tmp_path: Path) -> None:
    provider, spec = BedrockBackend(dict(OPTIONS)), _spec(tmp_path)
    text = _create_error(provider, spec, "AccessDeniedException", "You don't have access to the model")
    assert "You don't have access to the model" in text
    assert "Model access" in text and "iam:PassRole" in text and "role_arn" in text

    text = _create_error(provider, spec, "ValidationException",
                         f"The provided model identifier {HAIKU} is not supported for customization")
    assert "Legacy" in text and "2026-09-10" in text and "open-weight" in text

    text = _create_error(provider, spec, "ValidationException", "hyperParameters.batchSize must be at least 8")
    assert "batchSize must be at least 8" in text and "Legacy" not in text

    text = _create_error(provider, spec, "ServiceQuotaExceededException", "Limit of 2 jobs reached")
    assert "Limit of 2 jobs reached" in text and "Service Quotas" in text


class _Recorder(BaseHTTPRequestHandler):
    """A stand-in AWS endpoint: answers every request with a canned status and body, and records it."""

    status = 400
    headers_out: dict[str, str] = {}  # noqa: RUF012
    body = b"{}"
    seen: list[tuple[str, str, dict[str, str], bytes]] = []  # noqa: RUF012

    def _reply(self) -> None:
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append((self.command, self.path, dict(self.headers), data))
        self.send_response(self.status)
        for k, v in {"Content-Type": "application/json", **self.headers_out}.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = _reply

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def _recorder(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Iterator[type[_Recorder]]:
    handler = type("Handler", (_Recorder,), {"status": status, "body": json.dumps(body).encode(),
                                             "headers_out": headers or {}, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        handler.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
        yield handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_throttling_is_retried_by_the_sdk_then_explained(moto_aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.retries.standard import ExponentialBackoff

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)  # retries, without the sleeps
    with _recorder(400, {"message": "Rate exceeded"}, {"x-amzn-ErrorType": "ThrottlingException"}) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)  # type: ignore[attr-defined]
        provider = BedrockBackend({**OPTIONS, "max_retries": 2})
        with pytest.raises(ProviderError, match=r"Rate exceeded.*re-run") as err:
            provider.get_job("ftlib-abc")
        assert len(server.seen) == 3  # the first attempt + 2 retries by botocore's standard mode, no hand-written loop
        assert "ThrottlingException" in str(err.value)


# smoke test through the anthropic SDK ------------------------------------------------------------------------------

def test_smoke_test_reaches_bedrock_runtime_through_aws_endpoint_url(provider: BedrockBackend) -> None:
    # moto implements bedrock-runtime InvokeModel with an empty reply: the call must go there, signed, and not crash.
    assert provider.smoke_test("arn:aws:bedrock:us-west-2:123456789012:provisioned-model/abc123", "ping") == ""


def test_smoke_test_sends_a_signed_message_and_returns_the_text(moto_aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    reply = {"id": "msg_1", "type": "message", "role": "assistant", "model": "x", "stop_reason": "end_turn",
             "content": [{"type": "text", "text": "pong"}], "usage": {"input_tokens": 1, "output_tokens": 1}}
    model = "arn:aws:bedrock:us-west-2:123456789012:provisioned-model/abc123"
    with _recorder(200, reply) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)  # type: ignore[attr-defined]
        assert BedrockBackend(dict(OPTIONS)).smoke_test(model, "ping") == "pong"
        method, path, headers, body = server.seen[0]
    assert method == "POST" and path.endswith("/invoke") and "provisioned-model%2Fabc123" in path
    assert "us-west-2/bedrock/aws4_request" in headers["Authorization"]
    sent = json.loads(body)
    assert sent["messages"] == [{"role": "user", "content": "ping"}] and sent["anthropic_version"]

    with _recorder(400, {"message": "on-demand throughput isn't supported"},
                   {"x-amzn-ErrorType": "ValidationException"}) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)  # type: ignore[attr-defined]
        with pytest.raises(ProviderError, match="Provisioned Throughput"):
            BedrockBackend(dict(OPTIONS)).smoke_test(model, "ping")


# the shared job core (jobs.submit_once + wait) driving this adapter -------------------------------------------------

CRASH_AFTER_CREATE = """
import json, os, sys
from pathlib import Path
from ftlib.targets.anthropic.backend import BedrockBackend
from ftlib.jobs.spec import JobSpec
from ftlib.jobs.submit import submit_once
from ftlib.jobs.ledger import Ledger

args = json.loads(sys.argv[1])
provider = BedrockBackend(args["options"])
# Bedrock has answered with the job ARN; the process dies before ftlib can write it to the ledger.
provider.bedrock.meta.events.register("after-call.bedrock.CreateModelCustomizationJob", lambda **_: os._exit(137))
spec = JobSpec(**{**args["spec"], "train_file": Path(args["spec"]["train_file"])})
submit_once(provider, spec, Ledger(args["registry"]))
print("not reached")
"""


def _quiet() -> Any:
    import io

    from rich.console import Console

    return Console(file=io.StringIO())


def test_submit_once_and_wait_against_moto(provider: BedrockBackend, tmp_path: Path) -> None:
    from ftlib.jobs.ledger import Ledger
    from ftlib.jobs.submit import Poll, submit_once, wait

    val, val_sha = _file(tmp_path, "validation.jsonl", LINE)
    spec = _spec(tmp_path, validation_file=val, validation_sha256=val_sha)
    registry = Ledger(tmp_path / "models")
    creates = _count_calls(provider.bedrock, "CreateModelCustomizationJob")
    job_id = submit_once(provider, spec, registry, console=_quiet())
    assert submit_once(provider, spec, registry, console=_quiet()) == job_id
    assert len(creates) == 1
    record = registry.get("anthropic", spec.key)
    assert record and record["job_id"] == job_id and record["status"] == "submitted"
    assert record["train_ref"] == f"s3://{BUCKET}/ftlib/{spec.train_sha256}/train.jsonl"
    assert record["validation_ref"] == f"s3://{BUCKET}/ftlib/{val_sha}/validation.jsonl"

    name = provider.job_name(spec)

    def training_finishes(_seconds: float) -> None:  # Bedrock finishing while ftlib sleeps between polls
        set_job_status(REGION, name, "Completed")

    status = wait(provider, job_id, deadline_s=60, poll=Poll(start=0.01), ledger=registry, console=_quiet(),
                  sleep=training_finishes)
    assert status.state is JobState.SUCCEEDED
    assert status.model_id == bedrock_jobs(REGION)[name].output_model_arn
    assert registry.get("anthropic", spec.key)["model_id"] == status.model_id  # type: ignore[index]


def test_wait_reports_bedrocks_failure_message(provider: BedrockBackend, tmp_path: Path) -> None:
    from ftlib.jobs.ledger import Ledger
    from ftlib.jobs.submit import Poll, submit_once, wait

    spec = _spec(tmp_path)
    registry = Ledger(tmp_path / "models")
    job_id = submit_once(provider, spec, registry, console=_quiet())
    set_job_status(REGION, provider.job_name(spec), "Failed", failure_message="Line 3: roles must alternate")
    with pytest.raises(ProviderError, match="Line 3: roles must alternate"):
        wait(provider, job_id, deadline_s=60, poll=Poll(start=0.01), ledger=registry, console=_quiet())
    assert registry.get("anthropic", spec.key)["status"] == "failed"  # type: ignore[index]


def test_crash_after_create_then_rerun_finds_the_job(provider: BedrockBackend, tmp_path: Path) -> None:
    import subprocess
    import sys

    from ftlib.jobs.ledger import Ledger
    from ftlib.jobs.submit import submit_once

    spec = _spec(tmp_path)
    args = {"options": OPTIONS, "registry": str(tmp_path / "models"),
            "spec": {"provider": spec.provider, "base_model": spec.base_model, "method": spec.method,
                     "train_file": str(spec.train_file), "train_sha256": spec.train_sha256,
                     "hyperparameters": spec.hyperparameters}}
    script = tmp_path / "crash.py"
    script.write_text(CRASH_AFTER_CREATE)
    done = subprocess.run([sys.executable, str(script), json.dumps(args)], capture_output=True, text=True,
                          timeout=120)  # inherits AWS_ENDPOINT_URL and the fake credentials
    assert done.returncode == 137, done.stderr
    assert "not reached" not in done.stdout
    registry = Ledger(tmp_path / "models")
    record = registry.get("anthropic", spec.key)
    assert record and record["status"] == "submitting" and not record.get("job_id")  # the ledger never saw the id
    assert len(bedrock_jobs(REGION)) == 1  # ...but Bedrock has the job

    creates = _count_calls(provider.bedrock, "CreateModelCustomizationJob")
    job_id = submit_once(provider, spec, registry, console=_quiet())
    assert creates == []  # found by its deterministic name, not created again
    jobs = boto3.client("bedrock", region_name=REGION).list_model_customization_jobs()
    assert [j["jobArn"] for j in jobs["modelCustomizationJobSummaries"]] == [job_id]
    assert registry.get("anthropic", spec.key)["job_id"] == job_id  # type: ignore[index]


# stuck states resolve ----------------------------------------------------------------------------------------------

def test_a_vanished_job_and_a_deleted_upload_resolve(provider: BedrockBackend, tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from ftlib.errors import JobNotFound
    from ftlib.jobs.ledger import Ledger
    from ftlib.jobs.submit import Poll, submit_once, wait

    spec, ledger, out = _spec(tmp_path), Ledger(tmp_path / "models"), io.StringIO()
    con = Console(file=out, width=300)
    arn = submit_once(provider, spec, ledger, console=con)
    del bedrock_jobs(REGION)[provider.job_name(spec)]  # gone at the provider (or a ledger from another account)
    with pytest.raises(JobNotFound) as err:
        wait(provider, arn, None, Poll(0, 1, 0), ledger=ledger, console=con, sleep=lambda s: None)
    assert f"delete {ledger.job_path('anthropic', spec.key)} and re-run" in str(err.value)

    train_ref = ledger.upload_ref("anthropic", spec.train_sha256)
    bucket, _, key = train_ref.removeprefix("s3://").partition("/")
    boto3.client("s3", region_name=REGION).delete_object(Bucket=bucket, Key=key)  # a lifecycle rule removed it
    again = JobSpec(**{**spec.__dict__, "attempt": 1})
    submit_once(provider, again, ledger, console=con)
    assert "is gone at the provider (deleted or expired); forgetting it and uploading again" in out.getvalue()
    assert boto3.client("s3", region_name=REGION).head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
