"""Local LoRA training with TRL + PEFT (SFT and DPO), and the preflight that checks data against the model's template.

Heavy: imports torch, transformers, trl and peft at the top. Only the training subprocess (runner.py) and preflight
import this module; the core of ftlib never does.

Run directory layout (everything a run writes stays inside it):
    spec.json          the run's inputs (written by the caller)
    runner.lock        flock held by the live runner (runner.py)
    state.json         running / succeeded / failed / cancelled (runner.py)
    log.txt            library logs and tracebacks (runner.py)
    progress.jsonl     one line per step / log / evaluation, appended (survives resumes)
    checkpoints/       TRL checkpoint-N folders; the newest complete one is resumed from
    adapter/           the final LoRA adapter + tokenizer, replaced as a whole
    loss.csv           step,loss from progress.jsonl (for a DVC plot)
    result.json        adapter hash, losses, steps, versions, device
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import datasets
import torch
import transformers
from peft import LoraConfig
from transformers import (
    AutoTokenizer,
    PrinterCallback,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)
from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer
from trl.data_utils import common_prefix_length, extract_prompt

from ftlib.issues import Issue
from ftlib.jsonfile import write_json_atomic

METHODS = ("supervised", "dpo")
_GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")
TRAINER_STATE_NAME = "trainer_state.json"  # transformers.trainer.TRAINER_STATE_NAME
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")  # transformers.trainer_utils.PREFIX_CHECKPOINT_DIR
_VERSIONED = ("torch", "transformers", "trl", "peft", "accelerate", "datasets")
_MAX_ERROR = 200


# -- preflight ---------------------------------------------------------------------------------------------------------

def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _safe_error(exc: BaseException, row: Any = None) -> str:
    """One line naming the failure without quoting training text (template errors can echo message content)."""
    text = (str(exc).strip().splitlines() or [""])[0]
    for s in sorted({s for s in _strings(row) if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(s, "<redacted>")
    if len(text) > _MAX_ERROR:
        text = text[:_MAX_ERROR] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _read_rows(path: Path, issues: list[Issue]) -> list[tuple[int, Any]]:
    """(line number, row) for every non-blank line, as `datasets` hands them to TRL when the whole file loads.

    `datasets` fills top-level keys a row lacks with nulls (e.g. "tools") and may refuse a file whose types vary
    between lines; templates can behave differently on that, so rows are read through it exactly like training does.
    Lines that are not JSON are reported and the raw objects are rendered instead.
    """
    lines: list[tuple[int, Any]] = []
    clean = True
    with path.open(encoding="utf-8") as fh:
        for no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                lines.append((no, json.loads(line)))
            except ValueError as e:
                clean = False
                issues.append(Issue("unparseable_line", "error", f"not a JSON object: {_safe_error(e)}; "
                                    "write one JSON object per line", source=f"{path}:{no}"))
    if not clean or not all(isinstance(obj, dict) for _, obj in lines):
        return lines  # datasets would refuse the file: render the raw objects
    with tempfile.TemporaryDirectory(prefix="ftlib-preflight-") as cache:
        try:
            ds = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=cache)
            rows = ds.to_list()
        except Exception as e:
            issues.append(Issue("dataset_load_error", "error",
                                f"datasets.load_dataset('json') cannot load the file, so training cannot start: "
                                f"{_safe_error(e)}; make every line use the same types for the same keys",
                                source=str(path)))
            return lines
    if len(rows) != len(lines):
        return lines
    return [(no, row) for (no, _), row in zip(lines, rows, strict=True)]


def _template_has_generation(tok: Any, tools: Any = None) -> bool:
    try:
        template = tok.get_chat_template(None, tools)
    except Exception:
        return False
    return bool(_GENERATION_TAG.search(template))


def _tools(row: dict[str, Any]) -> Any:
    tools = row.get("tools")
    return json.loads(tools) if isinstance(tools, str) else (tools or None)


def _check_sft(tok: Any, row: Any, where: str, max_length: int, markers: bool, issues: list[Issue]) -> int | None:
    """Render one hf-messages row like SFTTrainer does; return its token count (None when it cannot render)."""
    messages = row.get("messages") if isinstance(row, dict) else None
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        issues.append(Issue("unparseable_line", "error", 'expected {"messages": [{"role", "content"}, ...]}; '
                            "write each line as an hf-messages object", source=where, field="messages"))
        return None
    try:
        out = tok.apply_chat_template(messages, tools=_tools(row), tokenize=True, return_dict=True,
                                      return_assistant_tokens_mask=markers)
    except Exception as e:
        issues.append(Issue("chat_template_error", "error", f"the model's chat template cannot render this example: "
                            f"{_safe_error(e, row)}; fix the example or use a template that supports it",
                            source=where, field="messages"))
        return None
    n = len(out["input_ids"])
    if markers:
        mask = out["assistant_masks"]
        if not any(mask):
            issues.append(Issue("empty_loss_mask", "error", "no assistant token to learn from (no assistant message, "
                                "or only empty ones); TRL refuses such rows with assistant-only loss: add an "
                                "assistant reply or drop the example", source=where, field="messages"))
        elif n > max_length and not any(mask[:max_length]):
            issues.append(Issue("empty_loss_mask", "error", f"every assistant token lies after max_length "
                                f"({max_length}); TRL silently drops the row: raise max_length or shorten the "
                                "prompt", source=where, field="messages"))
    if n > max_length:
        issues.append(Issue("truncated_by_max_length", "warning", f"{n} tokens, longer than max_length "
                            f"{max_length}: the last {n - max_length} are cut before training", source=where,
                            field="messages"))
    return n


def _check_dpo(tok: Any, row: Any, where: str, max_length: int, issues: list[Issue]) -> tuple[int, int] | None:
    """Tokenize one preference row like DPOTrainer does; return the two sequence lengths."""
    if not isinstance(row, dict) or "chosen" not in row or "rejected" not in row:
        issues.append(Issue("unparseable_line", "error", 'expected {"prompt", "chosen", "rejected"}; write each line '
                            "as a trl-preference object", source=where))
        return None
    try:
        ex = dict(row) if row.get("prompt") is not None else {**row, **extract_prompt(row)}
        prompt, chosen, rejected = ex["prompt"], ex["chosen"], ex["rejected"]
        if isinstance(prompt, list):
            kw = {"tools": _tools(row), "tokenize": True, "return_dict": True}
            prompt_ids = tok.apply_chat_template(prompt, add_generation_prompt=True, **kw)["input_ids"]
            chosen_ids = tok.apply_chat_template(prompt + chosen, **kw)["input_ids"]
            rejected_ids = tok.apply_chat_template(prompt + rejected, **kw)["input_ids"]
        else:
            eos = tok.eos_token or ""
            chosen = chosen if chosen.endswith(eos) else chosen + eos
            rejected = rejected if rejected.endswith(eos) else rejected + eos
            prompt_ids = tok(text=prompt)["input_ids"]
            chosen_ids = tok(text=prompt + chosen)["input_ids"]
            rejected_ids = tok(text=prompt + rejected)["input_ids"]
    except Exception as e:
        issues.append(Issue("chat_template_error", "error", f"the model's chat template cannot render this example: "
                            f"{_safe_error(e, row)}; fix the example or use a template that supports it",
                            source=where, field="prompt"))
        return None
    cut = min(common_prefix_length(prompt_ids, chosen_ids), common_prefix_length(prompt_ids, rejected_ids))
    for name, ids in (("chosen", chosen_ids), ("rejected", rejected_ids)):
        if len(ids) <= cut:
            issues.append(Issue("empty_loss_mask", "error", f"the {name} reply adds no token after the prompt, so "
                                "there is nothing to compare: give it a non-empty reply", source=where, field=name))
    if cut >= max_length:
        issues.append(Issue("empty_loss_mask", "error", f"the prompt alone has {cut} tokens and fills max_length "
                            f"({max_length}); TRL silently drops the row: raise max_length or shorten the prompt",
                            source=where, field="prompt"))
    longest = max(len(chosen_ids), len(rejected_ids))
    if longest > max_length:
        issues.append(Issue("truncated_by_max_length", "warning", f"{longest} tokens, longer than max_length "
                            f"{max_length}: the last {longest - max_length} are cut before training", source=where,
                            field="chosen" if len(chosen_ids) >= len(rejected_ids) else "rejected"))
    return len(chosen_ids), len(rejected_ids)


def preflight(files: list[Path], base_model: str, method: str, max_length: int) -> tuple[list[Issue], dict[str, int]]:
    """Render every example with the base model's own tokenizer and chat template before paying for training.

    Catches what TRL only finds mid-run or hides: templates that fail on a row, rows with no assistant token to learn
    from (SFTTrainer refuses them, or silently drops them when truncation cut every assistant token), templates
    without `{% generation %}` markers (assistant-only loss impossible) and examples longer than max_length.
    Stats count the model's tokens: for DPO both sequences (prompt+chosen, prompt+rejected) of every example.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    issues: list[Issue] = []
    stats = {"examples": 0, "tokens": 0, "max_tokens": 0, "truncated": 0}
    try:
        tok = AutoTokenizer.from_pretrained(base_model)
    except Exception as e:
        issues.append(Issue("tokenizer_error", "error", f"cannot load the tokenizer of {base_model!r}: "
                            f"{_safe_error(e)}; check the model folder or hub id", field="base_model"))
        return issues, stats
    if not getattr(tok, "chat_template", None):
        issues.append(Issue("chat_template_error", "error", f"{base_model!r} has no chat template, so conversations "
                            "cannot be rendered; use a chat (instruct) model or set a chat template",
                            field="chat_template"))
        return issues, stats
    markers = True
    if method == "supervised" and not _template_has_generation(tok):
        markers = False
        issues.append(Issue("no_generation_markers", "error", f"the chat template of {base_model!r} has no "
                            "{% generation %} ... {% endgeneration %} markers, so assistant-only loss is impossible "
                            "(TRL would mask every token); use a chat template with generation markers around the "
                            "assistant output", field="chat_template"))
    for path in map(Path, files):
        for no, row in _read_rows(path, issues):
            where = f"{path}:{no}"
            if method == "supervised":
                n = _check_sft(tok, row, where, max_length, markers, issues)
                lengths = () if n is None else (n,)
            else:
                pair = _check_dpo(tok, row, where, max_length, issues)
                lengths = pair or ()
            if not lengths:
                continue
            stats["examples"] += 1
            stats["tokens"] += sum(lengths)
            stats["max_tokens"] = max(stats["max_tokens"], *lengths)
            stats["truncated"] += int(max(lengths) > max_length)
    return issues, stats


