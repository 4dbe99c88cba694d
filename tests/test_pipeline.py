"""Stage functions: the worker count changes speed, never bytes; rejects and duplicates survive chunking."""

from __future__ import annotations

import json
import os
from pathlib import Path

import orjson
import pytest

from ftlib import parallel, pipeline

N = 5000  # > 2 chunks of parallel.CHUNK_LINES, so workers really run


def write_input(path: Path) -> None:
    lines = []
    for i in range(N):
        msgs = [{"role": "system", "content": "You are Ledgerly support."},
                {"role": "user", "content": f"Ticket {i}: how do I resend invoice INV-{i}?"},
                {"role": "assistant", "content": f"Open INV-{i} and click Resend."}]
        lines.append(orjson.dumps({"messages": msgs, "group": f"c{i // 4}"}))
    lines[10] = b'{"messages": [{"role": "user", "content": "no reply"}]}'
    lines[3000] = b"{broken"
    lines[4500] = lines[7]  # a duplicate in a later chunk: the first occurrence must win
    path.write_bytes(b"\n".join(lines) + b"\n")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    out = {}
    cwd = Path.cwd()
    for workers in (1, 2):
        d = tmp_path_factory.mktemp(f"w{workers}")
        os.chdir(d)  # relative paths, as under dvc.yaml: sources like "in.jsonl:11" are the same in both runs
        try:
            write_input(Path("in.jsonl"))
            pipeline.ingest([Path("in.jsonl")], Path("ds.parquet"), Path("ingest.json"), workers=workers)
            pipeline.split(Path("ds.parquet"), Path("splits"), 7, {"train": 0.9, "validation": 0.1}, "group")
            pipeline.export(Path("splits"), "openai", Path("export"), workers=workers)
            pipeline.validate_export(Path("export"), "openai", "gpt-4o-mini-2024-07-18", Path("v.json"),
                                     Path("e.json"), workers=workers)
        finally:
            os.chdir(cwd)
        out[workers] = d
    return out


def test_ingest_counts_rejects_and_duplicates_across_chunks(runs: dict[int, Path]) -> None:
    report = json.loads((runs[2] / "ingest.json").read_text())
    assert (report["read"], report["kept"], report["duplicates"], report["rejected"]) == (N, N - 3, 1, 2)
    assert [r["source"].rsplit(":", 1)[1] for r in report["rejects"]] == ["11", "3001"]


@pytest.mark.parametrize("name", ["ds.parquet", "ingest.json", "splits/train.parquet", "splits/manifest.json",
                                  "export/train.jsonl", "v.json", "e.json"])
def test_worker_count_never_changes_bytes(runs: dict[int, Path], name: str) -> None:
    assert (runs[1] / name).read_bytes() == (runs[2] / name).read_bytes()


def test_validation_report_totals_merge_over_chunks(runs: dict[int, Path]) -> None:
    train = json.loads((runs[2] / "v.json").read_text())["files"]["train.jsonl"]
    est = json.loads((runs[2] / "e.json").read_text())["train.jsonl"]
    assert train["examples"] == est["examples"] == len((runs[2] / "export/train.jsonl").read_text().splitlines())
    assert 0 < est["tokens"]["min"] <= est["tokens"]["mean"] <= est["tokens"]["max"]


def square(x: int) -> int:
    return x * x


def test_ordered_map_keeps_order_and_bounds_work_in_flight() -> None:
    pulled = []

    def source():
        for i in range(50):
            pulled.append(i)
            yield i

    results = parallel.ordered_map(square, source(), workers=2, inflight=4)
    assert next(results) == 0
    assert len(pulled) <= 5  # not drained up front: memory stays flat
    assert [0, *results] == [i * i for i in range(50)]
