"""Gemini on Vertex AI: tunable models (limits, prices) and Vertex's dataset-size rules."""

from __future__ import annotations

from ftlib.limits import PILLOW_MAX_PIXELS, ImageLimits, ModelSpec, SplitLimits

DEFAULT_BASE_MODEL = "gemini-2.5-flash"

# Gemini on Vertex: 131,072 input+output training tokens per example (Vertex "About supervised fine-tuning
# for Gemini models", limits table for 2.5 Flash / Flash-Lite; PROVIDERS.md). Longer examples fail.
MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("gemini-2.5-flash-lite", 131_072, "error",
              "Vertex AI supervised tuning limits (Gemini 2.5 Flash-Lite): 131,072 tokens per example",
              chars_per_token=4.0, exact=False, price_per_million=1.5,
              price_source="estimate: Vertex AI tuning list price for Gemini 2.5 Flash-Lite not verified offline "
                           "(assumed USD 1.50 per 1M training tokens, 2026-11); override with prices=",
              image_rule="tiles_768", default_epochs=None),
    ModelSpec("gemini-2.5-flash", 131_072, "error",
              "Vertex AI supervised tuning limits (Gemini 2.5 Flash): 131,072 tokens per example",
              chars_per_token=4.0, exact=False, price_per_million=5.0,
              price_source="estimate: Vertex AI tuning list price for Gemini 2.5 Flash not verified offline "
                           "(assumed USD 5.00 per 1M training tokens, 2026-11); override with prices=",
              image_rule="tiles_768", default_epochs=None),
    ModelSpec("gemini-2.5-pro", 131_072, "error",
              "Vertex AI supervised tuning limits (Gemini 2.5 Pro): 131,072 tokens per example",
              chars_per_token=4.0, exact=False, price_per_million=25.0,
              price_source="estimate: Vertex AI tuning list price for Gemini 2.5 Pro not verified offline "
                           "(assumed USD 25 per 1M training tokens, 2026-11); override with prices=",
              image_rule="tiles_768", default_epochs=None),
)

# Vertex reads tuning images from Cloud Storage (inline bytes get a warning in rules.py); for inline bytes the same
# Pillow bound as elsewhere. Vertex's own per-file limits were not verified offline: an estimate.
IMAGE_LIMITS = ImageLimits(None, None, PILLOW_MAX_PIXELS,
                           "Pillow's decompression-bomb limit (estimate: Vertex limits not verified offline)")

# Vertex AI "About supervised fine-tuning for Gemini models": at most 5,000 validation examples,
# training file at most 1 GB; Google recommends starting with at least 100 examples.
DATASET_LIMITS: dict[str, SplitLimits] = {
    "train": SplitLimits(1, 100, None, "Vertex AI supervised tuning: start with at least 100 examples"),
    "validation": SplitLimits(None, None, 5_000, "Vertex AI supervised tuning: at most 5,000 validation examples"),
}
