"""Format registry: every JSONL line shape ftlib reads or writes, keyed by name, plus provider mappings.

Adding a format is one module plus one line in FORMATS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import orjson

from ftlib.formats.anthropic import BEDROCK_CLAUDE
from ftlib.formats.base import Format, FormatError
from ftlib.formats.gemini import VERTEX_PREFERENCE, VERTEX_SFT
from ftlib.formats.huggingface import HF_MESSAGES, TRL_PREFERENCE
from ftlib.formats.openai import OPENAI_CHAT, OPENAI_DPO
from ftlib.issues import Issue
from ftlib.records import Example

# Order is detection priority: shapes with distinctive keys first, the plain {"messages": [...]} catch-all last.
# bedrock-claude needs a top-level "system" string and hf-messages an HF-only marker (object tool arguments,
# tool results without ids, "image" parts, reasoning_content); any other "messages" line reads as openai-chat,
# which gives the same Example for the plain text they share.
FORMATS: dict[str, Format] = {
    f.name: f
    for f in (OPENAI_DPO, VERTEX_PREFERENCE, VERTEX_SFT, TRL_PREFERENCE, BEDROCK_CLAUDE, HF_MESSAGES, OPENAI_CHAT)
}

# Which format each export target writes, per example kind (None: the target cannot hold that kind).
PROVIDER_FORMATS: dict[str, dict[str, str | None]] = {
    "openai": {"sft": "openai-chat", "preference": "openai-dpo"},
    "anthropic": {"sft": "bedrock-claude", "preference": None},
    "gemini": {"sft": "vertex-sft", "preference": "vertex-preference"},
    "huggingface": {"sft": "hf-messages", "preference": "trl-preference"},
}
PROVIDERS: tuple[str, ...] = tuple(PROVIDER_FORMATS)


def get(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise KeyError(f"unknown format {name!r}; known: {', '.join(sorted(FORMATS))}") from None


def detect(obj: Mapping[str, Any]) -> Format | None:
    """The first registered format whose detect() accepts this parsed line (order in FORMATS matters)."""
    for fmt in FORMATS.values():
        if fmt.detect(obj):
            return fmt
    return None


def picker(target: str) -> Callable[[str], Format | None]:
    """Map an example kind to the format that writes it, for a provider name or a format name."""
    if target in PROVIDER_FORMATS:
        chosen = {kind: get(name) if name else None for kind, name in PROVIDER_FORMATS[target].items()}
        return lambda kind: chosen.get(kind)
    try:
        fmt = get(target)
    except KeyError as e:
        raise ValueError(f"{e.args[0]}; or a provider: {', '.join(PROVIDERS)}") from None
    return lambda kind: fmt if kind == fmt.kind else None


def encode_lines(examples: Iterable[Example], target: str) -> Iterator[tuple[str, bytes] | Issue]:
    """(example kind, JSONL line) per writable example; an error Issue for each example skipped (the target
    cannot hold it) and a warning for each field a format leaves out. Nothing is dropped without an Issue."""
    pick = picker(target)
    for ex in examples:
        fmt = pick(ex.kind)
        if fmt is None:
            yield Issue("unsupported_kind", "error",
                        f"{target} cannot hold {ex.kind} examples; skipped. Export them to a target that can "
                        "(see ftlib.formats.PROVIDER_FORMATS) or drop them first.", ex.id, ex.source)
            continue
        try:
            line = fmt.encode(ex)
        except FormatError as e:
            yield Issue(e.code, "error", f"{fmt.name}: {e}; skipped", ex.id, ex.source, e.field)
            continue
        for loss in fmt.losses(ex):
            yield Issue("export_loss", "warning", f"{fmt.name} cannot hold {loss}; written without it",
                        ex.id, ex.source)
        yield ex.kind, orjson.dumps(line) + b"\n"


__all__ = ["FORMATS", "PROVIDERS", "PROVIDER_FORMATS", "Format", "FormatError", "detect", "encode_lines", "get",
           "picker"]