# -- progress ----------------------------------------------------------------------------------------------------------

def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


class ProgressLog(TrainerCallback):
    """Appends one JSON line per optimizer step (merged with its logged loss) and per evaluation.

    Each line is flushed as written so a watcher, or a run resumed after kill -9, sees every finished step.
    """

    def __init__(self, path: Path, echo: bool = True) -> None:
        self.path = path
        self.echo = echo
        self._pending: dict[str, Any] | None = None
        self._t0 = time.monotonic()
        self._step0 = 0
        self._fh: io.TextIOWrapper | None = None

    def _open(self) -> io.TextIOWrapper:
        if self._fh is None:
            needs_newline = False
            if self.path.exists() and self.path.stat().st_size > 0:
                with self.path.open("rb") as fh:
                    fh.seek(-1, os.SEEK_END)
                    needs_newline = fh.read(1) != b"\n"
            self._fh = self.path.open("a", encoding="utf-8")
            if needs_newline:  # a line cut by kill -9: end it so the next one parses
                self._fh.write("\n")
        return self._fh

    def _line(self, state: TrainerState) -> dict[str, Any]:
        done = state.global_step - self._step0
        elapsed = time.monotonic() - self._t0
        eta = elapsed / done * max(state.max_steps - state.global_step, 0) if done > 0 else None
        return {"step": state.global_step, "max_steps": state.max_steps,
                "epoch": round(state.epoch, 4) if state.epoch is not None else None,
                "eta_s": round(eta, 1) if eta is not None else None}

    def _write(self, line: dict[str, Any]) -> None:
        fh = self._open()
        fh.write(json.dumps(line, sort_keys=True) + "\n")
        fh.flush()
        if self.echo:
            parts = [f"step {line['step']}/{line['max_steps']}"]
            if line.get("epoch") is not None:
                parts.append(f"epoch {line['epoch']:.2f}")
            for key in ("loss", "eval_loss"):
                if key in line:
                    parts.append(f"{key} {line[key]:.4f}" if line[key] is not None else f"{key} nan")
            if line.get("eta_s") is not None:
                parts.append(f"eta {line['eta_s']:.0f}s")
            try:
                print("  ".join(parts), flush=True)
            except OSError:  # stdout closed (a pipe reader gone): progress.jsonl still has every line
                self.echo = False
                with contextlib.suppress(OSError):
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, sys.stdout.fileno())
                    os.close(devnull)

    def _flush_pending(self) -> None:
        if self._pending is not None:
            self._write(self._pending)
            self._pending = None

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        self._t0 = time.monotonic()
        self._step0 = state.global_step

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        self._flush_pending()
        self._pending = self._line(state)  # held back: the loss of this step is logged right after

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        keys = [k for k in ("loss", "eval_loss") if k in logs]
        if not keys:
            return
        if self._pending is not None and self._pending["step"] == state.global_step:
            line = self._pending
        else:
            self._flush_pending()
            line = self._line(state)
        for key in keys:
            line[key] = _finite(logs[key])  # a diverged (nan/inf) loss is kept, as null: JSON has no NaN
        self._pending = None
        self._write(line)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: Any) -> None:
        self._flush_pending()

    def close(self) -> None:
        self._flush_pending()
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def read_progress(path: Path) -> list[dict[str, Any]]:
    """Progress lines, skipping a line cut by kill -9."""
    out = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def write_loss_csv(progress: Path, out: Path) -> None:
    """step,loss for a DVC plot; a step repeated after a resume keeps its latest value."""
    losses = {p["step"]: p["loss"] for p in read_progress(progress) if p.get("loss") is not None}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["step", "loss"])
    for step in sorted(losses):
        w.writerow([step, repr(losses[step])])
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(tmp, out)


