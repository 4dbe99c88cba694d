"""Per-provider and per-model limits and list prices: data, not code, so a new fact is a one-line change.

Every number carries where it came from. Where a number could not be checked against the provider's own
page it says "estimate" in its source; override prices with the `prices` argument of tokens.estimate()
(params.yaml) when you know your contract price.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["active", "deprecated", "retired"]
ImageRule = Literal["tiles", "patches", "gemini", "none"]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What validation and estimates need to know about one fine-tunable base model family."""

    provider: str
    name: str  # family key, matched as the longest prefix of a normalised base model name
    max_example_tokens: int | None
    too_long_severity: Literal["error", "warning"]  # what happens to a longer example (see limit_source)
    limit_source: str
    encoding: str = "o200k_base"  # tiktoken encoding used to count (exactly for OpenAI, as a proxy otherwise)
    # Tokenizers we cannot run offline (Claude, Gemini) are estimated from characters with the provider's own
    # rule of thumb, instead of running an unrelated tokenizer as a proxy: as good an estimate, ~50x cheaper.
    chars_per_token: float | None = None
    exact: bool = True
    price_per_million: float | None = None  # USD per 1M training tokens
    price_source: str = ""
    status: Status = "active"
    status_note: str = ""
    image_rule: ImageRule = "tiles"
    image_base: float = 85  # tile rule: base tokens; patch rule: unused
    image_tile: float = 170  # tile rule: tokens per 512px tile; patch rule: multiplier
    default_epochs: int | None = None  # None: OpenAI's default-epoch rule


_OPENAI_LIMIT = "PROVIDERS.md: gpt-4o/gpt-4.1 families 65,536 tokens per example; longer examples are truncated"
_OPENAI_PRICE = "PROVIDERS.md, OpenAI list price per 1M training tokens (late 2025), checked 2026-11"
_OPENAI_SHUTDOWN = (
    "shut down for fine-tuning on 2026-10-23 (PROVIDERS.md); pick gpt-4.1-mini-2025-04-14 or gpt-4o-mini-2024-07-18"
)
_OPENAI_CLOSING = (
    "OpenAI fine-tuning is being wound down: orgs that never fine-tuned get 403 training_not_available since "
    "2026-05-07 and nobody can create jobs from 2027-01-06 (PROVIDERS.md); submit before then, or use Azure OpenAI "
    "fine-tuning (same format) or export for Vertex/Hugging Face"
)

