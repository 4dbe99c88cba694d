"""The public tools doing the job ftlib does, the way their users drive them (runs in its own venv, see run.py).

1. The seed library `ractogateway` (ractogateway.finetune.RactoDataset): load the OpenAI chat JSONL, validate it for
   OpenAI, Claude/Bedrock and Gemini, seeded split, export train and validation JSONL for each of the three.
2. The token counting of OpenAI's cookbook guide "Data preparation and analysis for chat model fine-tuning"
   (Chat_finetuning_data_prep): load the exported OpenAI train file, its format checks, its per-example token
   counts with tiktoken o200k_base, the distribution, the default-epoch rule and the billed tokens.

    tools-venv/bin/python -P benchmarks/public_tools.py INPUT.jsonl OUT_DIR [--train-ratio R] [--seed S] [--no-tokens]

Prints one JSON line with counts (so run.py can check both sides did the same job). This file imports only what
the tools' venv has: the tools themselves, numpy (the guide's import) and the standard library.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

PROVIDERS = ("openai", "anthropic", "gemini")


def ractogateway_job(src: Path, out: Path, train_ratio: float, seed: int) -> dict:
    """Load, validate for each provider, split, export each split for each provider (the library's README flow)."""
    from ractogateway.finetune import RactoDataset

    ds = RactoDataset.from_jsonl(src, provider="openai")
    errors = {p: len(ds.validate(p)) for p in PROVIDERS}
    train, val = ds.split(train_ratio, seed=seed)
    for p in PROVIDERS:
        train.export_jsonl(out / p / "train.jsonl", provider=p, overwrite=True)
        val.export_jsonl(out / p / "validation.jsonl", provider=p, overwrite=True)
    return {"examples": len(ds), "train": len(train), "validation": len(val), "errors": errors}


# -- OpenAI cookbook: Chat_finetuning_data_prep (format checks, token counts, epochs, billed tokens) ------------
def cookbook_job(data_path: Path) -> dict:
    import numpy as np
    import tiktoken

    with open(data_path, encoding="utf-8") as f:
        dataset = [json.loads(line) for line in f]

    format_errors: dict[str, int] = defaultdict(int)
    for ex in dataset:
        if not isinstance(ex, dict):
            format_errors["data_type"] += 1
            continue
        messages = ex.get("messages", None)
        if not messages:
            format_errors["missing_messages_list"] += 1
            continue
        for message in messages:
            if "role" not in message or "content" not in message:
                format_errors["message_missing_key"] += 1
            if any(k not in ("role", "content", "name", "function_call", "weight") for k in message):
                format_errors["message_unrecognized_key"] += 1
            if message.get("role", None) not in ("system", "user", "assistant", "function"):
                format_errors["unrecognized_role"] += 1
            content = message.get("content", None)
            function_call = message.get("function_call", None)
            if (not content and not function_call) or not isinstance(content, str):
                format_errors["missing_content"] += 1
        if not any(message.get("role", None) == "assistant" for message in messages):
            format_errors["example_missing_assistant_message"] += 1

    encoding = tiktoken.get_encoding("o200k_base")

    def num_tokens_from_messages(messages: list[dict], tokens_per_message: int = 3, tokens_per_name: int = 1) -> int:
        num_tokens = 0
        for message in messages:
            num_tokens += tokens_per_message
            for key, value in message.items():
                num_tokens += len(encoding.encode(value))
                if key == "name":
                    num_tokens += tokens_per_name
        num_tokens += 3
        return num_tokens

    def num_assistant_tokens_from_messages(messages: list[dict]) -> int:
        num_tokens = 0
        for message in messages:
            if message["role"] == "assistant":
                num_tokens += len(encoding.encode(message["content"]))
        return num_tokens

    def distribution(values: list[int]) -> dict:
        return {"min": int(np.min(values)), "max": int(np.max(values)), "mean": float(np.mean(values)),
                "median": float(np.median(values)), "p5": float(np.quantile(values, 0.1)),
                "p95": float(np.quantile(values, 0.9))}

    n_missing_system = 0
    n_missing_user = 0
    n_messages = []
    convo_lens = []
    assistant_message_lens = []
    for ex in dataset:
        messages = ex["messages"]
        if not any(message["role"] == "system" for message in messages):
            n_missing_system += 1
        if not any(message["role"] == "user" for message in messages):
            n_missing_user += 1
        n_messages.append(len(messages))
        convo_lens.append(num_tokens_from_messages(messages))
        assistant_message_lens.append(num_assistant_tokens_from_messages(messages))
    stats = {"messages": distribution(n_messages), "tokens": distribution(convo_lens),
             "assistant_tokens": distribution(assistant_message_lens)}
    max_tokens_per_example = 65536  # the guide's MAX_TOKENS_PER_EXAMPLE, at today's gpt-4o(-mini) limit
    n_too_long = sum(length > max_tokens_per_example for length in convo_lens)

    target_epochs = 3
    min_target_examples = 100
    max_target_examples = 25000
    min_default_epochs = 1
    max_default_epochs = 25
    n_epochs = target_epochs
    n_train_examples = len(dataset)
    if n_train_examples * target_epochs < min_target_examples:
        n_epochs = min(max_default_epochs, min_target_examples // n_train_examples)
    elif n_train_examples * target_epochs > max_target_examples:
        n_epochs = max(min_default_epochs, max_target_examples // n_train_examples)
    n_billing_tokens_in_dataset = sum(min(max_tokens_per_example, length) for length in convo_lens)
    return {"examples": n_train_examples, "format_errors": dict(format_errors), "too_long": n_too_long,
            "missing_system": n_missing_system, "missing_user": n_missing_user, "stats": stats,
            "tokens": sum(convo_lens), "n_epochs": n_epochs, "billed_tokens": n_epochs * n_billing_tokens_in_dataset}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--train-ratio", type=float, default=0.75)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-tokens", action="store_true", help="skip the cookbook's token counting")
    args = ap.parse_args()
    result = {"ractogateway": ractogateway_job(args.src, args.out, args.train_ratio, args.seed)}
    if not args.no_tokens:
        result["cookbook"] = cookbook_job(args.out / "openai" / "train.jsonl")
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
