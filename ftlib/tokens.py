"""Token counts and cost estimates per provider and base model.

OpenAI counts are exact for text (tiktoken o200k_base, cl100k_base for older models) with the per-message
rule of OpenAI's cookbook (3 tokens per message, 1 per name, 3 to prime the reply); tool definitions and
tool calls are counted from their JSON text. Claude and Gemini tokenizers cannot run offline, so their counts
are labelled estimates from characters with each provider's own rule of thumb (limits.ModelSpec.chars_per_token:
Anthropic ~3.5 characters per token, Google ~4 for Gemini).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import tiktoken

from ftlib import limits, targets
from ftlib.errors import ConfigError
from ftlib.limits import ModelSpec
from ftlib.records import Attachment, Example, Message

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
# OpenAI image rules (vision guide): "low" detail costs the base only.
IMAGE_MAX_SIDE = 2048
IMAGE_SHORT_SIDE = 768
IMAGE_TILE = 512
PATCH = 32
PATCH_CAP = 1536
# Attachment without known pixel size (URI only): price it as a 1024x1024 image, the common case.
UNKNOWN_IMAGE_SIZE = (1024, 1024)
TILE_768_TOKENS = 258  # Gemini's rule: an image up to 384px is 258 tokens; larger ones 258 per 768px tile

_ENCODERS: dict[str, tiktoken.Encoding] = {}


class TokenizerUnavailable(ConfigError):
    """tiktoken could not load an encoding (it downloads each once, then caches it)."""


def encoder(name: str) -> tiktoken.Encoding:
    """tiktoken encodings are costly to build: one per process."""
    enc = _ENCODERS.get(name)
    if enc is None:
        try:
            enc = _ENCODERS[name] = tiktoken.get_encoding(name)
        except Exception as e:  # network or cache errors: say what to do instead of a requests traceback
            raise TokenizerUnavailable(
                f"cannot load the {name} tokenizer ({type(e).__name__}); tiktoken downloads it on first use: "
                "run once with internet access, or set TIKTOKEN_CACHE_DIR to a folder that holds it"
            ) from None
    return enc


def spec_for(provider: str, base_model: str | None) -> ModelSpec:
    """The model spec to count with; unknown models fall back to the target default's rules."""
    target = targets.get(provider)
    spec = target.model_spec(base_model) or target.model_spec(None)
    if spec is None:
        raise ValueError(f"target {provider!r} declares no models to count tokens with; give it a fallback_model")
    return spec


# -- image sizes without Pillow -----------------------------------------------------------------------
def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, JPEG, GIF or WEBP from its header; None when unknown."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            return struct.unpack(">II", data[16:24])
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", data[6:10])
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            chunk = data[12:16]
            if chunk == b"VP8X":
                w = int.from_bytes(data[24:27], "little") + 1
                h = int.from_bytes(data[27:30], "little") + 1
                return w, h
            if chunk == b"VP8L":
                b = int.from_bytes(data[21:25], "little")
                return (b & 0x3FFF) + 1, ((b >> 14) & 0x3FFF) + 1
            if chunk == b"VP8 ":
                w, h = struct.unpack("<HH", data[26:30])
                return w & 0x3FFF, h & 0x3FFF
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
    except (struct.error, IndexError):
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    n = len(data)
    while i + 9 < n:
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + length
    return None


def image_tokens(att: Attachment, spec: ModelSpec) -> int:
    """Tokens of one image for this model; URI-only images are priced as a 1024x1024 image (documented guess)."""
    size = image_size(att.data) if att.data is not None else None
    w, h = size or UNKNOWN_IMAGE_SIZE
    if spec.image_rule == "tiles_768":
        if w <= 384 and h <= 384:
            return TILE_768_TOKENS
        return TILE_768_TOKENS * math.ceil(w / 768) * math.ceil(h / 768)
    if spec.image_rule == "patches":
        return _patch_tokens(w, h, spec.image_tile)
    if att.detail == "low":
        return int(spec.image_base)
    return _tile_tokens(w, h, spec.image_base, spec.image_tile)


def _tile_tokens(w: int, h: int, base: float, per_tile: float) -> int:
    """OpenAI tile rule: fit in 2048x2048, shortest side to 768, then base + per_tile x 512px tiles."""
    if max(w, h) > IMAGE_MAX_SIDE:
        s = IMAGE_MAX_SIDE / max(w, h)
        w, h = w * s, h * s
    if min(w, h) > IMAGE_SHORT_SIDE:
        s = IMAGE_SHORT_SIDE / min(w, h)
        w, h = w * s, h * s
    tiles = math.ceil(w / IMAGE_TILE) * math.ceil(h / IMAGE_TILE)
    return int(base + per_tile * tiles)