# OpenAI's choice for examples over the limit: they are truncated, not rejected. We report a warning (the job
# runs) whose message says the tail (usually the assistant reply) is lost and how to shorten or split it.
MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("openai", "gpt-4.1-mini", 65_536, "warning", _OPENAI_LIMIT, price_per_million=5.0,
              price_source=_OPENAI_PRICE, status="deprecated", status_note=_OPENAI_CLOSING, image_rule="patches",
              image_tile=1.62),
    ModelSpec("openai", "gpt-4.1-nano", 65_536, "warning", _OPENAI_LIMIT, price_per_million=1.5,
              price_source="estimate (retired model, last list price)", status="retired",
              status_note=_OPENAI_SHUTDOWN, image_rule="patches", image_tile=2.46),
    ModelSpec("openai", "gpt-4.1", 65_536, "warning", _OPENAI_LIMIT, price_per_million=25.0,
              price_source=_OPENAI_PRICE, status="deprecated", status_note=_OPENAI_CLOSING),
    ModelSpec("openai", "gpt-4o-mini", 65_536, "warning", _OPENAI_LIMIT, price_per_million=3.0,
              price_source=_OPENAI_PRICE, status="deprecated", status_note=_OPENAI_CLOSING,
              image_base=2833, image_tile=5667),
    ModelSpec("openai", "gpt-4o", 65_536, "warning", _OPENAI_LIMIT, price_per_million=25.0,
              price_source=_OPENAI_PRICE, status="deprecated", status_note=_OPENAI_CLOSING),
    ModelSpec("openai", "o4-mini", 65_536, "warning", _OPENAI_LIMIT, status="retired", status_note=_OPENAI_SHUTDOWN,
              image_rule="patches", image_tile=1.72),
    ModelSpec("openai", "gpt-3.5-turbo", 16_385, "warning", "OpenAI: gpt-3.5-turbo-0125 16,385 tokens per example",
              encoding="cl100k_base", status="retired", status_note=_OPENAI_SHUTDOWN, image_rule="none"),
    ModelSpec("openai", "babbage-002", 16_384, "warning", "OpenAI legacy completion model", encoding="cl100k_base",
              status="retired", status_note=_OPENAI_SHUTDOWN, image_rule="none"),
    ModelSpec("openai", "davinci-002", 16_384, "warning", "OpenAI legacy completion model", encoding="cl100k_base",
              status="retired", status_note=_OPENAI_SHUTDOWN, image_rule="none"),
    # Claude 3 Haiku on Bedrock. 32,000 tokens per record, as enforced by AWS's own data validator
    # (github.com/aws-samples/amazon-bedrock-workshop, 03_Model_customization/bedrock-models-fine-tuning/
    # claude-haiku/DataValidation/README.md @ fc2bf56). Bedrock rejects longer records, hence "error".
    ModelSpec("anthropic", "anthropic.claude-3-haiku-20240307", 32_000, "error",
              "AWS Claude 3 Haiku fine-tuning data validator (aws-samples/amazon-bedrock-workshop): max 32,000 "
              "tokens per record", chars_per_token=3.5, exact=False, price_per_million=4.0,
              price_source="estimate: Bedrock list price for Claude 3 Haiku customization training not verified "
                           "offline (assumed USD 0.004 per 1K tokens, 2026-11); override with prices=",
              status="deprecated",
              status_note="Claude 3 Haiku on Bedrock is Legacy with end of life 2026-09-10 (PROVIDERS.md): Bedrock "
                          "may refuse new customization jobs; it is the only fine-tunable Claude, so if Bedrock "
                          "refuses, export the same data for Vertex, OpenAI or Hugging Face",
              image_rule="none", default_epochs=2),
    # Gemini on Vertex: 131,072 input+output training tokens per example (Vertex "About supervised fine-tuning
    # for Gemini models", limits table for 2.5 Flash / Flash-Lite; PROVIDERS.md). Longer examples fail.
    ModelSpec("gemini", "gemini-2.5-flash-lite", 131_072, "error",
              "Vertex AI supervised tuning limits (Gemini 2.5 Flash-Lite): 131,072 tokens per example",
              chars_per_token=4.0, exact=False, price_per_million=1.5,
              price_source="estimate: Vertex AI tuning list price for Gemini 2.5 Flash-Lite not verified offline "
                           "(assumed USD 1.50 per 1M training tokens, 2026-11); override with prices=",
              image_rule="gemini", default_epochs=None),
    ModelSpec("gemini", "gemini-2.5-flash", 131_072, "error",
              "Vertex AI supervised tuning limits (Gemini 2.5 Flash): 131,072 tokens per example",
              chars_per_token=4.0, exact=False, price_per_million=5.0,
              price_source="estimate: Vertex AI tuning list price for Gemini 2.5 Flash not verified offline "
                           "(assumed USD 5.00 per 1M training tokens, 2026-11); override with prices=",
              image_rule="gemini", default_epochs=None),
    ModelSpec("gemini", "gemini-2.5-pro", 131_072, "error",
              "Vertex AI supervised tuning limits (Gemini 2.5 Pro): 131,072 tokens per example",
              chars_per_token=4.0, exact=False, price_per_million=25.0,
              price_source="estimate: Vertex AI tuning list price for Gemini 2.5 Pro not verified offline "
                           "(assumed USD 25 per 1M training tokens, 2026-11); override with prices=",
              image_rule="gemini", default_epochs=None),
)

# Used when base_model is None: the cheapest model that can still be fine-tuned.
DEFAULT_MODEL: dict[str, str | None] = {
    "openai": "gpt-4o-mini-2024-07-18",
    "anthropic": "anthropic.claude-3-haiku-20240307-v1:0:200k",
    "gemini": "gemini-2.5-flash",
    "huggingface": None,
}

