"""The ledger under models/: atomic, deterministic, no stray fields, safe under concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from ftlib.jobs.ledger import Ledger, write_json_atomic


def _record(key: str, provider: str = "openai", **kw) -> dict:
    rec = {"job_key": key, "provider": provider, "base_model": "m", "method": "supervised",
           "hyperparameters": {"n_epochs": 3}, "attempt": 0, "dataset_sha256": "d" * 64, "status": "submitted",
           "job_id": f"job-{key}"}
    rec.update(kw)
    return rec


def test_job_file_is_sorted_indented_and_index_regenerated(tmp_path: Path) -> None:
    reg = Ledger(tmp_path / "models")
    reg.save(_record("k1", model_id=None))
    path = tmp_path / "models/jobs/openai/k1.json"
    text = path.read_text()
    assert text.endswith("\n") and text.startswith("{\n  ")
    keys = list(json.loads(text))
    assert keys == sorted(keys)
    index = json.loads((tmp_path / "models/registry.json").read_text())
    assert index == {"d" * 64: {"openai": {"base_model": "m", "hyperparameters": {"n_epochs": 3}, "job_id": "job-k1",
                                          "job_key": "k1", "model_id": None, "status": "submitted"}}}


def test_same_records_give_byte_identical_files(tmp_path: Path) -> None:
    a, b = Ledger(tmp_path / "a"), Ledger(tmp_path / "b")
    for reg, order in ((a, ["k1", "k2"]), (b, ["k2", "k1"])):
        for k in order:
            reg.save(_record(k, provider="gemini" if k == "k2" else "openai", dataset_sha256=k * 32))
    for rel in ("registry.json", "jobs/openai/k1.json", "jobs/gemini/k2.json"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def test_unknown_fields_are_refused_so_secrets_cannot_slip_in(tmp_path: Path) -> None:
    reg = Ledger(tmp_path)
    with pytest.raises(ValueError, match="api_key"):
        reg.save(_record("k1", api_key="sk-secret"))
    assert not (tmp_path / "jobs").exists()


def test_update_merges_and_index_prefers_highest_attempt(tmp_path: Path) -> None:
    reg = Ledger(tmp_path)
    reg.save(_record("k0"))
    reg.save(_record("k1", attempt=1))
    reg.update("openai", "k0", status="succeeded", model_id="ft:m:0")
    assert reg.get("openai", "k0")["model_id"] == "ft:m:0"
    assert reg.get("openai", "k0")["base_model"] == "m"
    assert reg.index()["d" * 64]["openai"]["job_key"] == "k1"
    assert reg.find_by_job_id("openai", "job-k0")["job_key"] == "k0"
    assert [r["job_key"] for r in reg.records()] == ["k0", "k1"]


def test_upload_cache(tmp_path: Path) -> None:
    reg = Ledger(tmp_path)
    assert reg.upload_ref("openai", "a" * 64) is None
    reg.record_upload("openai", "a" * 64, "file-1")
    assert Ledger(tmp_path).upload_ref("openai", "a" * 64) == "file-1"
    assert reg.upload_ref("gemini", "a" * 64) is None


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "x.json", {"b": 1, "a": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    assert (tmp_path / "x.json").read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'


def test_corrupt_file_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "jobs/openai").mkdir(parents=True)
    (tmp_path / "jobs/openai/k.json").write_text("{nope")
    with pytest.raises(ValueError, match=r"k\.json: not valid JSON"):
        Ledger(tmp_path).get("openai", "k")


def _writer(root: str, provider: str, n: int) -> None:
    reg = Ledger(root)
    for i in range(n):
        reg.save(_record(f"{provider}{i}", provider=provider, dataset_sha256=f"{i:064d}"))


def test_concurrent_providers_do_not_lose_index_entries(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), p, 15)) for p in ("openai", "anthropic", "gemini")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    index = json.loads((tmp_path / "registry.json").read_text())
    assert len(index) == 15
    assert all(set(v) == {"openai", "anthropic", "gemini"} for v in index.values())