def _patch_tokens(w: int, h: int, multiplier: float) -> int:
    """OpenAI patch rule (gpt-4.1-mini and smaller): 32px patches capped at 1536, times a model multiplier."""
    patches = math.ceil(w / PATCH) * math.ceil(h / PATCH)
    if patches > PATCH_CAP:
        r = math.sqrt(PATCH * PATCH * PATCH_CAP / (w * h))
        r *= min(math.floor(w * r / PATCH) / (w * r / PATCH), math.floor(h * r / PATCH) / (h * r / PATCH))
        patches = min(PATCH_CAP, math.ceil(w * r / PATCH) * math.ceil(h * r / PATCH))
    return math.ceil(patches * multiplier)


# -- counting ----------------------------------------------------------------------------------------
_CACHE_MAX_CHARS = 2048  # roles, names and system prompts repeat across examples; long unique texts do not
_CACHE_MAX_ENTRIES = 4096  # a few MB per process: enough for the texts that repeat, flat however many do not


class _Counter:
    """len(encode_ordinary(text)) for one encoding, as cheaply as Python allows: the Rust encoder is called
    directly (tiktoken's wrapper adds a frame per call, and this runs ~10 times per example), and short texts are
    remembered (real datasets repeat roles, names and system prompts)."""

    __slots__ = ("_cache", "_core", "enc")

    def __init__(self, enc: tiktoken.Encoding) -> None:
        self.enc = enc
        core = getattr(enc, "_core_bpe", None)  # what Encoding.encode_ordinary calls for valid text
        self._core = core.encode_ordinary if core is not None else enc.encode_ordinary
        self._cache: dict[str, int] = {}

    def uncached(self, text: str) -> int:
        try:
            return len(self._core(text))
        except UnicodeEncodeError:  # lone surrogates: tiktoken's own wrapper knows how to clean them
            return len(self.enc.encode_ordinary(text))

    def __call__(self, text: str) -> int:
        if len(text) > _CACHE_MAX_CHARS:
            return self.uncached(text)
        cache = self._cache
        n = cache.get(text)
        if n is None:
            if len(cache) >= _CACHE_MAX_ENTRIES:  # repeated texts come straight back; unique ones cost one encode
                cache.clear()
            n = cache[text] = self.uncached(text)
        return n


_COUNTERS: dict[str, _Counter] = {}


def _counter(name: str) -> _Counter:
    c = _COUNTERS.get(name)
    if c is None:
        c = _COUNTERS[name] = _Counter(encoder(name))
    return c


def _message_tokens(m: Message, count: _Counter, spec: ModelSpec, thinking: bool) -> int:
    n = TOKENS_PER_MESSAGE + count(m.role)
    if m.content:
        n += count(m.content)
    if m.name:
        n += count(m.name) + TOKENS_PER_NAME
    if m.tool_calls:
        calls = [{"id": t.id, "type": "function", "function": {"name": t.name, "arguments": t.arguments}}
                 for t in m.tool_calls]
        n += count.uncached(orjson.dumps(calls).decode())
    if m.tool_call_id:
        n += count.uncached(m.tool_call_id)
    if thinking and m.thinking:
        n += count.uncached(m.thinking)
    for a in m.attachments:
        n += image_tokens(a, spec) if a.is_image else 0
    return n


def _raw_count(ex: Example, spec: ModelSpec) -> int:
    count = _counter(spec.encoding)
    thinking = spec.counts_thinking
    n = REPLY_PRIMING
    for m in ex.all_messages():
        n += _message_tokens(m, count, spec, thinking)
    if ex.tools:
        n += count.uncached(orjson.dumps(list(ex.tools)).decode())
    return n


def count_tokens(ex: Example, provider: str, base_model: str | None = None) -> int:
    """Billed tokens for one example as the provider would count them (estimate where labelled).

    Preference examples count the prompt plus both replies, as each is sent to the trainer.
    """
    return count_with_spec(ex, spec_for(provider, base_model))


def _char_estimate(ex: Example, spec: ModelSpec, cpt: float) -> int:
    """Characters / chars-per-token, plus the same per-message overhead and image rule as exact counts."""
    chars = 0
    n = REPLY_PRIMING
    for m in ex.all_messages():
        n += TOKENS_PER_MESSAGE
        chars += len(m.content) + len(m.thinking or "")
        for t in m.tool_calls:
            chars += len(t.name) + len(t.arguments)
        for a in m.attachments:
            n += image_tokens(a, spec) if a.is_image else 0
    if ex.tools:
        chars += len(orjson.dumps(list(ex.tools)))
    return n + math.ceil(chars / cpt)


