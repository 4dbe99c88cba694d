"""OpenAI adapter end to end: the real `openai` SDK against the in-repo emulator on 127.0.0.1.

Covers plan mode (free, no credentials), submit + wait, SDK retries, the 403 wind-down message, re-runs and a
second machine, the Uploads API, the CLI, and kill -9 of a real submitter process at three points.
"""

from __future__ import annotations

import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer
from emulators.openai_server import OpenAIEmulator
from rich.console import Console
from typer.testing import CliRunner

from ftlib.cli_jobs import register
from ftlib.finetune import plan_or_submit
from ftlib.jobs.ledger import Ledger
from ftlib.jobs.spec import ConfigError, ProviderError
from ftlib.jobs.submit import Poll

pytestmark = pytest.mark.integration

SECRET = "sk-test-never-log-me-9f2c"
BASE = "gpt-4o-mini-2024-07-18"
FAST = Poll(0.01, 1.5, 0.05)
LINE = '{"messages": [{"role": "user", "content": "Question %d?"}, {"role": "assistant", "content": "Answer %d."}]}\n'


@pytest.fixture
def emu() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator(api_key=SECRET) as e:
        yield e


@pytest.fixture
def env(emu: OpenAIEmulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for var in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_API_VERSION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    return emu.env()


@pytest.fixture
def export(tmp_path: Path) -> Path:
    d = tmp_path / "export"
    d.mkdir()
    (d / "train.jsonl").write_text("".join(LINE % (i, i) for i in range(12)))
    (d / "validation.jsonl").write_text("".join(LINE % (i, i) for i in range(100, 103)))
    return d


def _settings(**kw: object) -> dict:
    return {"base_model": BASE, "hyperparameters": {"n_epochs": 2}, "suffix": "demo", "max_retries": 3, **kw}


def _tree_text(root: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(root.rglob("*")) if p.is_file())


def _until(cond: Callable[[], object], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


# plan mode

def test_plan_needs_no_credentials_and_spends_nothing(emu: OpenAIEmulator, export: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
    out1, out2 = tmp_path / "plan1.json", tmp_path / "plan2.json"
    plan = plan_or_submit(export, "openai", _settings(), submit=False, wait=False, models_dir=tmp_path / "m", out=out1)
    plan_or_submit(export, "openai", _settings(), submit=False, wait=False, models_dir=tmp_path / "m", out=out2)
    assert emu.requests == []
    assert not (tmp_path / "m").exists()
    assert out1.read_bytes() == out2.read_bytes()
    assert plan["submitted"] is False and plan["job"] is None
    assert plan["files"]["train"]["examples"] == 12 and plan["files"]["validation"]["examples"] == 3
    assert len(plan["job_key"]) == 32
    assert "estimate" in plan


def test_missing_key_is_a_config_error_before_any_upload(emu: OpenAIEmulator, export: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
    with pytest.raises(ConfigError, match="set OPENAI_API_KEY"):
        plan_or_submit(export, "openai", _settings(), submit=True, wait=False, models_dir=tmp_path / "m")
    assert emu.requests == []


def test_azure_needs_its_variables(export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN", "OPENAI_API_VERSION"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="AZURE_OPENAI_ENDPOINT"):
        plan_or_submit(export, "openai", _settings(azure=True), submit=True, wait=False, models_dir=tmp_path / "m")


def test_bad_hyperparameter_rejected_before_network(emu: OpenAIEmulator, env: dict, export: Path,
                                                    tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"batch_size=300: input should be less than or equal to 256"):
        plan_or_submit(export, "openai", _settings(hyperparameters={"batch_size": 300}), submit=True, wait=False,
                       models_dir=tmp_path / "m")
    with pytest.raises(ValueError, match="unknown hyperparameter 'beta' for openai supervised"):
        plan_or_submit(export, "openai", _settings(hyperparameters={"beta": 0.1}), submit=True, wait=False,
                       models_dir=tmp_path / "m")
    with pytest.raises(ValueError, match="at most 64"):
        plan_or_submit(export, "openai", _settings(suffix="x" * 65), submit=True, wait=False, models_dir=tmp_path / "m")
    assert emu.requests == []


# submit and wait

def test_submit_and_wait_end_to_end(emu: OpenAIEmulator, env: dict, export: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    result = plan_or_submit(export, "openai", _settings(seed=7), submit=True, wait=True, models_dir=models, poll=FAST)
    key = result["job_key"]
    [job] = emu.jobs_for_key(key)
    assert result["job"]["model_id"] == f"ft:{BASE}:ftlib:demo:{job['id']}"
    assert result["job"]["console_url"] == f"https://platform.openai.com/finetune/{job['id']}"
    assert job["method"] == {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}}
    assert (job["suffix"], job["seed"], job["model"]) == ("demo", 7, BASE)
    train, val = emu.files[job["training_file"]], emu.files[job["validation_file"]]
    assert emu.file_bytes[train["id"]] == (export / "train.jsonl").read_bytes()
    assert train["filename"] == f"ftlib-{result['files']['train']['sha256']}.jsonl"
    assert emu.file_bytes[val["id"]] == (export / "validation.jsonl").read_bytes()
    index = json.loads((models / "registry.json").read_text())
    entry = index[result["files"]["train"]["sha256"]]["openai"]
    assert (entry["job_id"], entry["status"], entry["model_id"]) == (job["id"], "succeeded", result["job"]["model_id"])
    assert SECRET not in _tree_text(models)
    seen = len(emu.requests)
    plan = plan_or_submit(export, "openai", _settings(seed=7), submit=False, wait=False, models_dir=models)
    assert plan["submitted"] is True and plan["job"]["model_id"] == result["job"]["model_id"]
    assert len(emu.requests) == seen


def test_rerun_and_second_machine_find_the_existing_job(emu: OpenAIEmulator, env: dict, export: Path,
                                                        tmp_path: Path) -> None:
    first = plan_or_submit(export, "openai", _settings(), submit=True, wait=False, models_dir=tmp_path / "a")
    again = plan_or_submit(export, "openai", _settings(), submit=True, wait=False, models_dir=tmp_path / "a")
    other = plan_or_submit(export, "openai", _settings(), submit=True, wait=False, models_dir=tmp_path / "b")
    assert first["job"]["job_id"] == again["job"]["job_id"] == other["job"]["job_id"]
    assert len(emu.jobs_for_key(first["job_key"])) == 1
    assert len(emu.files) == 2
    # a new attempt is a new job, but the same bytes are not uploaded again (filename carries the sha256)
    fresh = plan_or_submit(export, "openai", _settings(attempt=1), submit=True, wait=False, models_dir=tmp_path / "c")
    assert fresh["job"]["job_id"] != first["job"]["job_id"]
    assert len(emu.files) == 2 and len(emu.jobs) == 2


def test_sdk_retries_429_and_500(emu: OpenAIEmulator, env: dict, export: Path, tmp_path: Path) -> None:
    emu.inject(429, "/files", count=2)
    emu.inject(500, "/fine_tuning/jobs/", count=2, method="GET")
    result = plan_or_submit(export, "openai", _settings(), submit=True, wait=True, models_dir=tmp_path / "m",
                            poll=FAST)
    assert result["job"]["status"] == "succeeded"
    assert sum(1 for m, p in emu.requests if p == "/v1/files") >= 4  # 2 refused + list + uploads
    assert len(emu.jobs) == 1


def test_retries_exhausted_reports_provider_message(emu: OpenAIEmulator, env: dict, export: Path,
                                                    tmp_path: Path) -> None:
    emu.inject(500, "/files", count=10)
    with pytest.raises(ProviderError, match=r"OpenAI upload failed \(HTTP 500, injected_fault\): injected HTTP 500"):
        plan_or_submit(export, "openai", _settings(max_retries=1), submit=True, wait=False, models_dir=tmp_path / "m")


def test_create_timeout_after_server_stored_job_does_not_duplicate(emu: OpenAIEmulator, env: dict, export: Path,
                                                                    tmp_path: Path) -> None:
    emu.hang_create = "after"  # the server stores the job, the response never arrives
    result = plan_or_submit(export, "openai", _settings(timeout=1.0), submit=True, wait=False,
                            models_dir=tmp_path / "m")
    emu.release()
    assert emu.create_attempts == 1
    assert [j["id"] for j in emu.jobs_for_key(result["job_key"])] == [result["job"]["job_id"]]


def test_403_training_not_available_explains_wind_down(emu: OpenAIEmulator, env: dict, export: Path,
                                                       tmp_path: Path) -> None:
    emu.deny_training = True
    with pytest.raises(ProviderError, match="training_not_available") as err:
        plan_or_submit(export, "openai", _settings(), submit=True, wait=False, models_dir=tmp_path / "m")
    assert "winding down" in str(err.value) and "Azure OpenAI" in str(err.value)
    assert "huggingface" in str(err.value)
    assert emu.jobs == {}


def test_failed_job_raises_with_provider_error(emu: OpenAIEmulator, env: dict, export: Path, tmp_path: Path) -> None:
    emu.fail_jobs_with = ("invalid_training_file", "Line 3: the last message must be from the assistant")
    with pytest.raises(ProviderError, match="failed: Line 3: the last message must be from the assistant"):
        plan_or_submit(export, "openai", _settings(), submit=True, wait=True, models_dir=tmp_path / "m", poll=FAST)
    [rec] = Ledger(tmp_path / "m").records()
    assert rec["status"] == "failed" and "Line 3" in rec["error"]


def test_large_file_goes_through_uploads_api_in_parts(emu: OpenAIEmulator, env: dict, export: Path,
                                                      tmp_path: Path) -> None:
    size = (export / "train.jsonl").stat().st_size
    result = plan_or_submit(export, "openai", _settings(upload_threshold_bytes=500, part_size_bytes=256),
                            submit=True, wait=False, models_dir=tmp_path / "m")
    [job] = emu.jobs.values()
    assert len(emu.uploads) == 1 and len(emu.parts) == math.ceil(size / 256)
    assert emu.file_bytes[job["training_file"]] == (export / "train.jsonl").read_bytes()
    assert result["job"]["job_id"] == job["id"]


# CLI

def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _params(tmp_path: Path, **kw: object) -> Path:
    import yaml

    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"finetune": {"openai": _settings(poll_interval_s=0.01, **kw)}}))
    return path


def test_cli_submit_wait_status_models_jobs_cancel(emu: OpenAIEmulator, env: dict, export: Path,
                                                   tmp_path: Path) -> None:
    runner, app, models = CliRunner(), _app(), str(tmp_path / "models")
    common = ["--provider", "openai", "--params", str(_params(tmp_path)), "--models-dir", models]
    res = runner.invoke(app, ["finetune", str(export), *common, "--submit", "--wait", "--out",
                              str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "r.json").read_text())
    model_id = result["job"]["model_id"]
    assert model_id and model_id in res.output
    res = runner.invoke(app, ["models", "--json", "--models-dir", models])
    rows = json.loads(res.stdout)
    assert [(r["provider"], r["model_id"], r["status"]) for r in rows] == [("openai", model_id, "succeeded")]
    res = runner.invoke(app, ["models", "--models-dir", models])
    assert res.exit_code == 0 and model_id in res.stdout
    res = runner.invoke(app, ["status", "--key", result["job_key"], *common])
    assert res.exit_code == 0 and "succeeded" in res.stdout
    emu.auto_advance = False
    other = plan_or_submit(export, "openai", _settings(attempt=2), submit=True, wait=False, models_dir=Path(models))
    res = runner.invoke(app, ["cancel", other["job"]["job_id"], *common])
    assert res.exit_code == 0 and "cancelled" in res.stdout
    assert Ledger(models).get("openai", other["job_key"])["status"] == "cancelled"
    res = runner.invoke(app, ["jobs", "--provider", "openai", "--params", str(_params(tmp_path))])
    assert res.exit_code == 0 and len(res.stdout.strip().splitlines()) == 2
    assert SECRET not in res.output and SECRET not in _tree_text(Path(models))


def test_cli_exit_codes_and_one_line_errors(emu: OpenAIEmulator, env: dict, export: Path, tmp_path: Path) -> None:
    runner, app = CliRunner(), _app()
    models = ["--models-dir", str(tmp_path / "m")]
    res = runner.invoke(app, ["finetune", str(export), "--provider", "openai", "--params",
                              str(_params(tmp_path, hyperparameters={"n_epochs": 0})), "--submit", *models])
    assert res.exit_code == 2 and "n_epochs=0: input should be greater than or equal to 1" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(app, ["finetune", str(export), "--provider", "nope", *models])
    assert res.exit_code == 2 and "unknown target 'nope'" in res.output
    res = runner.invoke(app, ["finetune", str(tmp_path / "missing"), "--provider", "openai", *models])
    assert res.exit_code == 2 and "run `ftlib export --provider openai`" in res.output
    emu.deny_training = True
    res = runner.invoke(app, ["finetune", str(export), "--provider", "openai", "--params", str(_params(tmp_path)),
                              "--submit", *models])
    assert res.exit_code == 1 and "training_not_available" in res.output
    assert len(res.output.strip().splitlines()) <= 4 and "Traceback" not in res.output
    assert SECRET not in res.output


# kill -9 of a real submitter process

def _spawn(tmp_path: Path, env: dict, *extra: str, log: str = "run") -> subprocess.Popen:
    args = [sys.executable, "-m", "ftlib.cli_jobs", "finetune", "export", "--provider", "openai",
            "--params", "params.yaml", "--models-dir", "models", "--submit", *extra]
    out = open(tmp_path / f"{log}.log", "wb")  # noqa: SIM115 - closed with the process below
    proc = subprocess.Popen(args, cwd=tmp_path, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    proc.log = out  # type: ignore[attr-defined]
    return proc


def _finish(proc: subprocess.Popen, timeout: float = 60) -> int:
    try:
        return proc.wait(timeout)
    finally:
        proc.log.close()  # type: ignore[attr-defined]


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    assert _finish(proc) == -signal.SIGKILL


@pytest.fixture
def crash_dir(tmp_path: Path, export: Path, env: dict) -> tuple[Path, str]:
    _params(tmp_path)
    plan = plan_or_submit(export, "openai", _settings(), submit=False, wait=False, models_dir=tmp_path / "models")
    return tmp_path, plan["job_key"]


def _assert_one_job_with_model(emu: OpenAIEmulator, root: Path, key: str) -> None:
    [job] = emu.jobs_for_key(key)
    rec = Ledger(root / "models").get("openai", key)
    assert rec["job_id"] == job["id"] and rec["status"] == "succeeded"
    assert rec["model_id"] == job["fine_tuned_model"] is not None
    logs = "".join(p.read_text() for p in root.glob("*.log"))
    assert SECRET not in logs and SECRET not in _tree_text(root / "models")


def test_kill_after_upload_then_rerun(emu: OpenAIEmulator, env: dict, crash_dir: tuple[Path, str]) -> None:
    root, key = crash_dir
    emu.hang_create = "before"  # uploads done, create never answered and never stored
    proc = _spawn(root, env, log="first")
    _until(lambda: emu.create_attempts == 1)
    _kill(proc)
    assert emu.jobs == {} and len(emu.files) == 2
    assert Ledger(root / "models").get("openai", key)["status"] == "submitting"
    emu.hang_create = None
    assert _finish(_spawn(root, env, "--wait", log="second")) == 0
    assert len(emu.files) == 2  # upload refs came from the ledger: nothing sent twice
    _assert_one_job_with_model(emu, root, key)


def test_kill_after_create_before_ledger_write(emu: OpenAIEmulator, env: dict, crash_dir: tuple[Path, str]) -> None:
    root, key = crash_dir
    emu.hang_create = "after"  # the job exists at the provider, the client never learns its id
    proc = _spawn(root, env, log="first")
    _until(lambda: len(emu.jobs) == 1)
    _kill(proc)
    assert "job_id" not in Ledger(root / "models").get("openai", key)
    emu.hang_create = None
    assert _finish(_spawn(root, env, "--wait", log="second")) == 0
    assert emu.create_attempts == 1
    _assert_one_job_with_model(emu, root, key)


def test_kill_during_wait_then_resume(emu: OpenAIEmulator, env: dict, crash_dir: tuple[Path, str]) -> None:
    root, key = crash_dir
    emu.auto_advance = False  # the job stays validating_files while the first process polls
    proc = _spawn(root, env, "--wait", "--poll-interval", "0.02", log="first")
    _until(lambda: sum(1 for m, p in emu.requests if p.startswith("/v1/fine_tuning/jobs/ftjob")) >= 3)
    _kill(proc)
    assert Ledger(root / "models").get("openai", key)["status"] == "pending"
    emu.auto_advance = True
    assert _finish(_spawn(root, env, "--wait", "--poll-interval", "0.02", log="second")) == 0
    assert emu.create_attempts == 1
    _assert_one_job_with_model(emu, root, key)


# stuck states resolve

def test_a_ledger_job_the_provider_no_longer_has_says_how_to_start_over(emu: OpenAIEmulator, env: dict,
                                                                        export: Path, tmp_path: Path) -> None:
    runner, app, models = CliRunner(), _app(), tmp_path / "models"
    common = ["--provider", "openai", "--params", str(_params(tmp_path)), "--models-dir", str(models)]
    first = plan_or_submit(export, "openai", _settings(), submit=True, wait=False, models_dir=models)
    job_id, key = first["job"]["job_id"], first["job_key"]
    with emu.lock:
        emu.jobs.pop(job_id)  # deleted at the provider (or a ledger from another account)
    res = runner.invoke(app, ["finetune", str(export), *common, "--submit", "--wait"])
    record = models / "jobs" / "openai" / f"{key}.json"
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert f"openai has no job {job_id}" in res.output and f"delete {record}" in res.output
    assert record.exists() and len(emu.jobs) == 0  # nothing resubmitted on our own: it could be the wrong account
    record.unlink()  # the fix the message gives
    res = runner.invoke(app, ["finetune", str(export), *common, "--submit", "--wait"])
    assert res.exit_code == 0, res.output
    [job] = emu.jobs_for_key(key)
    assert Ledger(models).get("openai", key)["job_id"] == job["id"] != job_id


def test_a_stale_upload_reference_is_forgotten_and_uploaded_again(emu: OpenAIEmulator, env: dict, export: Path,
                                                                  tmp_path: Path) -> None:
    models = tmp_path / "models"
    first = plan_or_submit(export, "openai", _settings(), submit=True, wait=False, models_dir=models)
    [old_job] = emu.jobs_for_key(first["job_key"])
    with emu.lock:  # the provider deleted the training file (retention, or a person)
        emu.files.pop(old_job["training_file"])
    out = io.StringIO()
    again = plan_or_submit(export, "openai", _settings(attempt=1), submit=True, wait=False, models_dir=models,
                           console=Console(file=out, width=300))
    assert f"upload {old_job['training_file']} of train.jsonl is gone at the provider" in out.getvalue()
    [job] = emu.jobs_for_key(again["job_key"])
    assert job["training_file"] != old_job["training_file"] and job["training_file"] in emu.files
    assert emu.file_bytes[job["training_file"]] == (export / "train.jsonl").read_bytes()
    uploads = json.loads((models / "uploads" / "openai.json").read_text())
    assert uploads[first["files"]["train"]["sha256"]] == job["training_file"]  # the cache now holds the new id


def test_a_corrupt_unrelated_record_is_skipped_with_a_warning(emu: OpenAIEmulator, env: dict, export: Path,
                                                              tmp_path: Path) -> None:
    runner, app, models = CliRunner(), _app(), tmp_path / "models"
    common = ["--provider", "openai", "--params", str(_params(tmp_path)), "--models-dir", str(models)]
    plan_or_submit(export, "openai", _settings(), submit=True, wait=False, models_dir=models)
    broken = models / "jobs" / "openai" / "0123other.json"
    broken.write_text('{"job_key": "0123other", "provider": "openai", "job_id": ')  # cut by a crash or a bad merge
    res = runner.invoke(app, ["finetune", str(export), *common, "--submit", "--wait"])
    assert res.exit_code == 0, res.output
    assert f"skipped {broken}: not valid JSON" in res.output and "delete it" in res.output
    res = runner.invoke(app, ["models", "--json", "--models-dir", str(models)])
    assert res.exit_code == 0 and "Traceback" not in res.output
    assert [r["status"] for r in json.loads(res.stdout)] == ["succeeded"]
