"""Format registry: every JSONL line shape ftlib reads or writes, keyed by name, plus provider mappings.

Adding a format is one module plus one line in FORMATS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftlib.formats.anthropic import BEDROCK_CLAUDE
from ftlib.formats.base import Format, FormatError
from ftlib.formats.gemini import VERTEX_PREFERENCE, VERTEX_SFT
from ftlib.formats.huggingface import HF_MESSAGES, TRL_PREFERENCE
from ftlib.formats.openai import OPENAI_CHAT, OPENAI_DPO

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


__all__ = ["FORMATS", "PROVIDERS", "PROVIDER_FORMATS", "Format", "FormatError", "detect", "get"]
