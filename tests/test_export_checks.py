"""Export validates while it writes (ftlib.export_checks): `validate --checks` must report exactly what decoding
the files reports, and must check the files itself whenever the checks file no longer describes them."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from ftlib import export_checks, formats, jsonfile, pipeline, targets
from ftlib.dataset import Dataset
from ftlib.digest import sha256_file
from ftlib.records import Example, Message, ToolCall

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("openai", "anthropic", "gemini", "huggingface")


def _extra_examples() -> list[dict]:
    """Lines that make validation speak: weights, tool calls, a secret-free long reply, an assistant-first chat."""
    long_reply = " ".join(["ledger"] * 20000)  # over gpt-3.5-turbo's 16,385 tokens, under gpt-4o-mini's limit
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"n": 1}'}}
    return [
        {"messages": [{"role": "user", "content": "Summarise the ledger"},
                      {"role": "assistant", "content": long_reply}]},
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                      {"role": "assistant", "content": "Hello", "weight": 0},
                      {"role": "user", "content": "Invoice 7?"}, {"role": "assistant", "content": "Paid."}]},
        {"messages": [{"role": "user", "content": "Look up invoice 1"},
                      {"role": "assistant", "content": "", "tool_calls": [call]},
                      {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "paid"}'},
                      {"role": "assistant", "content": "It is paid."}],
         "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]},
    ]


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample data (every input format, images, tools, preference pairs, broken lines) plus a few extra lines,
    ingested and split as the pipeline does."""
    root = tmp_path_factory.mktemp("checks")
    data = root / "data"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_sample_data.py"), "--out", str(data)], check=True,
                   capture_output=True)
    (data / "extra.jsonl").write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in _extra_examples()))
    pipeline.ingest([data], root / "dataset.parquet", root / "ingest.json", workers=1)
    pipeline.split(root / "dataset.parquet", root / "splits", 42, {"train": 0.75, "validation": 0.25}, "group")
    return root / "splits"


def test_a_line_without_losses_decodes_to_the_example_it_was_written_from(splits: Path) -> None:
    """The contract the export-time check rests on: what a format writes without reporting a loss reads back as
    the same example (metadata and group are never written; the source becomes the file line)."""
    examples = [ex for f in sorted(splits.glob("*.parquet")) for ex in Dataset.from_parquet(f)]
    assert len(examples) > 200
    checked = 0
    for name in TARGETS:
        pick = formats.picker(name)
        for ex in examples:
            fmt = pick(ex.kind)
            if fmt is None or fmt.losses(ex):
                continue
            try:
                line = fmt.encode(ex)
            except formats.FormatError:
                continue
            back = fmt.decode(orjson.loads(orjson.dumps(line)), "f.jsonl:1")
            assert back == replace(ex, metadata={}, group=None, source="f.jsonl:1"), (name, ex.source)
            checked += 1
    assert checked > 800


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("base_model", [None, "gpt-3.5-turbo-0125"])
def test_validate_with_checks_reports_exactly_what_decoding_the_files_reports(
    splits: Path, tmp_path: Path, target: str, base_model: str | None,
) -> None:
    if base_model is not None and target != "openai":
        base_model = targets.get(target).default_base_model
    out, checks = tmp_path / "export", tmp_path / "checks.json"
    pipeline.export(splits, target, out, tmp_path / "export.json", workers=1, checks=checks, base_model=base_model)
    shas = {p.name: sha256_file(p) for p in sorted(out.glob("*.jsonl"))}
    assert export_checks.load_usable(checks, out, target, base_model, shas) is not None  # the fast path is taken

    fast = pipeline.validate_export(out, target, base_model, tmp_path / "fast.json", tmp_path / "fast-est.json",
                                    workers=1, checks=checks)
    full = pipeline.validate_export(out, target, base_model, tmp_path / "full.json", tmp_path / "full-est.json",
                                    workers=1)
    assert fast == full
    assert (tmp_path / "fast.json").read_bytes() == (tmp_path / "full.json").read_bytes()
    assert (tmp_path / "fast-est.json").read_bytes() == (tmp_path / "full-est.json").read_bytes()
    if target != "huggingface":  # the data makes validation speak (TRL files have few rules), so equality counts
        assert full["warnings"] + full["errors"] > 0
    if base_model == "gpt-3.5-turbo-0125":
        assert any(i["code"] == "example_too_long" for f in full["files"].values() for i in f["issues"])


