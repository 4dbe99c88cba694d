"""ftlib against the public tools on the same job, both in one run; prints the speed and memory ratios.

    python benchmarks/run.py 100000 [1000000 ...] [--repeat 3] [--no-tools] [--keep]

The job: N synthetic OpenAI chat examples (benchmarks/generate.py) -> load, validate, seeded 75/25 split, export
train and validation JSONL for OpenAI, Claude/Bedrock and Gemini, and OpenAI token counts with billed tokens and
epochs for the train file.

- Public tools (benchmarks/public_tools.py, in their own venv benchmarks/out/tools-venv, created here with
  `pip install ractogateway tiktoken numpy`): the seed library ractogateway's RactoDataset for load, validate,
  split and export, then the token counting of OpenAI's cookbook data-prep guide (tiktoken o200k_base).
- ftlib: every data stage of dvc.yaml (ingest, split, export@P, validate@P for the three providers), each as
  its own shell process in a work folder laid out like the project, as `dvc repro` runs them.

Time is wall-clock seconds (ftlib: the sum of its stages, which DVC runs one after another), from runs that are not
sampled for memory (with --repeat K, the median of K runs, both sides alternating); memory is the peak PSS of the
whole process tree (worker processes included), sampled every 20 ms in one more run of each side. Each run appends
a JSON line to benchmarks/out/results.jsonl. This is a script, not a test: nothing here runs in the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psutil
from stages import measure, run_stages

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
TOOLS_VENV = OUT / "tools-venv"
TOOLS_PACKAGES = ("ractogateway", "tiktoken", "numpy")  # numpy: the cookbook guide imports it for its statistics


def bench_env() -> dict[str, str]:
    env = {**os.environ, "DO_NOT_TRACK": "1", "DVC_NO_ANALYTICS": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "HF_HUB_OFFLINE": "1"}
    env.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT / "tests" / "data" / "tiktoken"))  # o200k_base, offline
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # this venv's `ftlib`
    return env


def tools_python() -> Path:
    """The public tools' own venv (never ftlib's: their dependencies must not leak into either side)."""
    python = TOOLS_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(TOOLS_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *TOOLS_PACKAGES], check=True)
    return python


def tools_versions(python: Path) -> dict[str, str]:
    code = ("import importlib.metadata as m, json; "
            f"print(json.dumps({{p: m.version(p) for p in {list(TOOLS_PACKAGES)!r}}}))")
    return json.loads(subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True).stdout)


def source_file(n: int) -> Path:
    src = OUT / f"chat-{n}.jsonl"
    if not src.exists():
        subprocess.run([sys.executable, str(HERE / "generate.py"), str(n), str(src)], check=True)
    return src


def run_ftlib(src: Path, work: Path, env: dict[str, str], memory: bool) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    (work / "data").mkdir(parents=True)
    os.link(src, work / "data" / src.name)  # the stages read data/ as under dvc repro
    steps = run_stages(ROOT, work, env, memory=memory)
    estimate = orjson.loads((work / "reports" / "estimate" / "openai.json").read_bytes())
    return {"steps": steps, "seconds": round(sum(s["seconds"] for s in steps.values()), 2),
            "cpu_seconds": round(sum(s["cpu_seconds"] for s in steps.values()), 2),
            "peak_mb": max(s["peak_mb"] for s in steps.values()) if memory else None,
            "train_tokens": next(iter(estimate.values()))["tokens"]["total"]}


def run_tools(python: Path, src: Path, out: Path, env: dict[str, str], memory: bool, tokens: bool = True) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(python), "-P", str(HERE / "public_tools.py"), str(src), str(out), *([] if tokens else ["--no-tokens"])]
    secs, mem, stdout, cpu = measure(cmd, env, memory=memory)
    return {"seconds": round(secs, 2), "peak_mb": mem, "cpu_seconds": round(cpu, 2), "result": json.loads(stdout)}


def timed_with_memory(timed: list[dict], sampled: dict) -> dict:
    """The timing run with the median wall time (every run's wall seconds alongside), with the peak memory of the
    separate sampled run (per stage too)."""
    ordered = sorted(timed, key=lambda r: r["seconds"])
    out = {**ordered[(len(ordered) - 1) // 2], "runs_seconds": [r["seconds"] for r in timed],
           "peak_mb": sampled["peak_mb"], "sampled_run_seconds": sampled["seconds"]}
    if "steps" in out:
        out["steps"] = {k: {**v, "peak_mb": sampled["steps"][k]["peak_mb"]} for k, v in out["steps"].items()}
    return out


def machine() -> str:
    return (f"{platform.machine()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sizes", nargs="+", type=int)
    ap.add_argument("--no-tools", action="store_true", help="ftlib only (quick profiling runs)")
    ap.add_argument("--tools-without-tokens", action="store_true",
                    help="also time the public tools without the cookbook's token counting")
    ap.add_argument("--keep", action="store_true", help="keep the work folders under benchmarks/out/")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run both sides this many times, alternating, and keep each side's median run (wall time "
                         "on a shared machine varies by +-20%% from run to run)")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    env = bench_env()
    python = None if args.no_tools else tools_python()
    versions = tools_versions(python) if python else {}
    rows = []
    for n in args.sizes:
        src = source_file(n)
        print(f"n={n:,}", flush=True)
        row: dict = {"n": n, "date": datetime.now(UTC).strftime("%Y-%m-%d"), "machine": machine(),
                     "workers": env.get("FTLIB_WORKERS", "default"), "tools_versions": versions}
        work = OUT / f"work-{n}"
        tools_out = OUT / f"tools-{n}"
        ftlib_runs, tools_runs = [], []
        # Timing runs are not sampled for memory (stages.measure says why); one more run of each side measures it.
        for i in range(max(1, args.repeat) + 1):  # alternating, so a slow spell of the machine hits both sides
            memory = i == max(1, args.repeat)
            label = "memory run" if memory else "timing run"
            ftlib_runs.append(run_ftlib(src, work, env, memory))
            print(f"  ftlib ({label}): {ftlib_runs[-1]['seconds']} s, {ftlib_runs[-1]['peak_mb'] or '-'} MB, "
                  f"{ftlib_runs[-1]['cpu_seconds']} CPU s", flush=True)
            if python:
                tools_runs.append(run_tools(python, src, tools_out, env, memory))
                print(f"  public tools ({label}): {tools_runs[-1]['seconds']} s, {tools_runs[-1]['peak_mb'] or '-'} "
                      f"MB, {tools_runs[-1]['cpu_seconds']} CPU s", flush=True)
        row["ftlib"] = timed_with_memory(ftlib_runs[:-1], ftlib_runs[-1])
        if python:
            row["tools"] = timed_with_memory(tools_runs[:-1], tools_runs[-1])
            if args.tools_without_tokens:
                row["tools_no_tokens"] = run_tools(python, src, tools_out, env, memory=True, tokens=False)
                print(f"  public tools without token counts: {row['tools_no_tokens']['seconds']} s, "
                      f"{row['tools_no_tokens']['peak_mb']} MB", flush=True)
            row["speedup"] = round(row["tools"]["seconds"] / row["ftlib"]["seconds"], 2)
            if not args.keep:
                shutil.rmtree(tools_out, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        rows.append(row)
        with (OUT / "results.jsonl").open("ab") as fh:
            fh.write(orjson.dumps(row) + b"\n")
    print(f"\nMachine: {rows[0]['machine']}; public tools: "
          f"{', '.join(f'{k} {v}' for k, v in versions.items()) or 'not run'}\n")
    print("| examples | public tools s | public tools CPU s | public tools peak MB | ftlib s | ftlib CPU s |"
          " ftlib peak MB | ftlib examples/s | speed-up |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        t = r.get("tools", {})
        print(f"| {r['n']:,} | {t.get('seconds', '-')} | {t.get('cpu_seconds', '-')} | {t.get('peak_mb', '-')} | "
              f"{r['ftlib']['seconds']} | {r['ftlib']['cpu_seconds']} | {r['ftlib']['peak_mb']} | "
              f"{r['n'] / r['ftlib']['seconds']:,.0f} | "
              f"{str(r['speedup']) + 'x' if 'speedup' in r else '-'} |")
    for r in rows:
        print(f"\nftlib stages at {r['n']:,}: " + ", ".join(
            f"{k} {v['seconds']} s ({v['peak_mb']} MB, {v['cpu_seconds']} CPU s)"
            for k, v in r["ftlib"]["steps"].items()))


if __name__ == "__main__":
    main()
