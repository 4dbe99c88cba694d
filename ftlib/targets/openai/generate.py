"""Answering prompts with an OpenAI (or Azure OpenAI) fine-tuned model: chat completions through the openai SDK.

The client is the backend's (same credentials, `max_retries` and timeout from params), so 429/5xx are retried by
the SDK with its backoff. Azure serves a fine-tuned model only through a deployment: `evaluate.openai.deployment`
(and `base_deployment` for compare_base) name them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ftlib.errors import ConfigError, ProviderError
from ftlib.evaluate.generator import ModelUnavailable, Price, Reply, Settings
from ftlib.records import Example
from ftlib.targets.openai.backend import OpenAIBackend, _message
from ftlib.targets.openai.formats import OPENAI_CHAT

# USD per 1M tokens (input, output) for answering, by base model family: fine-tuned models cost more than base ones.
# OpenAI's list prices as of late 2025; not verified offline: override with evaluate.{input,output}_price_per_million.
_SOURCE = "estimate: OpenAI list price per 1M tokens (late 2025), not verified offline"
FINE_TUNED_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4.1-mini": (0.80, 3.20), "gpt-4.1-nano": (0.20, 0.80), "gpt-4.1": (3.00, 12.00),
    "gpt-4o-mini": (0.30, 1.20), "gpt-4o": (3.75, 15.00),
}
BASE_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4.1-mini": (0.40, 1.60), "gpt-4.1-nano": (0.10, 0.40), "gpt-4.1": (2.00, 8.00),
    "gpt-4o-mini": (0.15, 0.60), "gpt-4o": (2.50, 10.00),
}


def _family(name: str | None, table: dict[str, tuple[float, float]]) -> tuple[float, float] | None:
    """Longest family prefix of a model name; fine-tuned ids look like ft:<base>:<org>:<suffix>:<id>."""
    key = (name or "").removeprefix("ft:")
    best = max((f for f in table if key.startswith(f)), key=len, default=None)
    return table[best] if best else None


class OpenAIGenerator:
    name = "openai"
    settings_keys = frozenset({"deployment", "base_deployment"})
    max_concurrency = None

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options = dict(options or {})
        self._backend = OpenAIBackend(self.options)  # one place for credentials, Azure and retry settings

    def check_config(self) -> None:
        self._backend.check_config()

    def resolve(self, model_id: str, tuned: bool) -> str:
        _ = self._backend.client  # made here, once, before the pool's threads share it
        if not self._backend.azure:
            return model_id
        key = "deployment" if tuned else "base_deployment"
        deployment = self.options.get(key)
        if not deployment:
            raise ConfigError(f"Azure OpenAI answers only through a deployment: deploy {model_id} (Azure AI Foundry, "
                              f"Deployments) and set evaluate.openai.{key} to the deployment name")
        return str(deployment)

    def base_model_id(self, base_model: str) -> str:
        return base_model

    def generate(self, model: str, prompt: Example, settings: Settings) -> Reply:
        line = OPENAI_CHAT.encode(prompt)
        messages = [{k: v for k, v in m.items() if k != "weight"} for m in line["messages"]]  # training-only key
        kwargs: dict[str, Any] = {"model": model, "messages": messages, "max_completion_tokens": settings.max_tokens,
                                  "temperature": settings.temperature, "n": 1}
        if settings.seed is not None:
            kwargs["seed"] = settings.seed
        if line.get("tools"):
            kwargs["tools"] = line["tools"]
        with _call_errors(model):
            resp = self._backend.client.chat.completions.create(**kwargs)
        choice = resp.choices[0].message
        calls = tuple((c.function.name, c.function.arguments or "{}") for c in choice.tool_calls or ()
                      if getattr(c, "function", None) is not None)
        usage = resp.usage
        return Reply(text=choice.content or "", tool_calls=calls,
                     input_tokens=usage.prompt_tokens if usage else None,
                     output_tokens=usage.completion_tokens if usage else None)

    def price(self, model_id: str, base_model: str | None, tuned: bool) -> Price:
        found = _family(base_model or model_id, FINE_TUNED_PRICES if tuned else BASE_PRICES)
        if found is None:
            return Price(None, None, f"no built-in price for {base_model or model_id}; set "
                         "evaluate.input_price_per_million / output_price_per_million")
        return Price(*found, _SOURCE + (", fine-tuned model" if tuned else ", base model"))


@contextmanager
def _call_errors(model: str) -> Iterator[None]:
    """What stops the run (no such model, no access) apart from what fails one prompt (after the SDK's retries)."""
    import openai

    try:
        yield
    except openai.NotFoundError as e:
        raise ModelUnavailable(f"OpenAI has no model {model!r} for these credentials (404: {_message(e)}); check "
                               "that the job succeeded in this organisation, or the Azure deployment name") from None
    except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
        raise ModelUnavailable(f"OpenAI refused access to {model!r} (HTTP {e.status_code}: {_message(e)}); check "
                               "OPENAI_API_KEY (or AZURE_OPENAI_API_KEY) and the project's model access") from None
    except openai.RateLimitError as e:
        raise ProviderError(f"rate limited after the SDK's retries (429: {_message(e)}); lower "
                            "evaluate.concurrency or raise finetune.openai.max_retries") from None
    except openai.APIStatusError as e:
        raise ProviderError(f"HTTP {e.status_code}: {_message(e)}") from None
    except openai.APIConnectionError as e:
        raise ModelUnavailable(f"cannot reach the OpenAI API ({type(e).__name__}: {e}); check OPENAI_BASE_URL and "
                               "the network") from None
