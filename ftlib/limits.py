"""The shapes of model and dataset limits. Each target declares its own tables (ftlib/targets/<t>/models.py).

Every number carries where it came from. Where a number could not be checked against the provider's own
page it says "estimate" in its source; override prices with the `prices` argument of tokens.estimate()
(params.yaml) when you know your contract price.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["active", "deprecated", "retired"]
ImageRule = Literal["tiles", "patches", "tiles_768", "none"]  # see tokens.image_tokens


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What validation and estimates need to know about one fine-tunable base model family."""

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
    default_epochs: int | None = None  # None: the target's default-epoch rule, else ASSUMED_EPOCHS
    counts_thinking: bool = True  # False where the target's lines cannot carry reasoning text


@dataclass(frozen=True, slots=True)
class SplitLimits:
    min_error: int | None  # fewer examples: error
    min_recommended: int | None  # fewer examples: warning
    max_error: int | None  # more examples: error
    source: str
    recommended: str | None = None  # how the provider words its recommendation ("50-100"), if it does



@dataclass(frozen=True, slots=True)
class ImageLimits:
    """What a target accepts for one image whose bytes are inline (URLs are never downloaded, so never measured)."""

    max_bytes: int | None
    max_side: int | None  # longest side in pixels
    max_pixels: int | None  # width x height
    source: str


# Pillow refuses to open larger images (DecompressionBombError at 2 x Image.MAX_IMAGE_PIXELS); the Python image
# stacks that load training images (Hugging Face datasets and processors, most upload pipelines) use Pillow.
PILLOW_MAX_PIXELS = 2 * (1024 * 1024 * 1024 // 4 // 3)


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
