"""The Prefect flows in-process (prefect_test_harness) on a temporary git clone, with real `dvc repro` and the
OpenAI and Bedrock (moto) emulators reached through the real SDKs.

One scenario per clone, because each step builds on the last: first run submits one job per provider, a re-run
changes nothing, new data retrains only the provider whose exported bytes changed, and the registry keeps both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from emulators.moto_server import aws_env, bedrock_jobs, make_bucket, moto_server
from emulators.openai_server import OpenAIEmulator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `flows` is a folder at the repo root, not an installed package
BIN = Path(sys.executable).parent
REGION = "us-west-2"
BUCKET = "ftlib-flows"
PROVIDERS = ["openai", "anthropic"]


# -- a clone of the repository with the sample data -----------------------------------------------

def sh(cwd: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def commit_all(repo: Path, message: str, *paths: str) -> None:
    sh(repo, "git", "add", *paths)
    sh(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)


def make_clone(dest: Path, submit: bool, finetune: dict[str, Any] | None = None,
               evaluate: dict[str, Any] | None = None) -> Path:
    """`git clone` of the committed repo plus its sample data (dvc pull from the bundled remote), params for tests."""
    sh(ROOT, "git", "clone", "-q", str(ROOT), str(dest))
    pulled = (dest / "data.dvc").exists() and subprocess.run(
        [str(BIN / "dvc"), "pull", "-q", "data.dvc"], cwd=dest, capture_output=True).returncode == 0
    if not pulled:  # no bundled remote in this checkout: copy the working tree's data and let DVC track it
        if (dest / "data").is_dir() and not (dest / "data.dvc").exists():
            sh(dest, "git", "rm", "-rq", "--cached", "data")
        shutil.rmtree(dest / "data", ignore_errors=True)
        shutil.copytree(ROOT / "data", dest / "data")
        sh(dest, str(BIN / "dvc"), "add", "-q", "data")
        commit_all(dest, "track data with dvc", "data.dvc", ".gitignore")
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["finetune"] = finetune or finetune_params()
    params["launch"] = {"submit": submit, "wait": True}
    params["evaluate"] = {**(params.get("evaluate") or {}), **(evaluate or {})}
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commit_all(dest, "test params", "params.yaml")
    return dest


def finetune_params() -> dict[str, Any]:
    """Two providers on their emulators (gemini left out: Vertex needs real credentials files in a subprocess)."""
    return {
        "openai": {"export": "openai", "method": "supervised", "hyperparameters": {"n_epochs": 1}, "attempt": 0,
                   "poll_interval_s": 0.05},
        "anthropic": {"export": "anthropic", "hyperparameters": {"epochCount": 1}, "attempt": 0,
                      "poll_interval_s": 0.05,
                      "role_arn": "arn:aws:iam::123456789012:role/ftlib-bedrock", "s3_prefix": f"s3://{BUCKET}/ftlib",
                      "region": REGION},
    }


def read(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


# -- emulators and prefect -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"] = str(tmp_path_factory.mktemp("prefect-results"))
    with prefect_test_harness(server_startup_timeout=60), \
            temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
    os.environ.pop("PREFECT_RESULTS_LOCAL_STORAGE_PATH", None)


class BedrockFinisher:
    """Bedrock jobs never finish in moto: complete each one shortly after it appears, like the service would."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for job in list(bedrock_jobs(REGION).values()):
                if job.status == "InProgress":
                    job.status = "Completed"

    def __enter__(self) -> BedrockFinisher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def emulators(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as openai_emu, moto_server() as moto_url, BedrockFinisher():
        for var, value in {**openai_emu.env(), **aws_env(moto_url)}.items():
            monkeypatch.setenv(var, value)
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
            monkeypatch.delenv(var, raising=False)
        make_bucket(BUCKET, REGION)
        yield openai_emu


# -- tests -----------------------------------------------------------------------------------------

def test_pipeline_submits_once_and_retrains_only_what_changed(
    tmp_path: Path, prefect_harness: None, emulators: OpenAIEmulator,
) -> None:
    from flows import finetune_pipeline

    repo = make_clone(tmp_path / "clone", submit=True)

    # 1. First run: dataset built by DVC, one job per provider, recorded by DVC's finetune stages.
    first = finetune_pipeline(project_dir=str(repo))
    assert set(first) == set(PROVIDERS)
    for provider in PROVIDERS:
        job = first[provider]["job"]
        assert job["status"] == "succeeded" and job["model_id"], job
        report = read(repo / "reports" / "finetune" / f"{provider}.json")
        assert report["job_key"] == first[provider]["job_key"]
        assert report["job"]["model_id"] == job["model_id"]
    assert len(emulators.jobs) == 1 and len(bedrock_jobs(REGION)) == 1
    assert "up to date" in sh(repo, str(BIN / "dvc"), "status")
    commit_all(repo, "first models", "dvc.lock", "reports", "models")

    # 2. Same inputs again: nothing is submitted, no stage runs, no tracked file changes.
    again = finetune_pipeline(project_dir=str(repo))
    assert {p: again[p]["job"]["job_id"] for p in PROVIDERS} == {p: first[p]["job"]["job_id"] for p in PROVIDERS}
    assert len(emulators.jobs) == 1 and len(bedrock_jobs(REGION)) == 1
    assert sh(repo, "git", "status", "--porcelain") == ""

    # 3. New examples with tool calls: OpenAI exports them, Bedrock's Claude format cannot (text only), so only
    #    OpenAI's bytes change and only OpenAI trains again.
    lines = [line for line in (repo / "data" / "openai_chat.jsonl").read_text().splitlines() if '"tool_calls"' in line]
    new = [line.replace("Northgate", f"Bank{n}").replace("acct_", f"acct_{n}") for n, line in enumerate(lines * 3)]
    new = list(dict.fromkeys(line.replace('"content": "', f'"content": "[{n}] ', 1) for n, line in enumerate(new)))
    (repo / "data" / "more_tool_chats.jsonl").write_text("\n".join(new) + "\n")
    sh(repo, str(BIN / "dvc"), "add", "-q", "data")
    commit_all(repo, "more data", "data.dvc")
    anthropic_reports = [p for p in (repo / "reports").glob("*/anthropic.json") if p.parent.name != "export"]
    anthropic_mtimes = {p: p.stat().st_mtime_ns for p in anthropic_reports}

    third = finetune_pipeline(project_dir=str(repo))
    assert third["anthropic"]["job"]["job_id"] == first["anthropic"]["job"]["job_id"]
    assert third["openai"]["job"]["job_id"] != first["openai"]["job"]["job_id"]
    assert third["openai"]["job"]["model_id"] and third["openai"]["job"]["status"] == "succeeded"
    assert len(emulators.jobs) == 2 and len(bedrock_jobs(REGION)) == 1
    # validate@anthropic and finetune@anthropic did not run: their reports were not even rewritten
    assert {p: p.stat().st_mtime_ns for p in anthropic_reports} == anthropic_mtimes
    assert "up to date" in sh(repo, str(BIN / "dvc"), "status")

    # The registry keeps both OpenAI models, each next to the dataset it was trained on.
    index = read(repo / "models" / "registry.json")
    openai_models = {sha: entry["openai"]["model_id"] for sha, entry in index.items() if "openai" in entry}
    assert len(openai_models) == 2 and all(openai_models.values())
    assert set(openai_models.values()) == {first["openai"]["job"]["model_id"], third["openai"]["job"]["model_id"]}
    assert sum("anthropic" in entry for entry in index.values()) == 1


def test_plan_only_needs_no_credentials_and_publishes_artifacts(tmp_path: Path, prefect_harness: None,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.client.orchestration import get_client

    from flows import finetune_models, finetune_pipeline

    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID"):
        monkeypatch.delenv(var, raising=False)
    repo = make_clone(tmp_path / "clone", submit=False)
    state = finetune_pipeline(project_dir=str(repo), providers=["openai"], return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert result["openai"]["submitted"] is False and result["openai"]["job"] is None
    assert not (repo / "models" / "registry.json").exists()
    plan = read(repo / "reports" / "finetune" / "openai.json")
    assert plan["job_key"] == result["openai"]["job_key"] and plan["submitted"] is False

    import asyncio

    async def card() -> str:
        async with get_client() as client:
            art = await client.read_latest_artifacts(limit=50)
            return next(a.data for a in art if a.key == "dataset-card")

    text = asyncio.run(card())
    manifest = read(repo / "build" / "splits" / "manifest.json")
    for split, count in manifest["counts"].items():
        assert f"| {split} | {count} |" in text
    train_sha = plan["files"]["train"]["sha256"]
    assert train_sha in text  # the exact bytes a job would train on

    # Submitting from Prefect while params.yaml still says plan: the stage's report already exists and its deps
    # did not change, so the flow re-runs just that stage to record the job, and DVC ends up clean.
    with OpenAIEmulator() as emu:
        for var, value in emu.env().items():
            monkeypatch.setenv(var, value)
        submitted = finetune_models(project_dir=str(repo), providers=["openai"], submit=True)
    job = submitted["openai"]["job"]
    assert job["model_id"] and len(emu.jobs) == 1
    report = read(repo / "reports" / "finetune" / "openai.json")
    assert report["job"]["job_id"] == job["job_id"] and report["job"]["model_id"] == job["model_id"]
    status = sh(repo, str(BIN / "dvc"), "status")
    assert "finetune@openai" not in status and "validate@" not in status, status  # anthropic was not asked for


def test_dvc_failure_fails_the_task_with_dvcs_message(tmp_path: Path, prefect_harness: None) -> None:
    from flows import build_dataset

    repo = make_clone(tmp_path / "clone", submit=False)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["ingest"]["mode"] = "strict"  # the sample data has a file of broken lines on purpose
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    state = build_dataset(project_dir=str(repo), return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match=r"(?s)failed to reproduce 'ingest'.*") as err:
        state.result()
    assert "strict" in str(err.value)  # ftlib's own reason, passed through DVC, reaches the flow's failure
    assert not (repo / "build" / "dataset.parquet").exists()


def test_unknown_provider_is_refused_before_any_work(tmp_path: Path) -> None:
    from flows.params import resolve_providers

    params = {"finetune": finetune_params(), "launch": {"submit": False}}
    assert resolve_providers(params, None) == PROVIDERS
    with pytest.raises(ValueError, match="unknown provider"):
        resolve_providers(params, ["openia"])
    with pytest.raises(ValueError, match=r"no finetune\.<provider> section"):
        resolve_providers(params, ["gemini"])


def test_dvc_error_detail_keeps_the_failing_commands_message() -> None:
    from flows.dvc_cli import DvcError, error_detail

    lines = ["Running stage 'ingest':", "> ftlib ingest data", "error: 3 bad line(s) rejected (strict mode)",
             "ERROR: failed to reproduce 'ingest': failed to run: ftlib ingest data, exited with 1"]
    detail = error_detail(lines)
    assert "3 bad line(s)" in detail and detail.endswith("exited with 1")
    assert DvcError(["repro"], 1, "ERROR: Unable to acquire lock. Most likely another DVC process is running "
                                  "or was terminated abruptly.").busy
    assert not DvcError(["repro"], 1, detail).busy

