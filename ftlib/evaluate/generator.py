"""The generation hook a target declares (`Target.generator`): how to ask one model for one reply.

The core (ftlib.evaluate) owns everything shared: the eval set, the cache, the bounded pool, scoring, reports.
A target's hook only turns a prompt into its provider's request and the answer back into a `Reply`; retries on
429/5xx are the SDK's own, never a loop here. Hooks are imported only when a model is evaluated.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

from ftlib.errors import ConfigError, ProviderError
from ftlib.records import Example


@dataclass(frozen=True)
class Settings:
    """Generation settings: part of the cache key, so changing one asks the model again."""

    max_tokens: int = 512
    temperature: float = 0.0
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Reply:
    """One answer: text and/or tool calls as (name, arguments JSON text), and the tokens the provider billed."""

    text: str = ""
    tool_calls: tuple[tuple[str, str], ...] = ()
    input_tokens: int | None = None
    output_tokens: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "tool_calls": [list(c) for c in self.tool_calls],
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Reply:
        calls = tuple((str(n), str(a)) for n, a in d.get("tool_calls") or ())
        return cls(text=str(d.get("text") or ""), tool_calls=calls, input_tokens=d.get("input_tokens"),
                   output_tokens=d.get("output_tokens"))


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens for answering (None: not billed per token, e.g. provisioned capacity), and where from."""

    input_per_million: float | None
    output_per_million: float | None
    source: str


class ModelUnavailable(ProviderError):
    """The model cannot answer at all (not found, not deployed, no access): the run stops instead of failing N
    calls one by one. The message names the fix."""


class NotServed(ModelUnavailable):
    """The model exists but nothing serves it yet (a Claude custom model without Provisioned Throughput): the
    evaluate stage writes a plan saying what to set up, instead of failing the pipeline until someone pays for it."""


class Generator(Protocol):
    """One provider's way to call a model. Constructed with the target's settings (finetune.<target> backend
    options merged with evaluate.<target>); credentials come from the SDK's usual environment.

    Optional hooks (looked up with getattr):
    `base_model_id(base_model) -> str` the id to call for the untuned base model (compare_base);
    `dataset_metrics(model, examples) -> dict` figures computed from whole examples (the local loss/perplexity);
    `close() -> None` frees what generate loaded.
    """

    name: str
    settings_keys: frozenset[str]  # keys evaluate.<target> may hold besides the shared ones
    max_concurrency: int | None  # a cap for this generator (a local model runs one prompt at a time)

    def check_config(self) -> None:
        """Raise ConfigError naming the variable or setting to set. No network."""
        ...

    def resolve(self, model_id: str, tuned: bool) -> str:
        """The name to call for a model id (an Azure deployment, a Provisioned Throughput ARN, an adapter folder);
        may make one lookup call. Raises ModelUnavailable or ConfigError."""
        ...

    def generate(self, model: str, prompt: Example, settings: Settings) -> Reply:
        """One call. ProviderError for a failure of this prompt, ModelUnavailable/ConfigError to stop the run."""
        ...

    def price(self, model_id: str, base_model: str | None, tuned: bool) -> Price: ...


__all__ = ["ConfigError", "Generator", "ModelUnavailable", "NotServed", "Price", "ProviderError", "Reply", "Settings"]
