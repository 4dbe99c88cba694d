"""Token counts against tiktoken itself, image token rules, the default-epoch rule at its edges, and prices."""

from __future__ import annotations

import math
import re
import struct
import zlib

import orjson
import pytest
import tiktoken

from ftlib import tokens
from ftlib.records import Attachment, Example, Message, ToolCall
from ftlib.targets.openai.models import default_epochs


def png(w: int, h: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def jpeg(w: int, h: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, h, w, 1) + b"\x01\x11\x00"
    return b"\xff\xd8\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9 + sof + b"\xff\xd9"


O200K = tiktoken.get_encoding("o200k_base")
CL100K = tiktoken.get_encoding("cl100k_base")


def cookbook_count(enc: tiktoken.Encoding, messages: list[dict[str, str]]) -> int:
    """OpenAI cookbook num_tokens_from_messages, written out independently of ftlib."""
    n = 0
    for m in messages:
        n += 3
        for key, value in m.items():
            n += len(enc.encode(value))
            if key == "name":
                n += 1
    return n + 3


def test_openai_count_matches_cookbook_rule_with_tiktoken():
    ex = Example.from_pair("What is the capital of France?", "Paris. It has been since 987.", system="Be brief.")
    expected = cookbook_count(O200K, [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris. It has been since 987."},
    ])
    assert tokens.count_tokens(ex, "openai", "gpt-4o-mini-2024-07-18") == expected
    assert tokens.count_tokens(ex, "openai", "gpt-4.1-2025-04-14") == expected


def test_older_openai_models_use_cl100k():
    ex = Example.from_pair("naïve café ünïcödé text, 12345", "ok")
    msgs = [{"role": "user", "content": "naïve café ünïcödé text, 12345"}, {"role": "assistant", "content": "ok"}]
    assert tokens.count_tokens(ex, "openai", "gpt-3.5-turbo-0125") == cookbook_count(CL100K, msgs)
    assert cookbook_count(CL100K, msgs) != cookbook_count(O200K, msgs)  # the choice of encoding matters here


def test_names_tools_and_tool_calls_are_counted_from_their_json():
    tools = ({"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},)
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    ex = Example(messages=(
        Message("user", "Weather?", name="alice"),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", "sunny", tool_call_id="call_1"),
        Message("assistant", "Sunny."),
    ), tools=tools)
    calls_json = orjson.dumps([{"id": "call_1", "type": "function",
                                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]).decode()
    expected = (
        cookbook_count(O200K, [{"role": "user", "content": "Weather?", "name": "alice"},
                               {"role": "assistant", "content": ""},
                               {"role": "tool", "content": "sunny"},
                               {"role": "assistant", "content": "Sunny."}])
        + len(O200K.encode(calls_json)) + len(O200K.encode("call_1"))
        + len(O200K.encode(orjson.dumps(list(tools)).decode()))
    )
    assert tokens.count_tokens(ex, "openai", "gpt-4o") == expected


def test_image_sizes_are_read_from_headers():
    assert tokens.image_size(png(640, 480)) == (640, 480)
    assert tokens.image_size(jpeg(300, 200)) == (300, 200)
    assert tokens.image_size(b"not an image") is None


@pytest.mark.parametrize(("w", "h", "detail", "expected"), [
    (1024, 1024, None, 85 + 170 * 4),   # 1024 -> 768x768 -> 2x2 tiles
    (2048, 4096, None, 85 + 170 * 6),   # OpenAI's worked example: 1105 tokens
    (512, 512, None, 85 + 170 * 1),
    (4000, 4000, "low", 85),            # low detail: base only
])
def test_gpt4o_image_tile_rule(w, h, detail, expected):
    base = Example.from_pair("describe", "a cat")
    ex = Example.from_pair("describe", "a cat", attachments=[Attachment.from_bytes(png(w, h), detail=detail)])
    extra = tokens.count_tokens(ex, "openai", "gpt-4o-2024-08-06") - tokens.count_tokens(base, "openai", "gpt-4o")
    assert extra == expected


def test_gpt4o_mini_images_cost_more_and_uri_images_use_the_documented_guess():
    base = Example.from_pair("describe", "a cat")
    ex = Example.from_pair("describe", "a cat", attachments=[Attachment.from_bytes(png(1024, 1024))])
    assert tokens.count_tokens(ex, "openai", "gpt-4o-mini") - tokens.count_tokens(base, "openai", "gpt-4o-mini") == (
        2833 + 5667 * 4)
    by_uri = Example.from_pair("describe", "a cat", attachments=["https://example.com/cat.png"])
    # without bytes the size is unknown: priced as a 1024x1024 image
    assert tokens.count_tokens(by_uri, "openai", "gpt-4o") - tokens.count_tokens(base, "openai", "gpt-4o") == 765


def test_claude_and_gemini_counts_are_labelled_estimates():
    user, reply = "Summarise the report in two lines.", "Revenue rose. Costs fell."
    ex = Example.from_pair(user, reply)
    raw = tokens.count_tokens(ex, "openai", "gpt-4o")
    claude = tokens.count_tokens(ex, "anthropic", "anthropic.claude-3-haiku-20240307-v1:0:200k")
    gemini = tokens.count_tokens(ex, "gemini", "gemini-2.5-flash")
    overhead = 2 * 3 + 3  # per message, plus reply priming: the same rule as the exact counts
    assert claude == overhead + math.ceil(len(user + reply) / 3.5)  # Anthropic: ~3.5 characters per token
    assert gemini == overhead + math.ceil(len(user + reply) / 4.0)  # Google: ~4 characters per token
    assert abs(claude - raw) <= 0.5 * raw  # same order as a real tokenizer on English text
    assert tokens.estimate([claude], "anthropic")["exact"] is False
    assert tokens.estimate([gemini], "gemini", "gemini-2.5-flash")["exact"] is False
    assert tokens.estimate([raw], "openai", "gpt-4o")["exact"] is True


@pytest.mark.parametrize(("n", "epochs"), [
    (1, 25), (4, 25), (5, 20), (10, 10), (33, 3), (34, 3), (100, 3),
    (8333, 3), (8334, 2), (12500, 2), (12501, 1), (30000, 1),
])
def test_openai_default_epoch_rule_boundaries(n, epochs):
    assert default_epochs(n)[0] == epochs
    assert tokens.estimate([10] * n, "openai", "gpt-4o-mini")["n_epochs"] == epochs


def test_estimate_billed_tokens_cost_and_price_source():
    est = tokens.estimate([100, 200, 300], "openai", "gpt-4o-mini-2024-07-18")
    assert est["tokens"] == {"total": 600, "min": 100, "max": 300, "mean": 200.0}
    assert est["n_epochs"] == 25  # 3 examples: raised toward 100 example-passes, capped at 25
    assert est["billed_tokens"] == 600 * 25
    assert est["price_per_million"] == 3.0
    assert est["estimated_cost_usd"] == pytest.approx(600 * 25 / 1e6 * 3.0)
    assert re.search(r"\d{4}-\d{2}", est["price_source"])
    orjson.dumps(est)  # JSON-ready


def test_explicit_epochs_and_price_override():
    est = tokens.estimate([1000] * 50, "openai", "gpt-4o-2024-08-06", n_epochs=2, prices={"gpt-4o-2024-08-06": 10.0})
    assert est["n_epochs"] == 2
    assert est["price_per_million"] == 10.0
    assert "override" in est["price_source"]
    assert est["estimated_cost_usd"] == pytest.approx(50_000 * 2 / 1e6 * 10.0)
    by_family = tokens.estimate([1000], "gemini", "gemini-2.5-flash-001", prices={"gemini-2.5-flash": 2.0})
    assert by_family["price_per_million"] == 2.0


def test_estimate_accepts_running_stats_and_uses_provider_default_epochs():
    stats = tokens.TokenStats()
    for n in (5, 7, 9):
        stats.add(n)
    assert tokens.estimate(stats, "openai", "gpt-4o") == tokens.estimate([5, 7, 9], "openai", "gpt-4o")
    assert tokens.estimate(stats, "anthropic")["n_epochs"] == 2  # Bedrock Claude epochCount default
    assert "assumed" in tokens.estimate(stats, "gemini")["epochs_source"]


def test_encoders_are_cached():
    assert tokens.encoder("o200k_base") is tokens.encoder("o200k_base")
