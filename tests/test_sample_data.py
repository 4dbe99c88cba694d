"""The bundled sample in data/: reproducible from its script, well-formed, and covering what the README promises.

These checks re-implement the format rules independently of ftlib, so a bug in ftlib's readers can't hide a bug
in the sample (and the other way round).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import struct
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
SCRIPT = ROOT / "scripts" / "make_sample_data.py"
JSONL = ["openai_chat.jsonl", "claude_bedrock.jsonl", "vertex_gemini.jsonl", "preferences_openai.jsonl",
         "preferences_trl.jsonl"]
SECRET = re.compile(r"sk-proj-[A-Za-z0-9]{40}")
ROLES = {"system", "user", "assistant", "tool"}
REQUIRED_BREAKAGE = {"invalid_json", "unknown_role", "missing_assistant", "empty_assistant", "secret",
                     "messages_not_list", "not_an_object"}

Turns = tuple[str | None, tuple[tuple[str, str], ...]]


def read_jsonl(d: Path, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (d / name).read_text(encoding="utf-8").splitlines()]


def read_pairs(d: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((d / "pairs.csv").read_text(encoding="utf-8"), newline="")))


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if p.get("type") == "text")


def images_of(msg: dict[str, Any]) -> list[str]:
    content = msg.get("content")
    if not isinstance(content, list):
        return []
    return [p["image_url"]["url"] for p in content if p.get("type") == "image_url"]


def as_messages(fmt: str, line: dict[str, Any]) -> list[dict[str, Any]]:
    """Any sample line as OpenAI-style messages, the shape the SFT rules are written for."""
    if fmt == "openai":
        return line["messages"]
    if fmt == "claude":
        system = [{"role": "system", "content": line["system"]}] if "system" in line else []
        return system + line["messages"]
    if fmt == "vertex":
        si = line.get("systemInstruction")
        system = [{"role": "system", "content": si["parts"][0]["text"]}] if si else []
        return system + [{"role": "assistant" if c["role"] == "model" else c["role"],
                          "content": "".join(p["text"] for p in c["parts"])} for c in line["contents"]]
    raise ValueError(fmt)


def sft_problems(msgs: list[dict[str, Any]]) -> list[str]:
    """OpenAI SFT rules: known roles, starts with user, ends with assistant, no empty content, images from users."""
    problems = []
    if any(m.get("role") not in ROLES for m in msgs):
        problems.append("role")
    convo = [m for m in msgs if m.get("role") != "system"]
    if not convo or convo[0]["role"] != "user":
        problems.append("first")
    if not convo or convo[-1]["role"] != "assistant":
        problems.append("last")
    for m in msgs:
        if not text_of(m.get("content") or "").strip() and not images_of(m) and not m.get("tool_calls"):
            problems.append("empty")
        if images_of(m) and m["role"] != "user":
            problems.append("image outside user")
        if "weight" in m and (m["role"] != "assistant" or m["weight"] not in (0, 1)):
            problems.append("weight")
    return problems


def key(msgs: list[dict[str, Any]]) -> Turns:
    system = msgs[0]["content"] if msgs and msgs[0]["role"] == "system" else None
    return system, tuple((m["role"], text_of(m["content"])) for m in msgs if m["role"] != "system")


def sft_examples(d: Path) -> dict[str, list[list[dict[str, Any]]]]:
    return {
        "openai_chat.jsonl": [as_messages("openai", ln) for ln in read_jsonl(d, "openai_chat.jsonl")],
        "claude_bedrock.jsonl": [as_messages("claude", ln) for ln in read_jsonl(d, "claude_bedrock.jsonl")],
        "vertex_gemini.jsonl": [as_messages("vertex", ln) for ln in read_jsonl(d, "vertex_gemini.jsonl")],
        "pairs.csv": [([{"role": "system", "content": r["system"]}] if r["system"] else [])
                      + [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["completion"]}]
                      for r in read_pairs(d)],
    }


def broken_problems(raw: str) -> set[str]:
    """What is wrong with one line of broken.jsonl (empty set: a good line)."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError:
        return {"invalid_json"}
    if not isinstance(obj, dict):
        return {"not_an_object"}
    msgs = obj.get("messages")
    if not isinstance(msgs, list):
        return {"messages_not_list"}
    found = set()
    roles = [m.get("role") for m in msgs]
    if any(r not in ROLES for r in roles):
        found.add("unknown_role")
    convo = [m for m in msgs if m.get("role") != "system"]
    if convo and convo[0]["role"] == "assistant":
        found.add("assistant_first")
    if "assistant" not in roles:
        found.add("missing_assistant")
    if any(m["role"] == "assistant" and not m.get("content") and not m.get("tool_calls") for m in msgs):
        found.add("empty_assistant")
    if any(m["role"] == "tool" and not m.get("tool_call_id") for m in msgs):
        found.add("tool_without_call_id")
    if SECRET.search(raw):
        found.add("secret")
    return found


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "PNG signature"
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, f"bad CRC in {kind!r} chunk"
        chunks.append((kind, body))
        pos += 12 + length
    return chunks


