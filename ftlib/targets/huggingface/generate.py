"""Answering prompts with a locally trained LoRA adapter: transformers `generate` on the CPU or a GPU, plus the
validation loss and perplexity of the adapter on the same held-out examples.

The model id the local backend records is `sha256:<adapter hash>@<adapter folder>`; the hash is checked before the
adapter is used, so a score is never recorded for other weights than the id names. torch, transformers and peft
are imported only when a model is loaded (`ftlib evaluate` in plan mode never loads them). Prompts run one at a
time (a local model already uses every core); greedy decoding at temperature 0, seeded sampling otherwise.
"""

from __future__ import annotations

import json
import math
import re
import threading
from pathlib import Path
from typing import Any

from ftlib.errors import ConfigError
from ftlib.evaluate.generator import ModelUnavailable, Price, Reply, Settings
from ftlib.records import Example
from ftlib.targets.huggingface.formats import HF_MESSAGES

# Qwen/Hermes-style tool calls in generated text (the convention of the chat templates the local trainer uses).
_TOOL_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.S)


def parse_tool_calls(text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """(text without the tool-call blocks, ((name, arguments JSON), ...)); a block that is not JSON stays text."""
    calls = []
    for m in _TOOL_CALL.finditer(text):
        try:
            obj = json.loads(m.group(1))
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("name"), str):
            args = obj.get("arguments", {})
            calls.append((obj["name"], args if isinstance(args, str) else json.dumps(args, sort_keys=True)))
    rest = _TOOL_CALL.sub("", text).strip() if calls else text.strip()
    return rest, tuple(calls)


def adapter_path(model_id: str) -> tuple[str | None, Path]:
    """`sha256:<hash>@<folder>` -> (hash, folder); a plain folder or hub id -> (None, it)."""
    if model_id.startswith("sha256:") and "@" in model_id:
        digest, _, folder = model_id[len("sha256:"):].partition("@")
        return digest, Path(folder)
    return None, Path(model_id)


class LocalGenerator:
    name = "local"
    settings_keys = frozenset({"device"})
    max_concurrency = 1

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options = dict(options or {})
        self._loaded: dict[str, tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def check_config(self) -> None:
        from ftlib.targets.huggingface.local import LocalBackend

        LocalBackend(self.options).check_config()

    def base_model_id(self, base_model: str) -> str:
        return base_model

    def resolve(self, model_id: str, tuned: bool) -> str:
        digest, folder = adapter_path(model_id)
        if digest is None:
            return model_id
        if not (folder / "adapter_config.json").is_file() and (trained := self._in_run_folder(digest)) is not None:
            folder = trained  # the Prefect flow evaluates before DVC's finetune stage has copied the adapter out
        if not (folder / "adapter_config.json").is_file():
            raise ModelUnavailable(f"the adapter of {model_id} is not at {folder}; bring it back with `dvc pull` (or "
                                   "`dvc checkout`) of the finetune stage's output, or train again")
        from ftlib.targets.huggingface.training import adapter_sha256

        found = adapter_sha256(folder)
        if found != digest:
            raise ModelUnavailable(f"{folder} holds another adapter (sha256 {found}) than {model_id}; check out the "
                                   "commit that trained it (`dvc checkout`) before evaluating")
        return folder.as_posix()

    def _in_run_folder(self, digest: str) -> Path | None:
        """The finished run whose adapter has this hash (runs record it in state.json), if this machine has it."""
        from ftlib.targets.huggingface.local import LocalBackend
        from ftlib.targets.huggingface.runner import STATE_NAME

        for state in sorted(LocalBackend(self.options).runs_dir.glob(f"*/{STATE_NAME}")):
            try:
                recorded = json.loads(state.read_text()).get("adapter_sha256")
            except (OSError, ValueError):
                continue
            if recorded == digest and (state.parent / "adapter" / "adapter_config.json").is_file():
                return state.parent / "adapter"
        return None

    def _model(self, model: str) -> tuple[Any, Any]:
        with self._lock:
            if model not in self._loaded:
                self._loaded[model] = self._load(model)
            return self._loaded[model]

    def _load(self, model: str) -> tuple[Any, Any]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = self.options.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        path = Path(model)
        try:
            tok = AutoTokenizer.from_pretrained(model)
            if (path / "adapter_config.json").is_file():
                from peft import PeftModel

                base = json.loads((path / "adapter_config.json").read_text())["base_model_name_or_path"]
                net = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), model)
            else:
                net = AutoModelForCausalLM.from_pretrained(model)
        except OSError as e:
            raise ModelUnavailable(f"cannot load {model}: {e}") from None
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        return tok, net.to(device).eval()

    def generate(self, model: str, prompt: Example, settings: Settings) -> Reply:
        import torch

        tok, net = self._model(model)
        line = HF_MESSAGES.encode(prompt)
        inputs = tok.apply_chat_template(line["messages"], tools=line.get("tools"), add_generation_prompt=True,
                                         return_tensors="pt", return_dict=True).to(net.device)
        sample = settings.temperature > 0
        kwargs: dict[str, Any] = {"max_new_tokens": settings.max_tokens, "do_sample": sample,
                                  "pad_token_id": tok.pad_token_id}
        if sample:
            kwargs["temperature"] = settings.temperature
            torch.manual_seed(settings.seed or 0)
        else:  # greedy: unset the sampling knobs a model's generation_config may carry
            kwargs.update(temperature=None, top_p=None, top_k=None)
        with torch.no_grad():
            out = net.generate(**inputs, **kwargs)
        new = out[0][inputs["input_ids"].shape[1]:]
        text, calls = parse_tool_calls(tok.decode(new, skip_special_tokens=True))
        return Reply(text=text, tool_calls=calls, input_tokens=int(inputs["input_ids"].shape[1]),
                     output_tokens=int(new.shape[0]))

    def dataset_metrics(self, model: str, examples: list[Example]) -> dict[str, Any]:
        """Mean loss over every assistant token of the held-out examples (what the trainer's eval_loss measures,
        assistant-only), and its perplexity. Needs a chat template with {% generation %} markers."""
        import torch

        tok, net = self._model(model)
        total, count = 0.0, 0
        for ex in examples:
            line = HF_MESSAGES.encode(ex)
            enc = tok.apply_chat_template(line["messages"], tools=line.get("tools"), return_dict=True,
                                          return_assistant_tokens_mask=True, return_tensors="pt")
            mask = enc["assistant_masks"]
            mask = torch.as_tensor(mask).reshape(1, -1)
            ids = enc["input_ids"].to(net.device)
            labels = ids.masked_fill(mask.to(net.device) == 0, -100)
            n = int((labels[:, 1:] != -100).sum())
            if n == 0:
                continue
            with torch.no_grad():
                loss = net(input_ids=ids, labels=labels).loss
            total += float(loss) * n
            count += n
        if count == 0:
            raise ConfigError(f"{model}: the chat template marks no assistant token ({{% generation %}} markers), so "
                              "the validation loss cannot be computed")
        mean = total / count
        return {"eval_loss": round(mean, 6), "perplexity": round(math.exp(mean), 6), "tokens": count}

    def price(self, model_id: str, base_model: str | None, tuned: bool) -> Price:
        return Price(0.0, 0.0, "no price: runs on your own hardware")
