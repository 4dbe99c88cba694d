"""Measure throughput and peak memory of the pipeline against the naive in-memory baseline.

    python benchmarks/run.py 10000 100000 1000000 [--skip-naive-above N]

Each step runs as its own process (as under `dvc repro`); its wall time and peak RSS come from os.wait4.
Results are appended to benchmarks/out/results.jsonl and printed as a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PROVIDERS = ("openai", "anthropic", "gemini")


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (MB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):  # validate exits 1 on data errors, which is a result
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    return elapsed, usage.ru_maxrss // 1024


def pipeline_steps(src: Path, work: Path) -> list[tuple[str, list[str]]]:
    ftlib = [sys.executable, "-m", "ftlib"]
    steps = [
        ("ingest", [*ftlib, "ingest", str(src), "--out", str(work / "dataset.parquet"),
                    "--report", str(work / "ingest.json")]),
        ("split", [*ftlib, "split", str(work / "dataset.parquet"), "--out", str(work / "splits"), "--seed", "42",
                   "--group-by", "group"]),
    ]
    for p in PROVIDERS:
        steps.append((f"export {p}", [*ftlib, "export", str(work / "splits"), "--provider", p,
                                      "--out", str(work / "export" / p), "--report", str(work / f"export-{p}.json")]))
    for p in PROVIDERS:
        steps.append((f"validate {p}", [*ftlib, "validate", str(work / "export" / p), "--provider", p,
                                        "--report", str(work / f"validation-{p}.json"),
                                        "--estimate", str(work / f"estimate-{p}.json")]))
    return steps


def run(n: int, naive: bool) -> dict:
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    env.setdefault("TIKTOKEN_CACHE_DIR", str(HERE.parent / "tests" / "data" / "tiktoken"))
    src = OUT / f"chat-{n}.jsonl"
    if not src.exists():
        subprocess.run([sys.executable, str(HERE / "generate.py"), str(n), str(src)], check=True)
    work = OUT / f"work-{n}"
    shutil.rmtree(work, ignore_errors=True)
    result: dict = {"n": n, "steps": {}, "machine": f"{platform.machine()} {os.cpu_count()} cores"}
    for name, cmd in pipeline_steps(src, work):
        secs, rss = measure(cmd, env)
        result["steps"][name] = {"seconds": round(secs, 2), "peak_rss_mb": rss}
        print(f"  n={n} {name}: {secs:.1f}s, {rss} MB", file=sys.stderr)
    result["pipeline_seconds"] = round(sum(s["seconds"] for s in result["steps"].values()), 2)
    result["pipeline_peak_rss_mb"] = max(s["peak_rss_mb"] for s in result["steps"].values())
    if naive:
        secs, rss = measure([sys.executable, str(HERE / "naive.py"), str(src), str(OUT / f"naive-{n}")], env)
        result["naive_seconds"], result["naive_peak_rss_mb"] = round(secs, 2), rss
        result["speedup"] = round(secs / result["pipeline_seconds"], 2)
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(OUT / f"naive-{n}", ignore_errors=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("sizes", nargs="+", type=int)
    ap.add_argument("--skip-naive-above", type=int, default=10**9)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.sizes:
        r = run(n, naive=n <= args.skip_naive_above)
        rows.append(r)
        with (OUT / "results.jsonl").open("ab") as fh:
            fh.write(orjson.dumps(r) + b"\n")
    print("| examples | pipeline s | examples/s | peak RSS MB | naive s | naive peak MB | speed-up |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']:,} | {r['pipeline_seconds']} | {r['n'] / r['pipeline_seconds']:,.0f} | "
              f"{r['pipeline_peak_rss_mb']} | {r.get('naive_seconds', '-')} | {r.get('naive_peak_rss_mb', '-')} | "
              f"{r.get('speedup', '-')} |")


if __name__ == "__main__":
    main()
