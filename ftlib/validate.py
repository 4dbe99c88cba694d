"""Provider rules for training data. Pure functions that return every problem, never stopping at the first."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ftlib.issues import Issue
from ftlib.records import Example


def check_example(
    ex: Example, provider: str, base_model: str | None = None, line: dict[str, Any] | None = None,
) -> list[Issue]:
    """All problems of one example for one provider (roles/order, empty content, images, tool links,
    token limit for base_model, likely secrets). `line` is the exported JSON line, checked against the
    official OpenAI line schema when provider == "openai"."""
    raise NotImplementedError


def check_dataset(examples: Iterable[Example], provider: str, base_model: str | None = None) -> list[Issue]:
    """check_example for each example plus dataset-level rules (minimum example counts, ...)."""
    raise NotImplementedError


def find_secrets(text: str) -> list[str]:
    """Names of likely secrets in text (API keys, private keys, tokens): they must never be uploaded."""
    raise NotImplementedError