# Open-weight models have no per-example limit we can know; o200k is only a proxy for their tokenizer.
HF_SPEC = ModelSpec("huggingface", "open-weight", None, "warning", "no provider limit (depends on your trainer)",
                    exact=False, price_source="no price: you train on your own hardware", image_rule="none",
                    default_epochs=3)  # transformers TrainingArguments.num_train_epochs default


@dataclass(frozen=True, slots=True)
class SplitLimits:
    min_error: int | None  # fewer examples: error
    min_recommended: int | None  # fewer examples: warning
    max_error: int | None  # more examples: error
    source: str


# Dataset-size rules per provider and split.
DATASET_LIMITS: dict[str, dict[str, SplitLimits]] = {
    "openai": {
        # PROVIDERS.md / OpenAI fine-tuning guide: at least 10 examples, 50-100 recommended.
        "train": SplitLimits(10, 50, None, "OpenAI fine-tuning guide: minimum 10 examples, 50-100 recommended"),
        "validation": SplitLimits(None, None, None, "OpenAI: no documented validation-file minimum"),
    },
    "anthropic": {
        # aws-samples/amazon-bedrock-workshop claude-haiku DataValidation/README.md @ fc2bf56: training 32-10,000
        # lines, validation 32-1,000 lines, training + validation at most 10,000.
        "train": SplitLimits(32, None, 10_000, "Bedrock Claude 3 Haiku: 32 to 10,000 training records"),
        "validation": SplitLimits(32, None, 1_000, "Bedrock Claude 3 Haiku: 32 to 1,000 validation records"),
    },
    "gemini": {
        # Vertex AI "About supervised fine-tuning for Gemini models": at most 5,000 validation examples,
        # training file at most 1 GB; Google recommends starting with at least 100 examples.
        "train": SplitLimits(1, 100, None, "Vertex AI supervised tuning: start with at least 100 examples"),
        "validation": SplitLimits(None, None, 5_000, "Vertex AI supervised tuning: at most 5,000 validation examples"),
    },
    "huggingface": {
        "train": SplitLimits(1, None, None, "open-weight training: no provider minimum"),
        "validation": SplitLimits(None, None, None, "open-weight training: no provider minimum"),
    },
}

# OpenAI's default-epoch rule, as in the openai-cookbook "Chat_finetuning_data_prep" guide.
OPENAI_TARGET_EPOCHS = 3
OPENAI_MIN_TARGET_EXAMPLES = 100
OPENAI_MAX_TARGET_EXAMPLES = 25_000
OPENAI_MIN_DEFAULT_EPOCHS = 1
OPENAI_MAX_DEFAULT_EPOCHS = 25

# When the provider picks epochs itself and nobody passed n_epochs, estimates assume this many.
ASSUMED_EPOCHS = 3


def normalise_model(base_model: str) -> str:
    """Strip wrappers users paste: 'ft:gpt-4o-mini-2024-07-18:org::id', 'projects/.../models/gemini-2.5-flash'."""
    name = base_model.strip()
    if name.startswith("ft:"):
        name = name[3:].split(":", 1)[0]
    if "/" in name:
        name = name.rsplit("/", 1)[1]
    if name.startswith("publishers"):
        name = name.rsplit("/", 1)[-1]
    return name.lower()


def model_spec(provider: str, base_model: str | None) -> ModelSpec | None:
    """The spec of base_model (provider default when None); None when the model is not in the table."""
    if provider == "huggingface":
        return HF_SPEC
    name = base_model if base_model is not None else DEFAULT_MODEL.get(provider)
    if name is None:
        return None
    key = normalise_model(name)
    best: ModelSpec | None = None
    for spec in MODELS:
        if spec.provider != provider or not key.startswith(spec.name):
            continue
        if best is None or len(spec.name) > len(best.name):
            best = spec
    return best


def default_spec(provider: str) -> ModelSpec | None:
    return model_spec(provider, None)