def count_with_spec(ex: Example, spec: ModelSpec) -> int:
    """count_tokens with the model spec already looked up (validation calls this once per example)."""
    if spec.chars_per_token:
        return _char_estimate(ex, spec, spec.chars_per_token)
    return _raw_count(ex, spec)


# -- estimates ---------------------------------------------------------------------------------------
@dataclass(slots=True)
class TokenStats:
    """Running totals so a million examples never become a list in memory."""

    examples: int = 0
    total: int = 0
    min: int | None = None
    max: int | None = None

    def add(self, n: int) -> None:
        self.examples += 1
        self.total += n
        self.min = n if self.min is None or n < self.min else self.min
        self.max = n if self.max is None or n > self.max else self.max

    def merge(self, other: TokenStats) -> None:
        """Fold in the totals of another chunk (validation runs in worker processes)."""
        self.examples += other.examples
        self.total += other.total
        for n in (other.min, other.max):
            if n is not None:
                self.min = n if self.min is None or n < self.min else self.min
                self.max = n if self.max is None or n > self.max else self.max

    @property
    def mean(self) -> float:
        return round(self.total / self.examples, 2) if self.examples else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "min": self.min or 0, "max": self.max or 0, "mean": self.mean}


def _stats(token_counts: Iterable[int] | TokenStats | dict[str, Any]) -> TokenStats:
    if isinstance(token_counts, TokenStats):
        return token_counts
    if isinstance(token_counts, dict):
        return TokenStats(int(token_counts.get("examples", 0)), int(token_counts.get("total", 0)),
                          token_counts.get("min"), token_counts.get("max"))
    stats = TokenStats()
    for n in token_counts:
        stats.add(int(n))
    return stats


def _epochs(spec: ModelSpec, provider: str, n_examples: int, n_epochs: int | None) -> tuple[int, str]:
    if n_epochs is not None:
        return n_epochs, "given"
    rule = targets.get(provider).default_epochs
    if rule is not None:
        return rule(n_examples)
    if spec.default_epochs is not None:
        return spec.default_epochs, f"{provider} default"
    return limits.ASSUMED_EPOCHS, f"assumed {limits.ASSUMED_EPOCHS}: the provider picks epochs itself; pass n_epochs"


def _price(spec: ModelSpec, base_model: str | None, prices: dict[str, float] | None) -> tuple[float | None, str]:
    if prices:
        keys = [k for k in (base_model, limits.normalise_model(base_model) if base_model else None, spec.name) if k]
        for k in keys:
            if k in prices:
                return float(prices[k]), f"override: prices[{k!r}]"
    return spec.price_per_million, spec.price_source


def estimate(
    token_counts: list[int] | Any, provider: str, base_model: str | None = None,
    n_epochs: int | None = None, prices: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Tokens, epochs (OpenAI's default-epoch rule when n_epochs is None), billed tokens and cost.

    Returns a JSON-ready dict: provider, base_model, examples, tokens (total, min, max, mean), n_epochs,
    billed_tokens, price_per_million, price_source (with date), estimated_cost_usd, exact (bool).
    `prices` overrides the built-in price table (params.yaml): model name or family -> USD per 1M tokens.
    `token_counts` may be a list of per-example counts, a TokenStats, or its dict form with "examples".
    Validation tokens are not billed, so pass training counts only.
    """
    spec = spec_for(provider, base_model)
    stats = _stats(token_counts)
    epochs, epochs_source = _epochs(spec, provider, stats.examples, n_epochs)
    billed = stats.total * epochs
    price, price_source = _price(spec, base_model, prices)
    cost = round(billed / 1_000_000 * price, 4) if price is not None else None
    return {
        "provider": provider,
        "base_model": base_model or targets.get(provider).default_base_model,
        "examples": stats.examples,
        "tokens": stats.to_dict(),
        "n_epochs": epochs,
        "epochs_source": epochs_source,
        "billed_tokens": billed,
        "price_per_million": price,
        "price_source": price_source,
        "estimated_cost_usd": cost,
        "exact": spec.exact,
        "token_method": token_method(spec),
    }


def token_method(spec: ModelSpec) -> str:
    """How the counts were made, so a report reader knows what to trust."""
    if spec.exact:
        return f"tiktoken {spec.encoding} with OpenAI's per-message overhead rule"
    if spec.chars_per_token:
        return (f"estimate: characters / {spec.chars_per_token} per token plus per-message overhead "
                f"(the provider's rule of thumb; its tokenizer is not available offline)")
    return f"estimate: tiktoken {spec.encoding} count (the model's own tokenizer may differ)"
