"""The `local` target end to end, as a user drives it: `ftlib finetune --provider local` in a project folder,
training a tiny model for real (TRL + PEFT on the CPU, detached runner), then DVC and Prefect on the sample project.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

pytest.importorskip("trl")
pytest.importorskip("peft")

from tiny_model import sft_examples, write_jsonl

from ftlib.digest import sha256_tree
from ftlib.targets.huggingface import runner

pytestmark = pytest.mark.training
BIN = Path(sys.executable).parent
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}


def ftlib(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **OFFLINE, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run([str(BIN / "ftlib"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, f"ftlib {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def project(tmp_path: Path, model: Path, rows: list[dict[str, Any]] | None = None, **hp: Any) -> Path:
    """A project folder with an HF export and params.yaml for the local target."""
    export = tmp_path / "build" / "export" / "huggingface"
    export.mkdir(parents=True)
    write_jsonl(export / "train.jsonl", rows or sft_examples(24))
    write_jsonl(export / "validation.jsonl", sft_examples(6))
    hyper = {"max_steps": 4, "learning_rate": 1e-3, "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
             "per_device_train_batch_size": 2, "max_length": 256, "save_steps": 2, **hp}
    params = {"launch": {"submit": False, "wait": False},
              "finetune": {"local": {"export": "huggingface", "base_model": str(model), "method": "supervised",
                                     "hyperparameters": hyper, "seed": 7, "attempt": 0}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def finetune(cwd: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return ftlib(cwd, "finetune", "build/export/huggingface", "--provider", "local", "--params", "params.yaml",
                 "--poll-interval", "0.2", "--out", "reports/finetune/local.json", "--artifacts", "build/models/local",
                 *extra, check=check)


def runs(cwd: Path) -> list[Path]:
    return sorted(p for p in (cwd / ".ftlib" / "runs").glob("*") if p.is_dir())


def test_plan_submit_wait_and_submit_again(tmp_path: Path, tiny_model: Path) -> None:
    cwd = project(tmp_path, tiny_model)
    plan = finetune(cwd, "--plan")
    report = orjson.loads((cwd / "reports/finetune/local.json").read_bytes())
    key = report["job_key"]
    assert f"job key {key}" in plan.stderr and report["job"] is None and runs(cwd) == []
    # the job key covers ftlib's defaults and the base model's content hash
    hp = report["hyperparameters"]
    assert hp["max_steps"] == 4 and hp["num_train_epochs"] == 3.0 and hp["gradient_accumulation_steps"] == 1
    assert "beta" not in hp and report["seed"] == 7

    done = finetune(cwd, "--submit", "--wait")
    assert "step 4/4" in done.stderr and "loss" in done.stderr  # progress while it trains
    assert f"local job {key}: succeeded, model sha256:" in done.stdout
    record = orjson.loads((cwd / "models/jobs/local" / f"{key}.json").read_bytes())
    adapter = cwd / "build/models/local/adapter"
    assert record["model_id"] == f"sha256:{sha256_tree(adapter)}@build/models/local/adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "adapter_config.json").is_file()
    assert record["base_model_revision"] == f"sha256:{sha256_tree(tiny_model)}" and record["seed"] == 7
    metrics = record["metrics"]
    assert math.isfinite(metrics["train_loss"]) and math.isfinite(metrics["eval_loss"]) and metrics["steps"] == 4
    assert {"torch", "transformers", "trl", "peft"} <= set(metrics["versions"])
    assert (cwd / "build/models/local/loss.csv").read_text().startswith("step,loss\n")
    registry = orjson.loads((cwd / "models/registry.json").read_bytes())
    assert registry[record["dataset_sha256"]]["local"]["model_id"] == record["model_id"]

    state = (runs(cwd)[0] / runner.STATE_NAME).read_bytes()
    again = finetune(cwd, "--submit", "--wait")
    assert "already submitted" in again.stderr and len(runs(cwd)) == 1
    assert (runs(cwd)[0] / runner.STATE_NAME).read_bytes() == state  # no second training run
    status = ftlib(cwd, "status", "--provider", "local", "--key", key, "--params", "params.yaml")
    assert "succeeded" in status.stdout and record["model_id"] in status.stdout
    assert key in ftlib(cwd, "jobs", "--provider", "local", "--params", "params.yaml").stdout
    assert record["model_id"] in ftlib(cwd, "models", "--json").stdout


def _wait_for(predicate: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_kill_9_mid_training_resumes_to_one_adapter(tmp_path: Path, tiny_model: Path) -> None:
    cwd = project(tmp_path, tiny_model, max_steps=60, per_device_train_batch_size=1, save_steps=3)
    finetune(cwd, "--submit", "--no-wait")
    (run,) = runs(cwd)
    _wait_for(lambda: runner.is_live(run) and any((run / "checkpoints").glob("checkpoint-*/trainer_state.json")))
    pid = int((run / runner.LOCK_NAME).read_text().split()[0])
    os.killpg(pid, signal.SIGKILL)
    _wait_for(lambda: not runner.is_live(run), 30)
    saved = max(int(p.parent.name.split("-")[1]) for p in (run / "checkpoints").glob("checkpoint-*/trainer_state.json"))
    before = len((run / "progress.jsonl").read_bytes().splitlines())

    key = run.name
    status = ftlib(cwd, "status", "--provider", "local", "--key", key, "--params", "params.yaml", check=False)
    assert status.returncode == 1 and "interrupted" in status.stdout and "submit again to resume" in status.stdout
    resumed = finetune(cwd, "--submit", "--wait")
    assert "resumed from its last checkpoint" in resumed.stderr
    assert runs(cwd) == [run] and (cwd / "build/models/local/adapter/adapter_model.safetensors").is_file()
    steps = [orjson.loads(line)["step"] for line in (run / "progress.jsonl").read_bytes().splitlines()]
    assert steps[before] == saved + 1 and steps[-1] == 60  # continued after the last complete checkpoint
    assert len(list(run.glob("adapter*"))) == 1


def test_cancel_a_running_job(tmp_path: Path, tiny_model: Path) -> None:
    cwd = project(tmp_path, tiny_model, max_steps=400, per_device_train_batch_size=1, save_steps=50)
    finetune(cwd, "--submit", "--no-wait")
    (run,) = runs(cwd)
    _wait_for(lambda: (run / "progress.jsonl").exists())
    cancelled = ftlib(cwd, "cancel", run.name, "--provider", "local", "--params", "params.yaml")
    assert "cancelled" in cancelled.stdout and not runner.is_live(run)
    record = orjson.loads((cwd / "models/jobs/local" / f"{run.name}.json").read_bytes())
    assert record["status"] == "cancelled"


def test_a_bad_example_is_refused_before_training(tmp_path: Path, tiny_model: Path) -> None:
    rows = sft_examples(8)
    rows.insert(5, {"messages": [{"role": "user", "content": "is anyone there?"}]})  # nothing to train on
    cwd = project(tmp_path, tiny_model, rows=rows)
    refused = finetune(cwd, "--submit", "--wait", check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "build/export/huggingface/train.jsonl:6" in refused.stderr and "empty_loss_mask" in refused.stderr
    assert runs(cwd) == [] and not (cwd / "models/jobs").exists()  # nothing started, nothing recorded


def test_dvc_repro_and_the_prefect_flow_reach_the_same_registry_entry(tmp_path: Path, tiny_model: Path) -> None:
    from test_flows import make_clone, sh

    finetune_params = {"local": {"export": "huggingface", "base_model": str(tiny_model), "method": "supervised",
                                 "seed": 3, "attempt": 0, "poll_interval_s": 0.2,
                                 "hyperparameters": {"max_steps": 2, "lora_r": 4, "lora_alpha": 8,
                                                     "per_device_train_batch_size": 2, "max_length": 1024}}}
    env = {**os.environ, **OFFLINE}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in OFFLINE.items():
            mp.setenv(k, v)
        short = {"max_tokens": 4}  # evaluate@local generates with the tiny model: a few tokens show the path
        a = make_clone(tmp_path / "a", submit=True, finetune=finetune_params, evaluate=short)
        sh(a, str(BIN / "dvc"), "repro")
        b = make_clone(tmp_path / "b", submit=True, finetune=finetune_params, evaluate=short)
        code = ("from flows import finetune_pipeline; finetune_pipeline(project_dir='.')")
        flow = subprocess.run([sys.executable, "-c", code], cwd=b, capture_output=True, text=True, timeout=600,
                              env={**env, "PYTHONPATH": str(b), "PREFECT_HOME": str(tmp_path / "prefect"),
                                   "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                                   "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(tmp_path / "results")})
        assert flow.returncode == 0, flow.stdout[-3000:] + flow.stderr[-3000:]
    reg_a = orjson.loads((a / "models/registry.json").read_bytes())
    reg_b = orjson.loads((b / "models/registry.json").read_bytes())
    assert reg_a == reg_b and len(reg_a) == 1
    (entry,) = (by_target["local"] for by_target in reg_a.values())
    assert entry["status"] == "succeeded" and entry["model_id"].startswith("sha256:")
    for path in ("reports/finetune/local.json", "build/models/local/model.json", "dvc.lock"):
        assert (a / path).read_bytes() == (b / path).read_bytes(), path
    adapter_hash = sha256_tree(a / "build/models/local/adapter")
    assert adapter_hash == sha256_tree(b / "build/models/local/adapter")
    # the adapter moves like data: push it, lose it, pull it back
    dvc = str(BIN / "dvc")
    sh(a, dvc, "remote", "add", "-f", "-d", "scratch", str(tmp_path / "remote"))
    sh(a, dvc, "push", "-q")
    shutil.rmtree(a / "build/models/local")
    shutil.rmtree(a / ".dvc/cache")
    sh(a, dvc, "pull", "-q", "finetune@local")
    assert sha256_tree(a / "build/models/local/adapter") == adapter_hash
    plots = orjson.loads(sh(a, dvc, "plots", "show", "--json"))
    assert "build/models/local/loss.csv" in plots["data"]  # the training loss curve is a DVC plot