def test_validate_checks_the_files_itself_when_the_checks_file_does_not_describe_them(
    splits: Path, tmp_path: Path,
) -> None:
    out, checks = tmp_path / "export", tmp_path / "checks.json"
    pipeline.export(splits, "openai", out, None, workers=1, checks=checks)
    train = out / "train.jsonl"
    shas = {p.name: sha256_file(p) for p in sorted(out.glob("*.jsonl"))}
    assert export_checks.load_usable(checks, out, "openai", None, shas) is not None
    # another base model, another target, or edited code: not these findings
    assert export_checks.load_usable(checks, out, "openai", "gpt-4.1-mini-2025-04-14", shas) is None
    assert export_checks.load_usable(checks, out, "gemini", None, shas) is None
    doc = orjson.loads(checks.read_bytes())
    checks.write_bytes(jsonfile.dumps({**doc, "fingerprint": "0" * 64}))
    assert export_checks.load_usable(checks, out, "openai", None, shas) is None
    checks.write_bytes(jsonfile.dumps(doc))

    # a file edited after export: its line now breaks a rule, and validate must see it
    lines = train.read_bytes().splitlines(keepends=True)
    bad = orjson.loads(lines[0])
    bad["messages"] = [m for m in bad["messages"] if m["role"] != "assistant"]
    train.write_bytes(orjson.dumps(bad) + b"\n" + b"".join(lines[1:]))
    result = pipeline.validate_export(out, "openai", None, None, None, workers=1, checks=checks)
    assert result == pipeline.validate_export(out, "openai", None, None, None, workers=1)
    assert any(i["source"] == f"{train.as_posix()}:1" for i in result["files"]["train.jsonl"]["issues"])


def test_sources_follow_the_folder_validate_is_given(splits: Path, tmp_path: Path) -> None:
    """Issues name the file as validate sees it, also when the export folder was moved after export."""
    out, checks = tmp_path / "export", tmp_path / "checks.json"
    pipeline.export(splits, "anthropic", out, None, workers=1, checks=checks)
    moved = tmp_path / "moved"
    out.rename(moved)
    fast = pipeline.validate_export(moved, "anthropic", None, None, None, workers=1, checks=checks)
    assert fast == pipeline.validate_export(moved, "anthropic", None, None, None, workers=1)
    sources = [i["source"] for f in fast["files"].values() for i in f["issues"] if i.get("source")]
    assert sources and all(s.startswith(moved.as_posix() + "/") for s in sources)


def test_a_line_its_format_cannot_read_back_makes_the_checks_file_unusable() -> None:
    """A format bug (export writes what it cannot decode) must not hide behind the checks file."""
    checker = export_checks.Checker("openai", None)
    part = checker.new_report("train")
    ex = Example(messages=(Message("user", "Hi"), Message("assistant", "", tool_calls=(ToolCall("c1", "f", "{}"),))))
    fmt = formats.get("openai-chat")
    checker.check(ex, fmt, b'{"messages": 3}', True, 1, part)  # lossy path: decoded as validate would
    assert part.unreadable == 1
    fc = export_checks.FileChecks("x/train.jsonl", checker.new_report("train").report)
    fc.add(b'{"messages": 3}\n', 1, part)
    doc = export_checks.checks_document("openai", None, Path("x"), {"train.jsonl": fc})
    assert doc["usable"] is False


def test_dvc_reruns_export_and_validate_when_any_code_the_checks_cover_changes() -> None:
    """A checks file stands in for validation only while its code fingerprint holds; DVC must re-run export and
    validate when that code changes, or a repro would keep a checks file that validate then ignores (and a stale
    export). Every module the fingerprint covers is therefore among both stages' deps."""
    import yaml

    root = Path(__file__).resolve().parent.parent
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    for name in ("export", "validate"):
        deps = [d.replace("${key}", "openai") for d in stages[name]["do"]["deps"]]
        for module in export_checks._CHECK_MODULES:
            rel = Path(*module.split("."))
            path = rel if (root / rel).is_dir() else rel.with_suffix(".py")
            assert any(path == Path(d) or Path(d) in path.parents for d in deps), f"{name}: {path} not in deps"
