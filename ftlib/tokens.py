"""Token counts and cost estimates per provider and base model.

OpenAI counts are exact for content (tiktoken o200k_base) plus OpenAI's per-message overhead rule;
Claude and Gemini counts are labelled estimates (their tokenizers are not public/offline).
"""

from __future__ import annotations

from typing import Any

from ftlib.records import Example


def count_tokens(ex: Example, provider: str, base_model: str | None = None) -> int:
    """Billed tokens for one example as the provider would count them (estimate where labelled)."""
    raise NotImplementedError


def estimate(
    token_counts: list[int] | Any, provider: str, base_model: str | None = None,
    n_epochs: int | None = None, prices: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Tokens, epochs (OpenAI's default-epoch rule when n_epochs is None), billed tokens and cost.

    Returns a JSON-ready dict: provider, base_model, examples, tokens (total, min, max, mean), n_epochs,
    billed_tokens, price_per_million, price_source (with date), estimated_cost_usd, exact (bool).
    `prices` overrides the built-in price table (params.yaml).
    """
    raise NotImplementedError
