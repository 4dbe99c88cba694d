"""Provider registry: one line per backend, imported lazily so the SDKs load only when a job needs them.

Adding a provider is one module plus one line in PROVIDERS.
"""

from __future__ import annotations

import importlib
from typing import Any

from ftlib.providers.base import ConfigError, JobSpec, JobState, JobStatus, Param, Provider, ProviderError

PROVIDERS: dict[str, str] = {
    "openai": "ftlib.providers.openai:OpenAIProvider",
    "anthropic": "ftlib.providers.anthropic:BedrockProvider",
    "gemini": "ftlib.providers.gemini:VertexProvider",
}


def provider_class(name: str) -> type:
    """The adapter class for `name`; importing it is the first moment its SDK is loaded."""
    try:
        target = PROVIDERS[name]
    except KeyError:
        raise ConfigError(f"unknown provider {name!r}; known: {', '.join(sorted(PROVIDERS))}") from None
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def get_provider(name: str, options: dict[str, Any] | None = None) -> Provider:
    """An adapter configured with its params.yaml settings; credentials come from the SDK's usual environment."""
    return provider_class(name)(dict(options or {}))


__all__ = [
    "PROVIDERS",
    "ConfigError",
    "JobSpec",
    "JobState",
    "JobStatus",
    "Param",
    "Provider",
    "ProviderError",
    "get_provider",
    "provider_class",
]
