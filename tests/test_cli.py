"""The data CLI as a user runs it: real subprocesses, exit codes, no tracebacks, reports on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ftlib import Example
from ftlib.dataset import Dataset

GOOD = [
    Example.from_pair(f"How do I export invoice INV-{i:04d} as PDF?", f"Open INV-{i:04d} and choose Export > PDF.",
                      system="You are Ledgerly support.", group=f"customer-{i // 2}")
    for i in range(40)
]


def ftlib(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ftlib", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture()
def raw(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    Dataset(GOOD[:30]).export_jsonl(data / "chat.jsonl", "openai")
    Dataset(GOOD[30:]).export_jsonl(data / "claude.jsonl", "bedrock-claude")
    (data / "bad.jsonl").write_text(
        '{"messages": [{"role": "user", "content": "hi"}]}\n'
        "{not json\n"
        + (data / "chat.jsonl").read_text().splitlines()[0] + "\n"  # a duplicate of a good line
    )
    return tmp_path


def test_stages_end_to_end_with_rejects_and_duplicates(raw: Path) -> None:
    r = ftlib("ingest", "data", "--out", "build/dataset.parquet", "--report", "reports/ingest.json", cwd=raw)
    assert r.returncode == 0, r.stderr
    report = json.loads((raw / "reports/ingest.json").read_text())
    assert (report["read"], report["kept"], report["duplicates"], report["rejected"]) == (43, 40, 1, 2)
    sources = {i["source"] for i in report["rejects"]}
    assert sources == {"data/bad.jsonl:1", "data/bad.jsonl:2"}
    assert all(i["message"] for i in report["rejects"])

    r = ftlib("split", "build/dataset.parquet", "--out", "build/splits", "--seed", "3", "--ratios",
              "train=0.75,validation=0.25", "--group-by", "group", cwd=raw)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((raw / "build/splits/manifest.json").read_text())
    assert sum(manifest["counts"].values()) == 40
    assert not set(manifest["ids"]["train"]) & set(manifest["ids"]["validation"])

    for provider in ("openai", "anthropic", "gemini", "huggingface"):
        r = ftlib("export", "build/splits", "--provider", provider, "--out", f"build/export/{provider}", cwd=raw)
        assert r.returncode == 0, r.stderr
        lines = [ln for f in (raw / "build/export" / provider).glob("*.jsonl") for ln in f.read_text().splitlines()]
        assert len(lines) == 40
        r = ftlib("validate", f"build/export/{provider}", "--provider", provider, "--report",
                  f"reports/validation/{provider}.json", "--estimate", f"reports/estimate/{provider}.json", cwd=raw)
        # 40 examples is below Bedrock's 32-record validation minimum and OpenAI's recommended 50: the reports say so
        report = json.loads((raw / f"reports/validation/{provider}.json").read_text())
        assert r.returncode == (0 if report["ok"] else 1)
    est = json.loads((raw / "reports/estimate/openai.json").read_text())["train.jsonl"]
    assert est["tokens"]["total"] > 0 and est["exact"] is True and est["estimated_cost_usd"] > 0

    r = ftlib("inspect", "build/dataset.parquet", "--json", cwd=raw)
    assert r.returncode == 0 and json.loads(r.stdout)["examples"] == 40


def test_strict_ingest_fails_with_the_report_and_writes_no_dataset(raw: Path) -> None:
    r = ftlib("ingest", "data", "--out", "build/dataset.parquet", "--report", "reports/ingest.json", "--strict",
              cwd=raw)
    assert r.returncode == 1
    assert "data/bad.jsonl:1" in r.stderr and "Traceback" not in r.stderr
    assert not (raw / "build/dataset.parquet").exists()
    assert json.loads((raw / "reports/ingest.json").read_text())["rejected"] == 2


def test_validation_errors_exit_1_and_name_file_line_field(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    lines = [json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})] * 12
    lines[4] = json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "",
                                                                           "weight": 3}]})
    (export / "train.jsonl").write_text("\n".join(lines) + "\n")
    r = ftlib("validate", str(export), "--provider", "openai", "--report", "v.json", cwd=tmp_path)
    assert r.returncode == 1
    issues = json.loads((tmp_path / "v.json").read_text())["files"]["train.jsonl"]["issues"]
    bad = [i for i in issues if i["severity"] == "error"]
    assert bad and all(i["source"] == f"{export.as_posix()}/train.jsonl:5" for i in bad)
    assert "messages[1].weight" in {i["field"] for i in bad}


@pytest.mark.parametrize("args", [
    ("export", "nowhere", "--provider", "cohere"),
    ("split", "missing.parquet", "--ratios", "train=0.5"),
    ("ingest", "does-not-exist"),
    ("validate", "empty-dir", "--provider", "openai"),
])
def test_usage_errors_are_one_line_never_a_traceback(tmp_path: Path, args: tuple[str, ...]) -> None:
    (tmp_path / "empty-dir").mkdir()
    r = ftlib(*args, cwd=tmp_path)
    assert r.returncode in (1, 2)
    assert "Traceback" not in r.stderr and r.stderr.strip()


def test_every_command_has_help(tmp_path: Path) -> None:
    for cmd in ("ingest", "split", "export", "validate", "inspect", "finetune", "status", "models"):
        r = ftlib(cmd, "--help", cwd=tmp_path)
        assert r.returncode == 0 and "Usage" in r.stdout, cmd


def test_data_stages_keep_pandas_unloaded_yet_importable(tmp_path: Path) -> None:
    """pyarrow would import pandas (~0.2 s per stage) just to ask whether its input is a pandas object; the data
    stages hide it while pyarrow asks. Arrow still works, and pandas can still be imported afterwards."""
    pytest.importorskip("pandas")
    code = (
        "import sys\n"
        "from ftlib.cli import _arrow_without_pandas\n"
        "_arrow_without_pandas()\n"
        "import pyarrow as pa\n"
        "t = pa.table({'a': [1, None], 'b': ['x', 'y']})\n"
        "assert t.column('a').to_pylist() == [1, None]\n"
        "assert 'pandas' not in sys.modules, 'pyarrow loaded pandas'\n"
        "import pandas\n"
        "print(pandas.DataFrame({'a': [1]}).shape)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 1)"