# -- checkpoints and the adapter ---------------------------------------------------------------------------------------

def _complete(ckpt: Path) -> bool:
    """Trainer writes trainer_state.json last: a checkpoint cut by kill -9 lacks it or holds half of it."""
    try:
        json.loads((ckpt / TRAINER_STATE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def latest_checkpoint(ckpt_dir: Path, prune: bool = False) -> Path | None:
    """The newest complete checkpoint (read-only by default: a live run may be writing a newer one).

    `prune=True`, only for the process that owns the run, deletes incomplete newer ones so that Trainer's own pick
    (`resume_from_checkpoint=True` takes the highest number) lands on the complete one.
    """
    if not ckpt_dir.is_dir():
        return None
    found = sorted(((int(m.group(1)), p) for p in ckpt_dir.iterdir()
                    if p.is_dir() and (m := _CHECKPOINT.match(p.name))), reverse=True)
    for _, path in found:
        if _complete(path):
            return path
        if prune:
            shutil.rmtree(path, ignore_errors=True)
    return None


def adapter_sha256(adapter_dir: Path) -> str:
    """sha256 over the sorted (relative path, file sha256) pairs: one id for the whole adapter folder."""
    h = hashlib.sha256()
    for rel, p in sorted((p.relative_to(adapter_dir).as_posix(), p) for p in adapter_dir.rglob("*") if p.is_file()):
        h.update(f"{rel}\0{hashlib.sha256(p.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()


def _publish(tmp: Path, final: Path) -> None:
    """Swap a finished folder into place: readers see the old adapter or the new one (for an instant, none when one
    is replaced), never a mix of files; a kill between the renames leaves .adapter-* folders, removed on the next run.
    """
    if final.exists():
        old = final.with_name(f".{final.name}-old-{os.getpid()}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def _clean_leftovers(run_dir: Path) -> None:
    for p in run_dir.glob(".adapter-*"):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def _versions() -> dict[str, str]:
    out = {}
    for name in _VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "missing"
    return out


def _train_loss(trainer: Any, train_output: Any, resumed: bool) -> float | None:
    """Mean training loss of the whole run; after a resume Trainer only averages the steps since the resume, so the
    logged losses (kept in trainer_state across resumes) are averaged, weighted by the steps each one covers."""
    if not resumed:
        return _finite(train_output.training_loss)
    prev, total, steps = 0, 0.0, 0
    for entry in trainer.state.log_history:
        if "loss" in entry and "step" in entry and _finite(entry["loss"]) is not None:
            span = entry["step"] - prev
            total, steps, prev = total + entry["loss"] * span, steps + span, entry["step"]
    return total / steps if steps else None


# -- training ----------------------------------------------------------------------------------------------------------

def _resolve(run_dir: Path, file: str) -> str:
    p = Path(file)
    return str(p if p.is_absolute() else (run_dir / p).resolve())


def run_training(run_dir: Path) -> dict[str, Any]:
    """Train the LoRA adapter described by run_dir/spec.json, resuming from the newest checkpoint if one exists.

    Data files given as relative paths are read relative to run_dir. Returns (and writes to result.json) the adapter
    hash, losses, step count, library versions and device.
    """
    run_dir = Path(run_dir).resolve()
    spec = json.loads((run_dir / "spec.json").read_text(encoding="utf-8"))
    method, base_model, seed = spec["method"], spec["base_model"], int(spec.get("seed", 0))
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    hp = spec["hyperparameters"]
    ckpt_dir = run_dir / "checkpoints"
    _clean_leftovers(run_dir)
    resume = latest_checkpoint(ckpt_dir, prune=True)

    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    # Deterministic algorithms cost little on the CPU; on a GPU full determinism forces CUDA_LAUNCH_BLOCKING, so
    # there the run is seeded but kernels may still differ in the last bits.
    if cuda:
        transformers.set_seed(seed)
    else:
        transformers.enable_full_determinism(seed)

    common: dict[str, Any] = {
        "output_dir": str(ckpt_dir),
        "max_steps": int(hp.get("max_steps", -1)),
        "num_train_epochs": float(hp.get("num_train_epochs", 1.0)),
        "learning_rate": float(hp["learning_rate"]),
        "per_device_train_batch_size": int(hp.get("per_device_train_batch_size", 1)),
        "per_device_eval_batch_size": int(hp.get("per_device_train_batch_size", 1)),
        "gradient_accumulation_steps": int(hp.get("gradient_accumulation_steps", 1)),
        "max_length": int(hp["max_length"]),
        "save_strategy": "steps",
        "save_steps": int(hp.get("save_steps", 500)),
        "save_total_limit": 2,
        "logging_steps": int(hp.get("logging_steps", 10)),
        "eval_strategy": "no",
        "seed": seed,
        "data_seed": seed,
        "full_determinism": not cuda,
        "report_to": [],
        "disable_tqdm": True,
        "use_cpu": not cuda,
        "bf16": bf16,
        "model_init_kwargs": {"dtype": torch.bfloat16} if bf16 else None,
    }
    lora = LoraConfig(r=int(hp["lora_r"]), lora_alpha=int(hp["lora_alpha"]), lora_dropout=float(hp["lora_dropout"]),
                      target_modules="all-linear", task_type="CAUSAL_LM")
    tok = AutoTokenizer.from_pretrained(base_model)
    tok.init_kwargs.pop("local_files_only", None)  # HF_HUB_OFFLINE would leak into the adapter's tokenizer_config
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token

    files = {"train": _resolve(run_dir, spec["train_file"])}
    if spec.get("validation_file"):
        files["validation"] = _resolve(run_dir, spec["validation_file"])
    progress = ProgressLog(run_dir / "progress.jsonl")
    cache = tempfile.mkdtemp(prefix=".datasets-", dir=run_dir)
    try:
        data = datasets.load_dataset("json", data_files=files, cache_dir=cache)
        train, evaluation = data["train"], data.get("validation")
        if method == "supervised":
            trainer: Any = SFTTrainer(model=base_model, args=SFTConfig(**common, assistant_only_loss=True),
                                      train_dataset=train, eval_dataset=evaluation, processing_class=tok,
                                      peft_config=lora)
        else:
            trainer = DPOTrainer(model=base_model, args=DPOConfig(**common, beta=float(hp.get("beta", 0.1))),
                                 train_dataset=train, eval_dataset=evaluation, processing_class=tok,
                                 peft_config=lora)
        trainer.remove_callback(PrinterCallback)  # disable_tqdm adds it: it prints raw log dicts; ProgressLog prints
        trainer.add_callback(progress)
        output = trainer.train(resume_from_checkpoint=True if resume else None)
        eval_loss = None
        if evaluation is not None:
            eval_loss = _finite(trainer.evaluate().get("eval_loss"))
        progress.close()
        if not trainer.is_world_process_zero():
            return {}
        tmp = Path(tempfile.mkdtemp(prefix=".adapter-", dir=run_dir))
        tmp.chmod(0o755)  # mkdtemp makes it private; the adapter is a normal output folder
        model = trainer.accelerator.unwrap_model(trainer.model)
        for cfg in getattr(model, "peft_config", {}).values():
            if isinstance(cfg.target_modules, set | list | tuple):  # a set: its order varies with PYTHONHASHSEED
                cfg.target_modules = sorted(cfg.target_modules)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        _publish(tmp, run_dir / "adapter")
    finally:
        progress.close()
        shutil.rmtree(cache, ignore_errors=True)

    write_loss_csv(run_dir / "progress.jsonl", run_dir / "loss.csv")
    result = {
        "adapter_sha256": adapter_sha256(run_dir / "adapter"),
        "adapter_dir": "adapter",
        "train_loss": _train_loss(trainer, output, resume is not None),
        "eval_loss": eval_loss,
        "steps": trainer.state.global_step,
        "versions": _versions(),
        "device": "cuda" if cuda else "cpu",
    }
    write_json_atomic(run_dir / "result.json", result)
    return result
