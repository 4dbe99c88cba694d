"""Real LoRA training on a tiny random Llama, offline, on the CPU: preflight, SFT, DPO, kill -9 + resume, the lock."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}
os.environ.update(OFFLINE)  # before huggingface_hub reads them at import (importorskip below imports it)

pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("trl")

from tiny_model import build_tiny_model, corpus, preference_examples, sft_examples, write_jsonl  # noqa: E402

from ftlib.targets.huggingface import runner  # noqa: E402
from ftlib.targets.huggingface.local import training_command  # noqa: E402
from ftlib.targets.huggingface.training import (  # noqa: E402
    latest_checkpoint,
    preflight,
    read_progress,
    run_training,
)

pytestmark = pytest.mark.training
ROOT = Path(__file__).resolve().parent.parent


def _hp(**over: Any) -> dict[str, Any]:
    hp = {"max_steps": 6, "num_train_epochs": 1.0, "learning_rate": 1e-3, "lora_r": 4, "lora_alpha": 8,
          "lora_dropout": 0.0, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "max_length": 256,
          "save_steps": 3, "beta": 0.1, "logging_steps": 1}
    return {**hp, **over}


def _run_dir(tmp_path: Path, base: Path, method: str, validation: bool = True, seed: int = 7, **hp: Any) -> Path:
    run = tmp_path / f"run-{method}"
    run.mkdir()
    if method == "supervised":
        write_jsonl(run / "train.jsonl", sft_examples(24))
        write_jsonl(run / "validation.jsonl", sft_examples(6))
    else:
        write_jsonl(run / "train.jsonl", preference_examples(16))
        write_jsonl(run / "validation.jsonl", preference_examples(4))
    spec = {"base_model": str(base), "method": method, "train_file": str(run / "train.jsonl"),
            "validation_file": str(run / "validation.jsonl") if validation else None,
            "hyperparameters": _hp(**hp), "seed": seed}
    (run / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    return run


def _env() -> dict[str, str]:
    env = {**os.environ, **OFFLINE, "PYTHONPATH": str(ROOT)}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def _runner(run: Path, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "ftlib.targets.huggingface.runner", str(run)], cwd=ROOT,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _assert_run_outputs(run: Path, result: dict[str, Any], steps: int) -> None:
    adapter = run / "adapter"
    assert (adapter / "adapter_config.json").is_file()
    assert (adapter / "adapter_model.safetensors").is_file()
    assert math.isfinite(result["train_loss"]) and math.isfinite(result["eval_loss"])
    assert result["steps"] == steps and result["device"] == "cpu" and result["adapter_dir"] == "adapter"
    assert set(result["versions"]) == {"torch", "transformers", "trl", "peft", "accelerate", "datasets"}
    assert json.loads((run / "result.json").read_text()) == result
    progress = read_progress(run / "progress.jsonl")
    losses = [p for p in progress if "loss" in p]
    assert [p["step"] for p in losses] == list(range(1, steps + 1))
    assert all(p["max_steps"] == steps and math.isfinite(p["loss"]) for p in losses)
    assert any("eval_loss" in p for p in progress)
    csv_lines = (run / "loss.csv").read_text().splitlines()
    assert csv_lines[0] == "step,loss" and len(csv_lines) == steps + 1
    assert not list(run.glob(".adapter-*")) and not list(run.glob(".datasets-*"))


# -- preflight ---------------------------------------------------------------------------------------------------------

def test_preflight_clean_data_has_no_issue(tiny_model: Path, tmp_path: Path) -> None:
    sft = write_jsonl(tmp_path / "sft.jsonl", sft_examples(24))
    issues, stats = preflight([sft], str(tiny_model), "supervised", 256)
    assert issues == []
    assert stats["examples"] == 24 and stats["truncated"] == 0
    assert 0 < stats["max_tokens"] <= stats["tokens"]

    pref = write_jsonl(tmp_path / "pref.jsonl", preference_examples(16))
    issues, stats = preflight([pref], str(tiny_model), "dpo", 256)
    assert issues == [] and stats["examples"] == 16


def test_preflight_reports_empty_loss_mask_and_bad_lines(tiny_model: Path, tmp_path: Path) -> None:
    no_reply = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]}
    long_prompt = {"messages": [{"role": "user", "content": "tell me everything " * 80},
                                {"role": "assistant", "content": "No."}]}
    good = sft_examples(3)
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [good[2], no_reply, long_prompt]) + "\n\n{not json\n")
    issues, stats = preflight([path], str(tiny_model), "supervised", 64)
    by_source = {(i.code, i.source) for i in issues}
    assert ("empty_loss_mask", f"{path}:2") in by_source  # no assistant turn
    assert ("empty_loss_mask", f"{path}:3") in by_source  # every assistant token after max_length
    assert ("truncated_by_max_length", f"{path}:3") in by_source
    assert ("unparseable_line", f"{path}:5") in by_source  # line numbers count the blank line
    assert all(i.severity == "error" for i in issues if i.code != "truncated_by_max_length")
    assert stats["examples"] == 3

    weird = tmp_path / "weird.jsonl"
    write_jsonl(weird, [good[2], {"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "x"}]}])
    issues, _ = preflight([weird], str(tiny_model), "supervised", 256)
    assert ("chat_template_error", f"{weird}:2") in {(i.code, i.source) for i in issues}


def test_preflight_reports_truncation_without_quoting_text(tiny_model: Path, tmp_path: Path) -> None:
    rows = sft_examples(4)
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    issues, stats = preflight([path], str(tiny_model), "supervised", 40)
    truncated = [i for i in issues if i.code == "truncated_by_max_length"]
    assert truncated and all(i.severity == "warning" for i in truncated)
    assert stats["truncated"] == len(truncated) and stats["max_tokens"] > 40
    first = truncated[0]
    assert first.source == f"{path}:1" and "max_length 40" in first.message
    assert first.message.split()[0].isdigit()  # the token count leads the message
    texts = [m["content"] for r in rows for m in r["messages"] if len(m["content"] or "") > 8]
    assert not any(t in i.message for i in issues for t in texts)

    pref = write_jsonl(tmp_path / "pref.jsonl", preference_examples(3))
    issues, stats = preflight([pref], str(tiny_model), "dpo", 40)  # prompts ~30 tokens, pairs ~45
    assert {i.code for i in issues} == {"truncated_by_max_length"} and stats["truncated"] == 3


def test_preflight_without_generation_markers_is_an_error(tmp_path: Path) -> None:
    base = build_tiny_model(tmp_path / "no-markers", corpus(), generation_markers=False)
    path = write_jsonl(tmp_path / "train.jsonl", sft_examples(5))
    issues, stats = preflight([path], str(base), "supervised", 256)
    assert [i.code for i in issues] == ["no_generation_markers"]
    assert issues[0].severity == "error" and "generation markers" in issues[0].message
    assert stats["examples"] == 5
    # DPO does not mask by template, so the same model is fine for it.
    pref = write_jsonl(tmp_path / "pref.jsonl", preference_examples(3))
    assert preflight([pref], str(base), "dpo", 256)[0] == []


# -- training ----------------------------------------------------------------------------------------------------------

def test_sft_run_writes_adapter_result_and_progress(tiny_model: Path, tmp_path: Path) -> None:
    run = _run_dir(tmp_path, tiny_model, "supervised")
    result = run_training(run)
    _assert_run_outputs(run, result, steps=6)
    assert json.loads((run / "adapter" / "adapter_config.json").read_text())["r"] == 4

    # Same spec, another run dir, same process: the adapter bytes match (on this CPU, full determinism on).
    (tmp_path / "again").mkdir()
    again = _run_dir(tmp_path / "again", tiny_model, "supervised")
    assert run_training(again)["adapter_sha256"] == result["adapter_sha256"]


def test_dpo_run_writes_adapter_result_and_progress(tiny_model: Path, tmp_path: Path) -> None:
    run = _run_dir(tmp_path, tiny_model, "dpo")
    result = run_training(run)
    _assert_run_outputs(run, result, steps=6)


def _wait_for(proc: subprocess.Popen[str], ready: Any, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.02)


def test_runner_killed_mid_training_resumes_from_checkpoint(tiny_model: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    steps = 20
    hp = {"max_steps": steps, "save_steps": 2, "per_device_train_batch_size": 1}
    run = _run_dir(tmp_path, tiny_model, "supervised", **hp)
    proc = _runner(run)
    try:
        _wait_for(proc, lambda: latest_checkpoint(run / "checkpoints") is not None, "checkpoint")
        proc.send_signal(signal.SIGSTOP)  # frozen mid-training, lock still held: the kill lands before the end
        assert runner.is_live(run)
        second = _runner(run)  # a second runner on a live run is refused at once
        _, err = second.communicate(timeout=60)
        assert second.returncode == runner.EXIT_LOCKED
        assert err.strip() == f"another runner holds {run}"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not runner.is_live(run)
    assert json.loads((run / "state.json").read_text())["state"] == "running"  # dead, but never told anyone
    checkpoint = latest_checkpoint(run / "checkpoints")
    assert checkpoint is not None
    resumed_from = int(checkpoint.name.split("-")[1])
    assert resumed_from < steps
    lines_before = len(read_progress(run / "progress.jsonl"))

    capsys.readouterr()
    assert runner.main([str(run)]) == 0  # the re-run, in-process: saves a second torch import (seconds here)
    out, err = capsys.readouterr()
    state = json.loads((run / "state.json").read_text())
    assert state["state"] == "succeeded" and state["steps"] == steps
    after = [p for p in read_progress(run / "progress.jsonl")[lines_before:] if "loss" in p]
    assert [p["step"] for p in after] == list(range(resumed_from + 1, steps + 1))
    assert f"step {steps}/{steps}" in out and "Traceback" not in err
    assert [p.name for p in run.iterdir() if "adapter" in p.name] == ["adapter"]
    trainer_state = json.loads((run / "checkpoints" / f"checkpoint-{steps}" / "trainer_state.json").read_text())
    assert trainer_state["global_step"] == steps
    assert math.isfinite(state["train_loss"])
    loss_steps = [int(line.split(",")[0]) for line in (run / "loss.csv").read_text().splitlines()[1:]]
    assert loss_steps == list(range(1, steps + 1))  # steps redone after the resume appear once

    # The interrupted run ends with the same adapter bytes as one that was never interrupted.
    (tmp_path / "straight").mkdir()
    straight = run_training(_run_dir(tmp_path / "straight", tiny_model, "supervised", **hp))
    assert straight["adapter_sha256"] == state["adapter_sha256"]


def test_runner_sigterm_records_cancelled(tiny_model: Path, tmp_path: Path) -> None:
    run = _run_dir(tmp_path, tiny_model, "supervised", max_steps=20, per_device_train_batch_size=1, save_steps=50)
    proc = _runner(run)
    _wait_for(proc, lambda: bool(read_progress(run / "progress.jsonl")), "progress line")
    proc.send_signal(signal.SIGSTOP)  # queue the TERM while frozen so it lands mid-training
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert json.loads((run / "state.json").read_text())["state"] == "cancelled"
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (run / "adapter").exists() and not runner.is_live(run)


def test_lock_refuses_a_second_runner(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "spec.json").write_text("{}")
    fd = runner.take_lock(run)
    assert fd is not None
    try:
        assert runner.is_live(run)
        proc = _runner(run)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == runner.EXIT_LOCKED and err == f"another runner holds {run}\n"
        assert not (run / "state.json").exists()
    finally:
        os.close(fd)
    assert not runner.is_live(run)


def test_runner_failure_is_one_line_with_traceback_in_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _run_dir(tmp_path, tmp_path / "no-such-model", "supervised")
    assert runner.main([str(run)]) == runner.EXIT_FAILED
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    state = json.loads((run / "state.json").read_text())
    assert state["state"] == "failed" and "\n" not in state["error"]
    assert "Traceback" in (run / "log.txt").read_text()
    assert not runner.is_live(run)


def test_training_command() -> None:
    run = Path("/runs/r1")
    assert training_command(run, 4, python="/venv/bin/python") == [
        "/venv/bin/python", "-m", "accelerate.commands.launch", "--num_processes", "4", "--multi_gpu",
        "-m", "ftlib.targets.huggingface.runner", "/runs/r1"]
    assert training_command(run, 1, python="py") == ["py", "-m", "ftlib.targets.huggingface.runner", "/runs/r1"]
    with pytest.raises(ValueError):
        training_command(run, 0)