# ------------------------------------------------------------------------------------------------ tests
@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh run of the generator: checked even where data/ has not been pulled from DVC yet."""
    out = tmp_path_factory.mktemp("sample")
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], check=True, capture_output=True)
    return out


def test_generator_is_deterministic(sample: Path, tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)], check=True, capture_output=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {p.name: p.read_bytes() for p in sample.iterdir()}


def test_data_folder_matches_the_generator(sample: Path) -> None:
    if not DATA.is_dir():
        pytest.skip("data/ is tracked by DVC and not present here; run `dvc pull` to fetch it")
    fresh = sorted(p.name for p in sample.iterdir())
    assert fresh == sorted(p.name for p in DATA.iterdir() if p.is_file()), "data/ holds files the script doesn't write"
    for name in fresh:
        assert (sample / name).read_bytes() == (DATA / name).read_bytes(), (
            f"data/{name} drifted from scripts/make_sample_data.py; rerun it with --out data (then `dvc add data`)")


@pytest.mark.parametrize("name", JSONL)
def test_every_good_line_is_a_json_object(sample: Path, name: str) -> None:
    for n, line in enumerate((sample / name).read_text(encoding="utf-8").splitlines(), 1):
        assert isinstance(json.loads(line), dict), f"{name}:{n}"


def test_counts_match_the_readme(sample: Path) -> None:
    sft = sft_examples(sample)
    counts = {name: len(v) for name, v in sft.items()}
    assert 100 <= counts["openai_chat.jsonl"] <= 120
    assert 35 <= counts["claude_bedrock.jsonl"] <= 45
    assert 25 <= counts["vertex_gemini.jsonl"] <= 35
    assert 25 <= counts["pairs.csv"] <= 35
    assert 12 <= len(read_jsonl(sample, "preferences_openai.jsonl")) <= 18
    assert 8 <= len(read_jsonl(sample, "preferences_trl.jsonl")) <= 12
    good_broken = sum(1 for raw in (sample / "broken.jsonl").read_text().splitlines() if not broken_problems(raw))
    total = sum(counts.values()) + len(read_jsonl(sample, "preferences_openai.jsonl")) + \
        len(read_jsonl(sample, "preferences_trl.jsonl")) + good_broken
    assert total >= 200
    readme = (sample / "README.md").read_text()
    for name in [*JSONL, "pairs.csv", "broken.jsonl"]:
        assert f"`{name}`" in readme, f"README.md does not describe {name}"


def test_every_sft_example_follows_openai_rules(sample: Path) -> None:
    for name, examples in sft_examples(sample).items():
        for n, msgs in enumerate(examples, 1):
            assert sft_problems(msgs) == [], f"{name}:{n}: {sft_problems(msgs)}"
            assert not SECRET.search(json.dumps(msgs)), f"{name}:{n} contains a key-like string"


def test_claude_and_vertex_strictly_alternate(sample: Path) -> None:
    for ln in read_jsonl(sample, "claude_bedrock.jsonl"):
        assert set(ln) <= {"system", "messages", "metadata", "group"}
        roles = [m["role"] for m in ln["messages"]]
        assert roles == ["user", "assistant"] * (len(roles) // 2) and roles
        assert all(isinstance(m["content"], str) for m in ln["messages"])
    for ln in read_jsonl(sample, "vertex_gemini.jsonl"):
        assert set(ln) <= {"systemInstruction", "contents", "metadata", "group"}
        if "systemInstruction" in ln:
            assert ln["systemInstruction"]["role"] == "system"
        roles = [c["role"] for c in ln["contents"]]
        assert roles == ["user", "model"] * (len(roles) // 2) and roles


def test_openai_file_has_multi_turn_tools_images_and_weights(sample: Path) -> None:
    lines = read_jsonl(sample, "openai_chat.jsonl")
    user_turns = Counter(sum(m["role"] == "user" for m in ln["messages"]) for ln in lines)
    assert user_turns[1] >= 30 and all(user_turns[k] >= 3 for k in (2, 3, 4)) and max(user_turns) <= 4
    assert sum(1 for ln in lines if ln["messages"][0]["role"] == "system") >= 60
    assert sum(1 for ln in lines if ln["messages"][0]["role"] != "system") >= 5
    weighted = [ln for ln in lines if any(m.get("weight") == 0 for m in ln["messages"])]
    assert 2 <= len(weighted) <= 6
    for ln in weighted:  # the weight-0 turn is an earlier one; the final answer is still trained on
        assert ln["messages"][-1].get("weight", 1) == 1
    with_group = Counter(ln["group"] for ln in lines if "group" in ln)
    assert max(with_group.values()) >= 3, "some customer should own several tickets"
    assert all({"ticket_id", "channel"} <= set(ln["metadata"]) for ln in lines)


def test_tool_conversations_are_linked(sample: Path) -> None:
    tool_lines = [ln for ln in read_jsonl(sample, "openai_chat.jsonl") if "tools" in ln]
    assert 8 <= len(tool_lines) <= 12
    for ln in tool_lines:
        names = {t["function"]["name"] for t in ln["tools"]}
        open_calls: set[str] = set()
        for m in ln["messages"]:
            for call in m.get("tool_calls", []):
                assert call["function"]["name"] in names
                assert isinstance(json.loads(call["function"]["arguments"]), dict)
                open_calls.add(call["id"])
            if m["role"] == "tool":
                assert m["tool_call_id"] in open_calls, "tool result without a matching call"
                json.loads(m["content"])
        assert open_calls and ln["messages"][-1]["role"] == "assistant"
        assert not ln["messages"][-1].get("tool_calls")
    assert any(len(m.get("tool_calls", [])) > 1 for ln in tool_lines for m in ln["messages"]), "no parallel calls"
    used = {c["function"]["name"] for ln in tool_lines for m in ln["messages"] for c in m.get("tool_calls", [])}
    assert {"lookup_invoice", "get_subscription", "create_refund"} <= used


def test_images_are_small_valid_distinct_pngs(sample: Path) -> None:
    urls = [u for ln in read_jsonl(sample, "openai_chat.jsonl") for m in ln["messages"] for u in images_of(m)]
    assert 5 <= len(urls) <= 7
    assert len(set(urls)) == len(urls), "every image should differ"
    for url in urls:
        prefix, _, payload = url.partition(",")
        assert prefix == "data:image/png;base64"
        data = base64.b64decode(payload, validate=True)
        chunks = png_chunks(data)
        assert chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
        width, height, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", chunks[0][1])
        assert (depth, colour) == (8, 2) and 1 <= width <= 64 and 1 <= height <= 64
        raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
        assert len(raw) == height * (1 + width * 3)


def test_exactly_the_planned_cross_file_duplicates(sample: Path) -> None:
    seen: dict[Turns, list[str]] = {}
    for name, examples in sft_examples(sample).items():
        for msgs in examples:
            seen.setdefault(key(msgs), []).append(name)
    repeated = {k: files for k, files in seen.items() if len(files) > 1}
    assert 3 <= len(repeated) <= 4
    for files in repeated.values():
        assert len(files) == 2 and files[0] != files[1], f"unplanned duplicate within one file: {files}"


def test_pairs_csv_is_quoted_correctly(sample: Path) -> None:
    raw = (sample / "pairs.csv").read_text(encoding="utf-8")
    assert raw.splitlines()[0] == "prompt,completion,system"
    rows = read_pairs(sample)
    assert all(r["prompt"].strip() and r["completion"].strip() for r in rows)
    tricky = [r for r in rows if "\n" in r["completion"] and "," in r["completion"] and '"' in r["completion"]]
    assert tricky, "no multi-line completion with commas and quotes"
    assert any(r["system"] for r in rows) and any(not r["system"] for r in rows)


def test_preference_files(sample: Path) -> None:
    for ln in read_jsonl(sample, "preferences_openai.jsonl"):
        assert set(ln) == {"input", "preferred_output", "non_preferred_output"}
        assert sft_problems(ln["input"]["messages"] + ln["preferred_output"]) == []
        good, bad = ln["preferred_output"], ln["non_preferred_output"]
        assert len(good) == len(bad) == 1 and good[0]["role"] == bad[0]["role"] == "assistant"
        assert good[0]["content"].strip() and bad[0]["content"].strip() and good != bad
    for ln in read_jsonl(sample, "preferences_trl.jsonl"):
        assert set(ln) == {"prompt", "chosen", "rejected"}
        assert [m["role"] for m in ln["prompt"]] == ["user"]
        assert ln["chosen"][0]["role"] == ln["rejected"][0]["role"] == "assistant"
        assert ln["chosen"] != ln["rejected"]


def test_broken_file_has_each_breakage_once_among_good_lines(sample: Path) -> None:
    lines = (sample / "broken.jsonl").read_text(encoding="utf-8").splitlines()
    found = [broken_problems(raw) for raw in lines]
    assert all(len(p) <= 1 for p in found), "each broken line should be broken in exactly one way"
    kinds = Counter(k for p in found for k in p)
    assert set(kinds) >= REQUIRED_BREAKAGE
    assert 8 <= sum(kinds.values()) <= 10
    assert 2 <= sum(1 for p in found if not p) <= 3
    key_hits = SECRET.findall((sample / "broken.jsonl").read_text())
    assert len(key_hits) == 1
    for name in [*JSONL, "pairs.csv", "README.md"]:
        assert key_hits[0] not in (sample / name).read_text(), f"the fake key leaked into {name}"
