"""Measure throughput and peak memory of the pipeline against the naive in-memory baseline.

    python benchmarks/run.py 10000 100000 1000000 [--skip-naive-above N]

Each step runs as its own process (as under `dvc repro`): wall time, and peak memory as the PSS of the step's whole
process tree (its worker processes included), sampled every 50 ms.
Results are appended to benchmarks/out/results.jsonl and printed as a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson
import psutil

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PROVIDERS = ("openai", "anthropic", "gemini")


def tree_pss_mb(proc: psutil.Process) -> float:
    """Proportional set size of a process and all its descendants (forked workers share pages: PSS counts a
    shared page once in total, where summing RSS would count it once per process)."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += p.memory_full_info().pss
    return total / 2**20


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak memory (MB, PSS of the whole process tree, sampled every 50 ms) of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ps = psutil.Process(proc.pid)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, tree_pss_mb(ps))
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):  # validate exits 1 on data errors, which is a result
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    return elapsed, round(peak)


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
        secs, mem = measure(cmd, env)
        result["steps"][name] = {"seconds": round(secs, 2), "peak_mb": mem}
        print(f"  n={n} {name}: {secs:.1f}s, {mem} MB", file=sys.stderr)
    result["pipeline_seconds"] = round(sum(s["seconds"] for s in result["steps"].values()), 2)
    result["pipeline_peak_mb"] = max(s["peak_mb"] for s in result["steps"].values())
    if naive:
        secs, mem = measure([sys.executable, str(HERE / "naive.py"), str(src), str(OUT / f"naive-{n}")], env)
        result["naive_seconds"], result["naive_peak_mb"] = round(secs, 2), mem
        result["speedup"] = round(secs / result["pipeline_seconds"], 2)
        secs, mem = measure([sys.executable, str(HERE / "naive.py"), str(src), str(OUT / f"naive-{n}"),
                             "--fast-schema"], env)
        result["naive_fast_schema_seconds"], result["naive_fast_schema_peak_mb"] = round(secs, 2), mem
        result["speedup_vs_fast_schema"] = round(secs / result["pipeline_seconds"], 2)
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
    print("| examples | pipeline s | examples/s | peak MB (PSS) | naive s (MB) | speed-up | naive, fast schema s (MB) |"
          " speed-up |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']:,} | {r['pipeline_seconds']} | {r['n'] / r['pipeline_seconds']:,.0f} | "
              f"{r['pipeline_peak_mb']} | {r.get('naive_seconds', '-')} ({r.get('naive_peak_mb', '-')}) | "
              f"{r.get('speedup', '-')} | {r.get('naive_fast_schema_seconds', '-')} "
              f"({r.get('naive_fast_schema_peak_mb', '-')}) | {r.get('speedup_vs_fast_schema', '-')} |")


if __name__ == "__main__":
    main()
