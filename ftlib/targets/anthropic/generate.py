"""Answering prompts with a Claude custom model on Bedrock, through `anthropic.AnthropicBedrock` (the one place the
`anthropic` SDK truly fits: it has no fine-tuning API, but it is the client for calling a Claude model on Bedrock).

A Claude custom model answers only through Provisioned Throughput. ftlib never buys it (it is billed per hour
while it exists): `evaluate.anthropic.provisioned` maps a custom model ARN to its provisioned model ARN, else ftlib
looks for an InService one with `list_provisioned_model_throughputs`. Retries of 429/5xx are the SDK's own.
"""

from __future__ import annotations

import os
from typing import Any

from ftlib.errors import ConfigError, ProviderError
from ftlib.evaluate.generator import ModelUnavailable, NotServed, Price, Reply, Settings
from ftlib.records import Example
from ftlib.targets.anthropic.backend import BedrockBackend, _has_credentials
from ftlib.targets.anthropic.formats import BEDROCK_CLAUDE

_PT = ("Claude custom models answer only through Provisioned Throughput: purchase it for {model} (Bedrock console, "
       "Custom models, Purchase Provisioned Throughput), then re-run, or map the model to its provisioned model ARN "
       "in evaluate.anthropic.provisioned")
# Claude 3 Haiku on-demand (the base of the only fine-tunable Claude), USD per 1M tokens; Bedrock list price.
BASE_PRICES: dict[str, tuple[float, float]] = {"anthropic.claude-3-haiku-20240307": (0.25, 1.25)}


class BedrockGenerator:
    name = "anthropic"
    settings_keys = frozenset({"provisioned"})
    max_concurrency = None

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options = dict(options or {})
        self._backend = BedrockBackend(self.options)  # region, retries and the AWS session in one place
        self._client: Any = None

    def check_config(self) -> None:
        if not _has_credentials(self._backend.session):
            raise ConfigError("AWS credentials: none found in the usual chain; set AWS_PROFILE (after `aws sso "
                              "login`) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")

    @property
    def client(self) -> Any:
        if self._client is None:
            import anthropic

            endpoint = os.environ.get("AWS_ENDPOINT_URL_BEDROCK_RUNTIME") or os.environ.get("AWS_ENDPOINT_URL")
            self._client = anthropic.AnthropicBedrock(aws_region=self._backend.region, base_url=endpoint,
                                                      max_retries=self._backend.max_retries)
        return self._client

    def base_model_id(self, base_model: str) -> str:
        """The on-demand id of the base model: the customization variant's context suffix (`:200k`) dropped."""
        head, sep, tail = base_model.rpartition(":")
        return head if sep and tail.endswith("k") and tail[:-1].isdigit() else base_model

    def resolve(self, model_id: str, tuned: bool) -> str:
        _ = self.client  # made here, once, before the pool's threads share it
        if not tuned:
            return model_id
        mapped = (self.options.get("provisioned") or {}).get(model_id)
        if mapped:
            return str(mapped)
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            found = self._backend.bedrock.list_provisioned_model_throughputs(
                modelArnEquals=model_id, statusEquals="InService", maxResults=10)["provisionedModelSummaries"]
        except (ClientError, BotoCoreError, KeyError) as e:
            raise NotServed(f"cannot look up Provisioned Throughput for {model_id} ({type(e).__name__}: {e}). "
                                   + _PT.format(model=model_id)) from None
        if not found:
            raise NotServed(f"no Provisioned Throughput is InService for {model_id}. "
                                   + _PT.format(model=model_id))
        return str(sorted(found, key=lambda s: s["provisionedModelArn"])[0]["provisionedModelArn"])

    def generate(self, model: str, prompt: Example, settings: Settings) -> Reply:
        import anthropic

        line = BEDROCK_CLAUDE.encode(prompt)
        # This SDK's create() no longer takes sampling knobs; Claude 3 Haiku on Bedrock still reads temperature.
        kwargs: dict[str, Any] = {"model": model, "max_tokens": settings.max_tokens, "messages": line["messages"],
                                  "extra_body": {"temperature": settings.temperature}}
        if line.get("system"):
            kwargs["system"] = line["system"]
        try:
            reply = self.client.messages.create(**kwargs)
        except (anthropic.NotFoundError, anthropic.PermissionDeniedError, anthropic.AuthenticationError) as e:
            raise ModelUnavailable(f"Bedrock refused to run {model} (HTTP {e.status_code}: {e.message}). "
                                   + _PT.format(model=model)) from None
        except anthropic.BadRequestError as e:
            if "throughput" in str(e.message).lower():
                raise ModelUnavailable(f"Bedrock refused {model}: {e.message}. " + _PT.format(model=model)) from None
            raise ProviderError(f"HTTP {e.status_code}: {e.message}") from None
        except anthropic.APIStatusError as e:
            raise ProviderError(f"HTTP {e.status_code} after the SDK's retries: {e.message}") from None
        except anthropic.APIConnectionError as e:
            raise ModelUnavailable(f"cannot reach Bedrock runtime ({type(e).__name__}: {e}); check the network, "
                                   "finetune.anthropic.region and AWS_ENDPOINT_URL_BEDROCK_RUNTIME") from None
        text = "".join(getattr(b, "text", "") for b in reply.content or [] if getattr(b, "type", "") == "text")
        calls = tuple((b.name, _json(b.input)) for b in reply.content or [] if getattr(b, "type", "") == "tool_use")
        usage = reply.usage
        return Reply(text=text, tool_calls=calls, input_tokens=getattr(usage, "input_tokens", None),
                     output_tokens=getattr(usage, "output_tokens", None))

    def price(self, model_id: str, base_model: str | None, tuned: bool) -> Price:
        if tuned:
            return Price(None, None, "Provisioned Throughput: billed per model unit per hour while provisioned, "
                         "not per token")
        name = self.base_model_id(base_model or model_id)
        best = max((f for f in BASE_PRICES if name.startswith(f)), key=len, default=None)
        if best is None:
            return Price(None, None, f"no built-in price for {name}; set evaluate.input_price_per_million / "
                         "output_price_per_million")
        return Price(*BASE_PRICES[best], "estimate: Bedrock on-demand list price (late 2025), not verified offline")


def _json(value: Any) -> str:
    import orjson

    return orjson.dumps(value or {}).decode()
