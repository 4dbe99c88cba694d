"""OpenAI's fine-tunable models (limits, prices, status dates), dataset-size rules and default-epoch rule: data."""

from __future__ import annotations

from functools import partial

from ftlib.limits import PILLOW_MAX_PIXELS, ImageLimits, SplitLimits
from ftlib.limits import ModelSpec as _Spec

# OpenAI lines cannot carry reasoning text, so it is never counted.
ModelSpec = partial(_Spec, counts_thinking=False)

DEFAULT_BASE_MODEL = "gpt-4o-mini-2024-07-18"  # the cheapest model that can still be fine-tuned

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
    ModelSpec("gpt-4.1-mini", 65_536, "warning", _OPENAI_LIMIT, price_per_million=5.0,
              price_source=_OPENAI_PRICE, status="deprecated", status_note=_OPENAI_CLOSING, image_rule="patches",
              image_tile=1.62),
    ModelSpec("gpt-4.1-nano", 65_536, "warning", _OPENAI_LIMIT, price_per_million=1.5,
              price_source="estimate (retired model, last list price)", status="retired",
              status_note=_OPENAI_SHUTDOWN, image_rule="patches", image_tile=2.46),
    ModelSpec("gpt-4.1", 65_536, "warning", _OPENAI_LIMIT, price_per_million=25.0,
              price_source=_OPENAI_PRICE, status="deprecated", status_note=_OPENAI_CLOSING),
    ModelSpec("gpt-4o-mini", 65_536, "warning", _OPENAI_LIMIT, price_per_million=3.0,
              price_source=_OPENAI_PRICE, status="deprecated", status_note=_OPENAI_CLOSING,
              image_base=2833, image_tile=5667),
    ModelSpec("gpt-4o", 65_536, "warning", _OPENAI_LIMIT, price_per_million=25.0,
              price_source=_OPENAI_PRICE, status="deprecated", status_note=_OPENAI_CLOSING),
    ModelSpec("o4-mini", 65_536, "warning", _OPENAI_LIMIT, status="retired", status_note=_OPENAI_SHUTDOWN,
              image_rule="patches", image_tile=1.72),
    ModelSpec("gpt-3.5-turbo", 16_385, "warning", "OpenAI: gpt-3.5-turbo-0125 16,385 tokens per example",
              encoding="cl100k_base", status="retired", status_note=_OPENAI_SHUTDOWN, image_rule="none"),
    ModelSpec("babbage-002", 16_384, "warning", "OpenAI legacy completion model", encoding="cl100k_base",
              status="retired", status_note=_OPENAI_SHUTDOWN, image_rule="none"),
    ModelSpec("davinci-002", 16_384, "warning", "OpenAI legacy completion model", encoding="cl100k_base",
              status="retired", status_note=_OPENAI_SHUTDOWN, image_rule="none"),
)

# PROVIDERS.md: JPEG/PNG/WEBP, at most 10 MB each. OpenAI documents no pixel limit for fine-tuning images; the
# Pillow decompression-bomb limit is the bound (an estimate: larger images are refused by typical image stacks).
IMAGE_LIMITS = ImageLimits(10 * 1024 * 1024, None, PILLOW_MAX_PIXELS,
                           "PROVIDERS.md: at most 10 MB per image; pixels: Pillow's decompression-bomb limit "
                           "(estimate, no documented OpenAI pixel limit)")

DATASET_LIMITS: dict[str, SplitLimits] = {
    # PROVIDERS.md / OpenAI fine-tuning guide: at least 10 examples, 50-100 recommended.
    "train": SplitLimits(10, 50, None, "OpenAI fine-tuning guide: minimum 10 examples, 50-100 recommended",
                         recommended="50-100"),
    "validation": SplitLimits(None, None, None, "OpenAI: no documented validation-file minimum"),
}

# OpenAI's default-epoch rule, as in the openai-cookbook "Chat_finetuning_data_prep" guide.
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25


def default_epochs(n_examples: int) -> tuple[int, str]:
    """OpenAI's default-epoch rule (cookbook Chat_finetuning_data_prep): 3 epochs, raised toward 100 example-passes
    (max 25), lowered toward 25,000 (min 1). Integer division as in the guide, so 30 examples give 3 epochs."""
    n_epochs = TARGET_EPOCHS
    if n_examples > 0 and n_examples * n_epochs < MIN_TARGET_EXAMPLES:
        n_epochs = min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    elif n_examples * n_epochs > MAX_TARGET_EXAMPLES:
        n_epochs = max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return n_epochs, "OpenAI default-epoch rule (cookbook Chat_finetuning_data_prep)"
