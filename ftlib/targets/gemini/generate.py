"""Answering prompts with a tuned Gemini model: Vertex AI `generate_content` on the tuning job's endpoint
(google-genai with vertexai=True), the base model by its publisher name for compare_base.

The client is the backend's (project, location, credentials, HttpRetryOptions from params), so 429/5xx are
retried by the SDK with its backoff; the api_key path is refused as for tuning (tuned models live on Vertex).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
from google.genai import errors, types

from ftlib.errors import ProviderError
from ftlib.evaluate.generator import ModelUnavailable, Price, Reply, Settings
from ftlib.records import Example
from ftlib.targets.gemini.backend import VertexBackend, _check_adc
from ftlib.targets.gemini.formats import VERTEX_SFT

# USD per 1M tokens (input, output) on Vertex AI, text, prompts up to 200k tokens; a tuned model's endpoint is
# billed like its base model. Google's list prices as of late 2025, not verified offline.
_SOURCE = "estimate: Vertex AI list price per 1M tokens (late 2025), not verified offline"
PRICES: dict[str, tuple[float, float]] = {
    "gemini-2.5-flash-lite": (0.10, 0.40), "gemini-2.5-flash": (0.30, 2.50), "gemini-2.5-pro": (1.25, 10.00),
}


class VertexGenerator:
    name = "gemini"
    settings_keys = frozenset()
    max_concurrency = None

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options = dict(options or {})
        self._backend = VertexBackend(self.options)  # project, location, credentials and retry options in one place

    def check_config(self) -> None:
        self._backend._check_vertex()
        if self._backend._credentials is None:
            _check_adc()

    def resolve(self, model_id: str, tuned: bool) -> str:
        self._backend._genai()  # the client is made here, once, before the pool's threads share it
        return model_id  # projects/P/locations/L/endpoints/E, or a base model name the SDK expands

    def base_model_id(self, base_model: str) -> str:
        return base_model

    def generate(self, model: str, prompt: Example, settings: Settings) -> Reply:
        line = VERTEX_SFT.encode(prompt)
        config = types.GenerateContentConfig(
            system_instruction=_content(line["systemInstruction"]) if line.get("systemInstruction") else None,
            tools=[types.Tool.model_validate(t) for t in line.get("tools") or []] or None,
            temperature=settings.temperature, max_output_tokens=settings.max_tokens, seed=settings.seed,
            candidate_count=1,
        )
        contents = [_content(c) for c in line["contents"]]
        with _call_errors(model), self._backend._errors("generate content", model):
            resp = self._backend._genai().models.generate_content(model=model, contents=contents, config=config)
        texts: list[str] = []
        calls: list[tuple[str, str]] = []
        candidate = (resp.candidates or [None])[0]
        for part in (candidate.content.parts if candidate and candidate.content else None) or []:
            if part.function_call is not None:
                calls.append((part.function_call.name or "", orjson.dumps(part.function_call.args or {}).decode()))
            elif part.text and not part.thought:
                texts.append(part.text)
        usage = resp.usage_metadata
        return Reply(text="".join(texts), tool_calls=tuple(calls),
                     input_tokens=usage.prompt_token_count if usage else None,
                     output_tokens=usage.candidates_token_count if usage else None)

    def price(self, model_id: str, base_model: str | None, tuned: bool) -> Price:
        name = (base_model or model_id).rsplit("/", 1)[-1]
        best = max((f for f in PRICES if name.startswith(f)), key=len, default=None)
        if best is None:
            return Price(None, None, f"no built-in price for {name}; set evaluate.input_price_per_million / "
                         "output_price_per_million")
        return Price(*PRICES[best], _SOURCE)


def _content(obj: dict[str, Any]) -> types.Content:
    """The export's camelCase JSON (contents, systemInstruction) as the SDK's Content."""
    return types.Content.model_validate(obj)


@contextmanager
def _call_errors(model: str) -> Iterator[None]:
    """No such endpoint or no access stops the run; other refusals fail this prompt only (after the SDK's retries)."""
    try:
        yield
    except ProviderError as e:
        cause = e.__cause__
        if (isinstance(cause, errors.ClientError) and cause.code in (401, 403, 404)) or isinstance(
                cause, httpx.TransportError | OSError):
            raise ModelUnavailable(f"{e} (model {model})") from cause
        raise
