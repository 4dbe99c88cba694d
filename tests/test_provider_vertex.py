"""The Gemini (Vertex AI) adapter through the real google-genai and google-cloud-storage SDKs, against emulators on
127.0.0.1: the in-repo Vertex tuningJobs emulator and gcp-storage-emulator."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emulators.gcs import gcs_emulator, storage_client
from emulators.vertex_server import VertexEmulator
from google.oauth2.credentials import Credentials

from ftlib import targets
from ftlib.digest import sha256_file
from ftlib.jobs import hyperparameters
from ftlib.jobs import submit as jobs
from ftlib.jobs.ledger import SUBMITTING, Ledger
from ftlib.jobs.spec import ConfigError, JobSpec, JobState, ProviderError
from ftlib.targets.gemini.backend import LABEL_KEY, VertexBackend

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "ftlib-test"
FAST_RETRY = {"retry_attempts": 4, "retry_initial_delay": 0.01, "retry_max_delay": 0.05, "retry_jitter": 0.0}
OPTIONS = {"project": "proj", "location": "us-central1", "gcs_uri": f"gs://{BUCKET}/tuning", **FAST_RETRY}
GOOGLE_VARS = ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION",
               "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_USE_ENTERPRISE",
               "GOOGLE_VERTEX_BASE_URL", "GCE_METADATA_HOST", "K_SERVICE", "CLOUD_RUN_JOB", "FUNCTION_TARGET")


@pytest.fixture(autouse=True)
def no_host_google(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing from this machine's Google setup (keys, gcloud's ADC file, a GCE runtime) leaks into a test."""
    for var in GOOGLE_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setattr("ftlib.targets.gemini.backend._gce_metadata.detect_gce_residency_linux", lambda: False)


@pytest.fixture
def vertex(monkeypatch: pytest.MonkeyPatch) -> Iterator[VertexEmulator]:
    with VertexEmulator() as emu:
        monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", emu.url)
        yield emu


@pytest.fixture
def gcs() -> Iterator[str]:
    with gcs_emulator(BUCKET) as url:
        yield url


def provider(**options: Any) -> VertexBackend:
    return VertexBackend({**OPTIONS, **options}, credentials=Credentials(token="test-token"))


def make_spec(tmp_path: Path, *, lines: int = 3, **kw: Any) -> JobSpec:
    train = tmp_path / "train.jsonl"
    rows = [{"contents": [{"role": "user", "parts": [{"text": f"q{i}"}]},
                          {"role": "model", "parts": [{"text": f"a{i}"}]}]} for i in range(lines)]
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    fields: dict[str, Any] = {"provider": "gemini", "base_model": "gemini-2.5-flash", "method": "supervised",
                              "train_file": train, "train_sha256": sha256_file(train),
                              "hyperparameters": {"epoch_count": 2}}
    return JobSpec(**{**fields, **kw})


def poll_until_terminal(p: VertexBackend, job_id: str) -> list[str]:
    states = []
    for _ in range(10):
        status = p.get_job(job_id)
        states.append(status.raw_state)
        if status.state.terminal:
            return states
    raise AssertionError(f"job never finished: {states}")


# uploads


