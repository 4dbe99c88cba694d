"""Shared by the benchmark scripts: dvc.yaml's data stages as shell commands, and timing with peak PSS.

The commands come from a tree's own dvc.yaml and params.yaml (interpolated the way DVC does for these files),
so the benchmark runs exactly what `dvc repro` runs, stage by stage, each as its own process.
"""

from __future__ import annotations

import compileall
import contextlib
import re
import resource
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

PROVIDERS = ("openai", "anthropic", "gemini")  # the three the public tools also write
# The stages of the job both sides do (load, check, split, write per provider, validate with token counts).
# Others in dvc.yaml (quality analysis, finetune, evaluate) do work the public tools have no counterpart for.
JOB_STAGES = ("ingest", "split", "export", "validate")
_VAR = re.compile(r"\$\{([^}]+)\}")


def _lookup(ctx: dict[str, Any], dotted: str) -> Any:
    value: Any = ctx
    for part in dotted.strip().split("."):
        value = value[part]
    return value


def _interpolate(text: str, ctx: dict[str, Any]) -> str:
    def value(m: re.Match[str]) -> str:
        v = _lookup(ctx, m.group(1))
        if isinstance(v, bool):
            return str(v).lower()
        return str(v)

    return _VAR.sub(value, text)


def bench_params(tree: Path) -> dict[str, Any]:
    """The tree's params.yaml with `providers` cut down to the three the public tools handle."""
    params = yaml.safe_load((tree / "params.yaml").read_text())
    params["providers"] = {k: v for k, v in params["providers"].items() if k in PROVIDERS}
    return params


def stage_commands(tree: Path, params: dict[str, Any]) -> list[tuple[str, str]]:
    """(stage name, shell command) for each stage of the job in tree/dvc.yaml, in file order (topological)."""
    spec = yaml.safe_load((tree / "dvc.yaml").read_text())
    out: list[tuple[str, str]] = []
    for name, stage in spec["stages"].items():
        if name not in JOB_STAGES:
            continue
        if "foreach" in stage:
            items = _interpolate_value(stage["foreach"], params)
            pairs = items.items() if isinstance(items, dict) else ((i, i) for i in items)
            for key, item in pairs:
                ctx = {**params, "key": key, "item": item}
                out.append((f"{name}@{key}", _interpolate(" ".join(stage["do"]["cmd"].split()), ctx)))
        else:
            out.append((name, _interpolate(" ".join(stage["cmd"].split()), params)))
    return out


def _interpolate_value(value: Any, ctx: dict[str, Any]) -> Any:
    if isinstance(value, str) and (m := _VAR.fullmatch(value.strip())):
        return _lookup(ctx, m.group(1))
    return value


def tree_pss_mb(proc: psutil.Process) -> float:
    """Proportional set size of a process and all its descendants (forked workers share pages: PSS counts a
    shared page once in total, where summing RSS would count it once per process)."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += p.memory_full_info().pss
    return total / 2**20


def cpu_of_children() -> float:
    """User + system seconds of every finished child process and its descendants (what a stage cost in CPU,
    which contention from other processes on the machine does not inflate the way it inflates wall time)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(cmd: str | list[str], env: dict[str, str], cwd: Path | None = None,
            ok_codes: tuple[int, ...] = (0,), memory: bool = True) -> tuple[float, int | None, bytes, float]:
    """Wall seconds, peak memory (MB, PSS of the whole process tree, sampled every 20 ms; None when memory=False),
    stdout and CPU seconds of one command. A string runs through the shell, as DVC runs a stage's cmd.

    Sampling PSS is not free: the kernel walks every page table, ~10 ms per process of ftlib's size, so sampling a
    parent and two workers every 20 ms takes most of a core from a 2-core machine (and more from a command that uses
    both cores than from one that uses one). Timing runs therefore pass memory=False; memory comes from its own run.
    """
    cpu0 = cpu_of_children()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, shell=isinstance(cmd, str),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak: float | None = None
    if memory:
        ps = psutil.Process(proc.pid)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, tree_pss_mb(ps))
            time.sleep(0.02)
    stdout, stderr = proc.communicate()
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok_codes:
        raise SystemExit(f"{cmd} failed with exit {proc.returncode}:\n{stderr.decode()[-3000:]}")
    return elapsed, None if peak is None else round(peak), stdout, cpu_of_children() - cpu0


def compile_tree(tree: Path) -> None:
    """Byte-compile the tree's ftlib as `pip install` does for an installed package (and as the public tools' venv
    has it): an editable checkout under PYTHONDONTWRITEBYTECODE would otherwise compile ~80 modules from source in
    every stage process, ~0.1 s each that no installed ftlib pays."""
    compileall.compile_dir(tree / "ftlib", quiet=1)


def run_stages(tree: Path, work: Path, env: dict[str, str], params: dict[str, Any] | None = None,
               ftlib: str = "ftlib", verbose: bool = True, memory: bool = True) -> dict[str, dict[str, Any]]:
    """Run tree's data stages in `work` (which holds data/ and receives params.yaml, build/ and reports/)."""
    params = params if params is not None else bench_params(tree)
    compile_tree(tree)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    steps: dict[str, dict[str, float]] = {}
    for name, cmd in stage_commands(tree, params):
        if ftlib != "ftlib" and cmd.startswith("ftlib "):
            cmd = ftlib + cmd[len("ftlib"):]
        # validate exits 1 when the data has errors: that is a result, not a failure of the run
        secs, mem, _, cpu = measure(cmd, env, cwd=work, ok_codes=(0, 1) if name.startswith("validate") else (0,),
                                    memory=memory)
        steps[name] = {"seconds": round(secs, 2), "peak_mb": mem, "cpu_seconds": round(cpu, 2)}
        if verbose:
            print(f"    {name}: {secs:.2f} s, {'-' if mem is None else mem} MB, {cpu:.2f} CPU s", flush=True)
    return steps
