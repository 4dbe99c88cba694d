"""The library path: ftlib.finetune(Dataset) -> Job, through the real SDKs against the emulators on 127.0.0.1
(OpenAI and Vertex emulators, moto for Bedrock) and the local trainer with the tiny model.

What a user checks: one call gives a model id; a re-run (same process or a restarted kernel) and the CLI find the
same job instead of creating a second; status carries timestamps; events show the job's history; plain Python
keeps its ledger in the per-user home, never in the current folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import yaml
from emulators.gcs import gcs_emulator
from emulators.moto_server import make_bucket, moto_aws, moto_url, set_job_status
from emulators.openai_server import OpenAIEmulator
from emulators.vertex_server import VertexEmulator
from typer.testing import CliRunner

import ftlib
from ftlib import layout
from ftlib.dataset import Dataset, DatasetError
from ftlib.jobs.spec import JobState

__all__ = ["moto_aws", "moto_url"]  # fixtures, imported so pytest finds them

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent
BASE = "gpt-4o-mini-2024-07-18"


def pairs(n: int, tag: str = "Question") -> Dataset:
    return Dataset.from_pairs([(f"{tag} {i}: how do I export my invoices?", f"Answer {i}: open Billing, then Export.")
                               for i in range(n)], system="You are Ledgerly's support assistant.")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Plain Python: an empty working folder outside any project, FTLIB_HOME pointing at a per-test home."""
    work = tmp_path / "notebook"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv(layout.HOME_ENV, str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as e:
        for var in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_API_VERSION"):
            monkeypatch.delenv(var, raising=False)
        for var, value in e.env().items():
            monkeypatch.setenv(var, value)
        yield e


def aware(t: datetime | None) -> bool:
    return t is not None and t.tzinfo is not None and t.utcoffset().total_seconds() == 0


# where the ledger goes

def test_the_ledger_goes_to_the_project_or_the_per_user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "proj"
    (project / "notebooks").mkdir(parents=True)
    (project / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.chdir(project / "notebooks")
    found = layout.home()
    assert found.project and found.root == project.resolve() and found.models == project.resolve() / "models"
    assert found.backend_paths("local") == {"runs_dir": str(project.resolve() / ".ftlib" / "runs")}

    elsewhere = tmp_path / "scratch"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv(layout.HOME_ENV, str(tmp_path / "mine"))
    assert layout.home() == layout.Home((tmp_path / "mine").resolve(), False)
    assert layout.home().models == (tmp_path / "mine" / "models").resolve()
    monkeypatch.delenv(layout.HOME_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # platformdirs' user data dir on Linux
    if sys.platform.startswith("linux"):
        assert layout.home().root == tmp_path / "xdg" / "ftlib"
    assert layout.home(project) == layout.Home(project.resolve(), True)  # an explicit project wins


# one call, one job

def test_one_call_from_a_dataset_to_a_model_id_and_reruns_make_no_second_job(
        home: Path, emu: OpenAIEmulator) -> None:
    train, val = pairs(12), pairs(3, "Other question")
    job = ftlib.finetune(train, val, provider="openai", hyperparameters={"n_epochs": 2}, suffix="demo",
                         poll_interval=0.01, progress=False)
    [created] = emu.jobs_for_key(job.key)
    assert job.id == created["id"] and job.model_id == f"ft:{BASE}:ftlib:demo:{job.id}"
    assert created["method"]["supervised"]["hyperparameters"] == {"n_epochs": 2}
    assert emu.file_bytes[created["training_file"]].count(b"\n") == 12  # the Dataset, exported as OpenAI chat lines

    # the ledger lives in the per-user home, nothing in the current folder
    assert list(Path.cwd().iterdir()) == []
    record = orjson.loads((home / "models" / "jobs" / "openai" / f"{job.key}.json").read_bytes())
    assert (record["job_id"], record["status"], record["model_id"]) == (job.id, "succeeded", job.model_id)

    status = job.status()
    assert (status.state, status.raw_state, status.model_id) == (JobState.SUCCEEDED, "succeeded", job.model_id)
    assert status.trained_tokens and status.trained_tokens > 0 and status.error is None
    assert aware(status.created_at) and aware(status.finished_at) and status.created_at <= status.finished_at
    assert abs((datetime.now(UTC) - status.created_at).total_seconds()) < 120
    events = job.events()
    assert events[0].message == "Created fine-tuning job"
    assert "Job status: succeeded" in [e.message for e in events] and all(aware(e.created_at) for e in events)

    uploads, creates = len(emu.files), emu.create_attempts
    again = ftlib.finetune(pairs(12), pairs(3, "Other question"), provider="openai", hyperparameters={"n_epochs": 2},
                           suffix="demo", poll_interval=0.01, progress=False)
    assert again == job and again.key == job.key
    assert (len(emu.files), emu.create_attempts, len(emu.jobs)) == (uploads, creates, 1)

    # a restarted kernel: a new process with only the files on disk
    code = textwrap.dedent("""
        import ftlib
        from ftlib.dataset import Dataset
        pairs = lambda n, tag: Dataset.from_pairs([(f"{tag} {i}: how do I export my invoices?",
            f"Answer {i}: open Billing, then Export.") for i in range(n)],
            system="You are Ledgerly's support assistant.")
        job = ftlib.finetune(pairs(12, "Question"), pairs(3, "Other question"), provider="openai",
                             hyperparameters={"n_epochs": 2}, suffix="demo", progress=False)
        print(job.id, job.key, job.model_id)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == [job.id, job.key, job.model_id]
    assert (len(emu.files), emu.create_attempts, len(emu.jobs)) == (uploads, creates, 1)

    # reattach by key or id; list the provider's jobs
    assert ftlib.job(job.key) == job == ftlib.job(job.id)
    assert ftlib.job(job.key).model_id == job.model_id
    listed = ftlib.jobs("openai")
    assert [(j.id, j.key) for j in listed] == [(job.id, job.key)] and listed[0].last_status.state is JobState.SUCCEEDED


def test_a_new_attempt_trains_again_and_wait_false_returns_at_once(home: Path, emu: OpenAIEmulator) -> None:
    first = ftlib.finetune(pairs(12), provider="openai", wait=False, progress=False)
    assert first.last_status is None and emu.jobs[first.id]["status"] == "validating_files"
    second = ftlib.finetune(pairs(12), provider="openai", attempt=1, wait=False, progress=False)
    assert second.id != first.id and second.key != first.key and len(emu.files) == 1  # same bytes, one upload
    emu.auto_advance = False
    assert second.cancel().state is JobState.CANCELLED
    assert ftlib.job(second.key).record["status"] == "cancelled"
    assert "Job cancelled" in [e.message for e in second.events()]


def test_plan_spends_nothing_and_names_the_job_key(home: Path, emu: OpenAIEmulator,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    plan = ftlib.plan(pairs(12), provider="openai", hyperparameters={"n_epochs": 2}, progress=False)
    assert emu.requests == [] and not (home / "models").exists()
    assert plan["submitted"] is False and plan["validation"]["ok"] is True and plan["files"]["train"]["examples"] == 12
    assert plan["estimate"]["n_epochs"] == 2 and plan["estimate"]["billed_tokens"] > 0
    monkeypatch.setenv("OPENAI_API_KEY", emu.api_key)
    job = ftlib.finetune(pairs(12), provider="openai", hyperparameters={"n_epochs": 2}, wait=False, progress=False)
    assert job.key == plan["job_key"]


def test_bad_data_and_foreign_spellings_are_refused_before_anything_is_sent(home: Path, emu: OpenAIEmulator) -> None:
    with pytest.raises(DatasetError, match="nothing was uploaded") as err:
        ftlib.finetune(pairs(3), provider="openai", progress=False)  # OpenAI needs at least 10 examples
    assert "train.jsonl" in str(err.value) and err.value.issues
    with pytest.raises(ValueError, match="n_epochs is another target's name for it: anthropic calls it epochCount"):
        ftlib.finetune(pairs(40), provider="anthropic", hyperparameters={"n_epochs": 3}, progress=False)
    with pytest.raises(ValueError, match="no preference examples, which a dpo job trains on"):
        ftlib.finetune(pairs(12), provider="openai", method="dpo", progress=False)
    with pytest.raises(ValueError, match="export-only target"):
        ftlib.finetune(pairs(12), provider="huggingface", progress=False)
    assert emu.requests == [] and not (home / "models").exists()


def test_the_cli_after_a_library_call_finds_the_same_job(tmp_path: Path, emu: OpenAIEmulator,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from ftlib.cli import app

    project = tmp_path / "proj"
    project.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.setenv(layout.HOME_ENV, str(tmp_path / "home"))  # must stay unused: this is a project
    params = {"launch": {"submit": False, "wait": False},
              "finetune": {"openai": {"export": "openai", "base_model": BASE, "hyperparameters": {"n_epochs": 2},
                                      "suffix": "ledgerly", "attempt": 0}}}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    (project / "build" / "splits").mkdir(parents=True)
    pairs(12).to_parquet(project / "build" / "splits" / "train.parquet")
    pairs(3, "Other question").to_parquet(project / "build" / "splits" / "validation.parquet")
    cli = CliRunner()
    exported = cli.invoke(app, ["export", "build/splits", "--provider", "openai"])
    assert exported.exit_code == 0, exported.output

    # a notebook in the project: the library reads finetune.openai from params.yaml and writes the project ledger
    splits = project / "build" / "splits"
    job = ftlib.finetune(Dataset.from_parquet(splits / "train.parquet"),
                         Dataset.from_parquet(splits / "validation.parquet"), provider="openai", wait=False,
                         progress=False)
    assert emu.jobs[job.id]["suffix"] == "ledgerly" and (project / "models" / "jobs" / "openai").is_dir()
    assert not (tmp_path / "home").exists()

    run = cli.invoke(app, ["finetune", "build/export/openai", "--provider", "openai", "--submit", "--wait",
                           "--poll-interval", "0.01"])
    assert run.exit_code == 0, run.output
    assert f"job {job.id} already submitted for key {job.key} (ledger)" in run.output
    assert f"openai job {job.id}: succeeded" in run.output and len(emu.jobs) == 1
    assert job.model_id == emu.jobs[job.id]["fine_tuned_model"]  # the CLI's wait recorded it in the same ledger
    listed = orjson.loads(cli.invoke(app, ["models", "--json"]).stdout)
    assert [(r["job_key"], r["model_id"]) for r in listed] == [(job.key, job.model_id)]


# Vertex and Bedrock

GOOGLE_VARS = ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION",
               "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_VERTEX_BASE_URL")


def test_gemini_on_vertex_one_call_with_timestamps_and_events(home: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from google.oauth2.credentials import Credentials

    for var in GOOGLE_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    options = {"project": "proj", "location": "us-central1", "gcs_uri": "gs://ftlib-test/tuning",
               "retry_attempts": 2, "retry_initial_delay": 0.01, "credentials": Credentials(token="test-token")}
    with VertexEmulator() as vertex, gcs_emulator("ftlib-test"):
        monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", vertex.url)
        job = ftlib.finetune(pairs(20), provider="gemini", hyperparameters={"epoch_count": 2}, options=options,
                             poll_interval=0.01, progress=False)
        assert vertex.label_counts("ftlib_job_key") == {job.key: 1}
        assert job.model_id.startswith("projects/proj/locations/us-central1/endpoints/")
        status = job.status()
        assert aware(status.created_at) and aware(status.finished_at) and status.created_at <= status.finished_at
        events = job.events()
        assert events[0].message == "tuning job created on gemini-2.5-flash" and aware(events[0].created_at)
        assert events[-1].message == "tuning succeeded" and events[-1].data == {"model": job.model_id}
        again = ftlib.finetune(pairs(20), provider="gemini", hyperparameters={"epoch_count": 2}, options=options,
                               poll_interval=0.01, progress=False)
        assert again == job and vertex.label_counts("ftlib_job_key") == {job.key: 1}


def test_claude_on_bedrock_wait_later_with_timestamps_and_events(home: Path, moto_aws: str) -> None:
    region, bucket = "us-west-2", "ftlib-train"
    make_bucket(bucket, region)
    options = {"role_arn": "arn:aws:iam::123456789012:role/ftlib-bedrock", "s3_bucket": bucket, "region": region}
    job = ftlib.finetune(pairs(40), provider="anthropic", hyperparameters={"epochCount": 2}, options=options,
                         wait=False, progress=False)
    running = job.status()
    assert running.state is JobState.RUNNING and aware(running.created_at) and running.finished_at is None
    set_job_status(region, f"ftlib-{job.key}", "Completed")
    done = ftlib.job(job.key, options=options).wait(poll_interval=0.01, progress=False)
    assert done.model_id and done.model_id.startswith(f"arn:aws:bedrock:{region}:")
    assert aware(done.finished_at) and job.model_id == done.model_id
    messages = [e.message for e in job.events()]
    assert messages[0] == f"job ftlib-{job.key} created" and messages[-1] == "job Completed"
    assert "training loss 0.0000" in messages
    assert ftlib.finetune(pairs(40), provider="anthropic", hyperparameters={"epochCount": 2}, options=options,
                          wait=False, progress=False) == job


# the local trainer

@pytest.mark.training
def test_local_training_one_call_to_an_adapter(home: Path, tiny_model: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("trl")
    pytest.importorskip("peft")
    from tiny_model import sft_examples, write_jsonl

    from ftlib.digest import sha256_tree

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        monkeypatch.setenv(var, "1")
    data = Dataset.from_jsonl(write_jsonl(tmp_path / "chats.jsonl", sft_examples(12)))
    hp = {"max_steps": 2, "learning_rate": 1e-3, "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
          "per_device_train_batch_size": 2, "max_length": 256, "save_steps": 2}
    job = ftlib.finetune(data, provider="local", base_model=str(tiny_model), hyperparameters=hp, seed=3,
                         poll_interval=0.2, progress=False)
    adapter = home / "artifacts" / "local" / "adapter"
    assert job.model_id == f"sha256:{sha256_tree(adapter)}@{adapter.as_posix()}"
    assert (adapter / "adapter_model.safetensors").is_file()
    status = job.status()
    assert aware(status.created_at) and aware(status.finished_at) and status.created_at <= status.finished_at
    events = job.events()
    assert events[0].message == f"run created for {tiny_model}" and aware(events[0].created_at)
    assert any(e.message.startswith("step 2/2, loss ") for e in events) and events[-1].message == "training succeeded"
    assert [p.name for p in (home / "runs").iterdir() if p.is_dir()] == [job.key]
    assert ftlib.finetune(data, provider="local", base_model=str(tiny_model), hyperparameters=hp, seed=3,
                          progress=False) == job
    assert [p.name for p in (home / "runs").iterdir() if p.is_dir()] == [job.key]  # no second training run
    assert list(Path.cwd().iterdir()) == []


# the README's example

def _readme_example() -> str | None:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"^### Library: from a Dataset to a model\n.*?```python\n(.*?)```", text, re.S | re.M)
    return m.group(1) if m else None


def test_the_readme_example_runs_as_written_on_a_fresh_clone(tmp_path: Path) -> None:
    code = _readme_example()
    if code is None:
        pytest.skip("README has no 'Library: from a Dataset to a model' section yet")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AWS_", "GOOGLE_"))}
    env.update(HOME=str(tmp_path / "user"), PYTHONPATH=str(clone), DO_NOT_TRACK="1")
    env.pop(layout.HOME_ENV, None)
    run = subprocess.run([sys.executable, "-c", code], cwd=clone, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"job key [0-9a-f]{32}", run.stdout), run.stdout
    assert not (tmp_path / "user").exists()  # in the clone (a project), nothing goes to the per-user home