def test_upload_names_object_by_sha256_and_reuses_identical_bytes(gcs: str, tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    p = provider()
    uri = p.upload(spec.train_file, spec.train_sha256, spec)
    assert uri == f"gs://{BUCKET}/tuning/{spec.train_sha256}/train.jsonl"

    blob = storage_client().bucket(BUCKET).get_blob(f"tuning/{spec.train_sha256}/train.jsonl")
    generation = blob.generation
    assert blob.md5_hash == base64.b64encode(hashlib.md5(spec.train_file.read_bytes()).digest()).decode()
    assert blob.download_as_bytes() == spec.train_file.read_bytes()

    assert provider().upload(spec.train_file, spec.train_sha256, spec) == uri  # a fresh process, same bytes
    assert storage_client().bucket(BUCKET).get_blob(f"tuning/{spec.train_sha256}/train.jsonl").generation == generation


def test_upload_replaces_an_object_whose_checksum_does_not_match(gcs: str, tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    name = f"tuning/{spec.train_sha256}/train.jsonl"
    storage_client().bucket(BUCKET).blob(name).upload_from_string(b"half a fi")  # e.g. an interrupted copy
    provider().upload(spec.train_file, spec.train_sha256, spec)
    assert storage_client().bucket(BUCKET).get_blob(name).download_as_bytes() == spec.train_file.read_bytes()


def test_upload_refuses_a_file_changed_since_it_was_hashed(gcs: str, tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    spec.train_file.write_text('{"contents": []}\n')
    with pytest.raises(ProviderError, match="changed since it was hashed"):
        provider().upload(spec.train_file, spec.train_sha256, spec)
    assert list(storage_client().list_blobs(BUCKET)) == []


# jobs


def test_create_tags_the_job_with_its_key_and_find_job_uses_the_label(vertex: VertexEmulator, tmp_path: Path) -> None:
    spec = make_spec(tmp_path, hyperparameters={"epoch_count": 3, "learning_rate_multiplier": 0.5, "adapter_size": 4},
                     suffix="support")
    p = provider(tuned_model_display_name="acme")
    assert p.find_job(spec) is None
    job_id = p.create_job(spec, "gs://b/t/train.jsonl", "gs://b/t/validation.jsonl")

    assert p.find_job(spec) == job_id
    assert provider().find_job(make_spec(tmp_path, attempt=1)) is None  # another key
    assert vertex.label_counts(LABEL_KEY) == {spec.key: 1}
    (body,) = vertex.jobs_with_label(LABEL_KEY, spec.key)
    sft = body["supervisedTuningSpec"]
    assert body["baseModel"] == "gemini-2.5-flash"
    assert sft["trainingDatasetUri"] == "gs://b/t/train.jsonl"
    assert sft["validationDatasetUri"] == "gs://b/t/validation.jsonl"
    assert sft["hyperParameters"] == {"epochCount": 3, "learningRateMultiplier": 0.5,
                                      "adapterSize": "ADAPTER_SIZE_FOUR"}
    assert body["tunedModelDisplayName"] == f"acme-support-{spec.key[:8]}"
    assert any("filter=labels.ftlib_job_key" in path for _, path in vertex.requests)


def test_dpo_maps_to_preference_tuning_with_beta(vertex: VertexEmulator, tmp_path: Path) -> None:
    spec = make_spec(tmp_path, method="dpo", hyperparameters={"beta": 0.1, "epoch_count": 1})
    provider().create_job(spec, "gs://b/t/train.jsonl", None)
    (body,) = vertex.jobs_with_label(LABEL_KEY, spec.key)
    assert "supervisedTuningSpec" not in body
    assert body["preferenceOptimizationSpec"]["hyperParameters"] == {"beta": 0.1, "epochCount": 1}


def test_find_job_scans_pages_when_the_filter_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = make_spec(tmp_path)
    with VertexEmulator(honour_filter=False) as emu:
        monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", emu.url)
        body = {"baseModel": "gemini-2.5-flash", "supervisedTuningSpec": {"trainingDatasetUri": "gs://b/x"}}
        _, target = emu._create("proj", "us-central1", {**body, "labels": {LABEL_KEY: spec.key}})
        for i in range(150):  # newer jobs push the target onto the second page
            emu._create("proj", "us-central1", {**body, "labels": {LABEL_KEY: f"{i:032x}"}})
        assert provider().find_job(spec) == target["name"]
        assert sum("pageToken=" in path for _, path in emu.requests) >= 1


def test_job_runs_to_succeeded_with_the_endpoint_as_model_id(vertex: VertexEmulator, tmp_path: Path) -> None:
    p = provider()
    job_id = p.create_job(make_spec(tmp_path), "gs://b/t/train.jsonl", None)
    assert poll_until_terminal(p, job_id) == ["JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"]
    status = p.get_job(job_id)
    assert status.state is JobState.SUCCEEDED
    assert status.model_id == vertex.jobs[job_id].body["tunedModel"]["endpoint"]
    assert status.model_id.startswith("projects/proj/locations/us-central1/endpoints/")
    job_number = job_id.rsplit("/", 1)[1]
    assert status.console_url is not None and job_number in status.console_url and "project=proj" in status.console_url
    assert [s.job_id for s in p.list_jobs()] == [job_id]


def test_a_failed_job_reports_the_providers_error(vertex: VertexEmulator, tmp_path: Path) -> None:
    vertex.fail_next_job("Dataset line 3: contents must alternate between user and model")
    p = provider()
    job_id = p.create_job(make_spec(tmp_path), "gs://b/t/train.jsonl", None)
    assert poll_until_terminal(p, job_id)[-1] == "JOB_STATE_FAILED"
    status = p.get_job(job_id)
    assert status.state is JobState.FAILED
    assert status.error == "Dataset line 3: contents must alternate between user and model"
    assert status.model_id is None


def test_cancel(vertex: VertexEmulator, tmp_path: Path) -> None:
    p = provider()
    job_id = p.create_job(make_spec(tmp_path), "gs://b/t/train.jsonl", None)
    p.cancel(job_id)
    assert p.get_job(job_id).state is JobState.CANCELLED
    with pytest.raises(ProviderError, match="final state"):
        p.cancel(job_id)


# transient failures: the SDK's retry options, and no duplicate job ever


@pytest.mark.parametrize("code", [429, 500, 503])
def test_transient_errors_are_retried_by_the_sdk(vertex: VertexEmulator, tmp_path: Path, code: int) -> None:
    p = provider()
    job_id = p.create_job(make_spec(tmp_path), "gs://b/t/train.jsonl", None)
    before = len(vertex.requests)
    vertex.fail_next(2, code, method="GET")
    assert p.get_job(job_id).state is JobState.RUNNING
    assert len(vertex.requests) - before == 3


def test_retries_give_up_with_the_providers_message_and_a_fix(vertex: VertexEmulator, tmp_path: Path) -> None:
    vertex.fail_next(10, 500)
    with pytest.raises(ProviderError, match=r"500 INTERNAL Injected failure 500.*re-run") as err:
        provider().find_job(make_spec(tmp_path))
    assert "retry" not in type(err.value).__name__.lower()
    assert len(vertex.requests) == FAST_RETRY["retry_attempts"]


def test_slow_answers_time_out_and_are_retried(vertex: VertexEmulator, tmp_path: Path) -> None:
    vertex.slow_next(1, 1.5, method="GET")
    started = time.monotonic()
    assert provider(timeout_seconds=0.5).find_job(make_spec(tmp_path)) is None
    assert time.monotonic() - started < 1.5
    assert len(vertex.requests) == 2


def test_create_is_retried_on_429(vertex: VertexEmulator, tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    vertex.fail_next(2, 429, method="POST")
    job_id = provider().create_job(spec, "gs://b/t/train.jsonl", None)
    assert vertex.label_counts(LABEL_KEY) == {spec.key: 1}
    assert job_id in vertex.jobs


def test_create_answered_with_500_after_storing_finds_the_job_instead_of_duplicating(
    vertex: VertexEmulator, tmp_path: Path
) -> None:
    spec = make_spec(tmp_path)
    vertex.fail_after_create = 500
    job_id = provider().create_job(spec, "gs://b/t/train.jsonl", None)
    assert vertex.label_counts(LABEL_KEY) == {spec.key: 1}
    assert job_id in vertex.jobs


def test_create_refused_with_500_is_an_error_not_a_duplicate(vertex: VertexEmulator, tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    vertex.fail_next(1, 500, method="POST")
    with pytest.raises(ProviderError, match="prevents a duplicate"):
        provider().create_job(spec, "gs://b/t/train.jsonl", None)
    assert vertex.label_counts(LABEL_KEY) == {}


# errors a user can act on


def test_permission_denied_says_which_role_to_grant(vertex: VertexEmulator, tmp_path: Path) -> None:
    vertex.fail_next(1, 403)
    with pytest.raises(ProviderError, match=r"403 PERMISSION_DENIED.*roles/aiplatform.user in project proj"):
        provider().find_job(make_spec(tmp_path))


def test_quota_exhausted_on_create_says_what_to_do(vertex: VertexEmulator, tmp_path: Path) -> None:
    vertex.fail_next(10, 429, method="POST")
    with pytest.raises(ProviderError, match=r"429 RESOURCE_EXHAUSTED.*quota.*us-central1"):
        provider().create_job(make_spec(tmp_path), "gs://b/t/train.jsonl", None)


def test_invalid_base_model_names_a_tunable_one(vertex: VertexEmulator, tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match=r"gemini-1.0-pro is not supported.*gemini-2.5-flash"):
        provider().create_job(make_spec(tmp_path, base_model="gemini-1.0-pro"), "gs://b/t/train.jsonl", None)
    assert vertex.jobs == {}


def test_vertex_specific_hyperparameters_are_checked_before_any_upload(tmp_path: Path) -> None:
    p = provider()
    with pytest.raises(ProviderError, match=r"adapter_size 3 is not supported; use one of \[1, 2, 4, 8, 16\]"):
        p.check_spec(make_spec(tmp_path, hyperparameters={"adapter_size": 3}))
    with pytest.raises(ProviderError, match=r"\['beta'\] are not supported for method supervised"):
        p.check_spec(make_spec(tmp_path, hyperparameters={"beta": 0.1}))
    gemini = targets.get("gemini")
    with pytest.raises(ValueError, match="epoch_count=0: input should be greater than or equal to 1"):
        hyperparameters.check(gemini, "supervised", {"epoch_count": 0})
    with pytest.raises(ValueError, match="learning_rate_multiplier=0: input should be greater than 0"):
        hyperparameters.check(gemini, "supervised", {"learning_rate_multiplier": 0})
    with pytest.raises(ValueError, match="adapter_size=3"):
        hyperparameters.check(gemini, "supervised", {"adapter_size": 3})
    assert hyperparameters.check(gemini, "dpo", {"beta": 0.1, "adapter_size": 8}) == {"adapter_size": 8, "beta": 0.1}


# configuration, checked without any network


@pytest.mark.parametrize("how", ["option", "GOOGLE_API_KEY", "GEMINI_API_KEY"])
def test_api_key_configuration_is_refused_up_front(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    secret = "AIza-very-secret-key"
    options = {"gcs_uri": "gs://b/p"}
    if how == "option":
        options |= {"project": "proj", "api_key": secret}
    else:
        monkeypatch.setenv(how, secret)
    p = VertexBackend(options)
    with pytest.raises(ConfigError, match="only on Vertex AI since 2025") as err:
        p.check_config()
    assert "GOOGLE_CLOUD_PROJECT" in str(err.value) and "application-default login" in str(err.value)
    assert secret not in str(err.value)
    with pytest.raises(ConfigError, match="only on Vertex AI"):  # and no call gets past it either
        p.find_job(JobSpec("gemini", "gemini-2.5-flash", "supervised", Path("t.jsonl"), "0" * 64))


def test_an_api_key_next_to_a_vertex_project_is_not_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "AIza-other")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "proj")
    VertexBackend({"gcs_uri": "gs://b/p"}, credentials=Credentials(token="t")).check_config()


@pytest.mark.parametrize(
    ("options", "env", "message"),
    [
        ({"gcs_uri": "gs://b/p"}, {}, "set GOOGLE_CLOUD_PROJECT"),
        ({"project": "proj"}, {}, "gcs_uri must be a gs://bucket/prefix"),
        ({"project": "proj", "gcs_uri": "s3://b/p"}, {}, "gcs_uri must be a gs://bucket/prefix"),
        ({"project": "proj", "gcs_uri": "gs://b/p"}, {}, "gcloud auth application-default login"),
        ({"project": "proj", "gcs_uri": "gs://b/p"}, {"GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/key.json"},
         "GOOGLE_APPLICATION_CREDENTIALS points to /nonexistent/key.json"),
        ({"project": "proj", "gcs_uri": "gs://b/p", "adapter_size": 4}, {}, "belongs with the hyperparameters"),
    ],
)
def test_check_config_names_what_to_set(monkeypatch: pytest.MonkeyPatch, options: dict[str, Any],
                                        env: dict[str, str], message: str) -> None:
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=message):
        VertexBackend(options).check_config()


def test_check_config_accepts_project_from_env_and_a_key_file(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    key = tmp_path / "key.json"
    key.write_text("{}")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "proj")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "europe-west4")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    p = VertexBackend({"gcs_uri": "gs://b"})
    p.check_config()
    assert (p.project, p.location) == ("proj", "europe-west4")
    assert VertexBackend({}).location == "europe-west4"
    monkeypatch.delenv("GOOGLE_CLOUD_LOCATION")
    assert VertexBackend({}).location == "us-central1"


# the whole path: jobs.submit_once + wait with this adapter


def test_submit_once_and_wait_record_the_tuned_endpoint(vertex: VertexEmulator, gcs: str, tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    registry = Ledger(tmp_path / "models")
    p = provider()
    job_id = jobs.submit_once(p, spec, registry)
    assert jobs.submit_once(provider(), spec, registry) == job_id
    status = jobs.wait(p, job_id, 30, jobs.Poll(0.01, 1.0, 0.01), ledger=registry)
    assert status.state is JobState.SUCCEEDED
    record = registry.get("gemini", spec.key)
    assert record["model_id"] == status.model_id == vertex.jobs[job_id].body["tunedModel"]["endpoint"]
    assert record["train_ref"] == f"gs://{BUCKET}/tuning/{spec.train_sha256}/train.jsonl"
    assert vertex.label_counts(LABEL_KEY) == {spec.key: 1}


SUBMITTER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from google.oauth2.credentials import Credentials
    from ftlib.jobs import submit as jobs
    from ftlib.jobs.spec import JobSpec
    from ftlib.targets.gemini.backend import VertexBackend
    from ftlib.jobs.ledger import Ledger

    options, spec, models = json.loads(sys.argv[1])
    spec["train_file"] = Path(spec["train_file"])
    provider = VertexBackend(options, credentials=Credentials(token="test-token"))
    print(jobs.submit_once(provider, JobSpec(**spec), Ledger(models)))
""")


def test_a_submitter_killed_after_create_leaves_one_job_that_a_rerun_adopts(
    vertex: VertexEmulator, gcs: str, tmp_path: Path
) -> None:
    spec = make_spec(tmp_path)
    models = tmp_path / "models"
    args = [OPTIONS, {"provider": spec.provider, "base_model": spec.base_model, "method": spec.method,
                      "train_file": str(spec.train_file), "train_sha256": spec.train_sha256,
                      "hyperparameters": spec.hyperparameters}, str(models)]
    vertex.hang_after_create = True
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", SUBMITTER, json.dumps(args)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while vertex.label_counts(LABEL_KEY)[spec.key] == 0:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the submitter never created its job"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # the job exists, the submitter never learnt its id
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    registry = Ledger(models)
    crashed = registry.get("gemini", spec.key)
    assert crashed["status"] == SUBMITTING and not crashed.get("job_id")

    vertex.hang_after_create = False
    vertex.release()
    p = provider()
    job_id = jobs.submit_once(p, spec, registry)
    status = jobs.wait(p, job_id, 30, jobs.Poll(0.01, 1.0, 0.01), ledger=registry)

    assert vertex.label_counts(LABEL_KEY) == {spec.key: 1}
    assert job_id == next(iter(vertex.jobs))
    assert registry.get("gemini", spec.key)["model_id"] == status.model_id
    assert registry.index()[spec.train_sha256]["gemini"]["model_id"] == status.model_id


# stuck states resolve


def test_a_vanished_job_and_a_deleted_upload_resolve(vertex: VertexEmulator, gcs: str, tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from ftlib.errors import JobNotFound

    spec, ledger, out = make_spec(tmp_path), Ledger(tmp_path / "models"), io.StringIO()
    con = Console(file=out, width=300)
    p = provider()
    name = jobs.submit_once(p, spec, ledger, console=con)
    vertex.jobs.pop(name)  # deleted, or the ledger came from another project
    with pytest.raises(JobNotFound) as err:
        jobs.wait(p, name, None, jobs.Poll(0, 1, 0), ledger=ledger, console=con, sleep=lambda s: None)
    assert f"gemini has no job {name}" in str(err.value)
    assert f"delete {ledger.job_path('gemini', spec.key)} and re-run" in str(err.value)

    object_name = f"tuning/{spec.train_sha256}/train.jsonl"
    storage_client().bucket(BUCKET).blob(object_name).delete()  # a bucket lifecycle rule removed it
    jobs.submit_once(p, JobSpec(**{**spec.__dict__, "attempt": 1}), ledger, console=con)
    assert "is gone at the provider (deleted or expired); forgetting it and uploading again" in out.getvalue()
    assert storage_client().bucket(BUCKET).get_blob(object_name) is not None
