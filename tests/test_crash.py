"""kill -9 at seeded random moments of ingest, split, export and validate, each a real `ftlib` process with worker
processes, on a few thousand examples.

Each trial starts from the previous run's outputs (made from other data, so old and new bytes differ), kills the
stage, and checks what a user would: every output is the previous one, the complete new one, or absent, never a
mix inside one stage; no worker process outlives the stage; the re-run gives the reference bytes. Repeat with
other points: FTLIB_CRASH_SEED=<n> FTLIB_CRASH_KILLS=<k> pytest tests/test_crash.py.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import psutil
import pytest

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("FTLIB_CRASH_SEED", "20261129"))
KILLS = int(os.environ.get("FTLIB_CRASH_KILLS", "3"))
N_NEW, N_OLD = 5000, 3000
WORDS = ("invoice", "refund", "account", "payment", "export", "settings", "key", "team", "plan", "billing", "report",
         "tax", "currency", "customer")


def _lines(n: int, salt: str) -> bytes:
    rng = random.Random(f"{salt}-{n}")
    out = []
    for i in range(n):
        q = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30)))
        a = " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 60)))
        out.append(orjson.dumps({"messages": [
            {"role": "system", "content": "You are Ledgerly's support assistant."},
            {"role": "user", "content": f"Q{i} {salt}: {q}?"},
            {"role": "assistant", "content": f"A{i}: {a}."}]}))
        if i % 997 == 5:
            out.append(b'{"messages": [{"role": "user"')  # a broken line: the report lists it
    return b"\n".join(out) + b"\n"


@dataclass(frozen=True)
class Stage:
    name: str
    args: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


STAGES = (
    Stage("ingest", ("ingest", "data.jsonl", "--out", "dataset.parquet", "--report", "ingest.json"),
          ("data.jsonl",), ("dataset.parquet", "ingest.json")),
    Stage("split", ("split", "dataset.parquet", "--out", "splits", "--seed", "3"),
          ("dataset.parquet",), ("splits",)),
    Stage("export", ("export", "splits", "--provider", "openai", "--out", "export", "--report", "export.json"),
          ("splits",), ("export", "export.json")),
    Stage("validate", ("validate", "export", "--provider", "openai", "--report", "validation.json",
                       "--estimate", "estimate.json"),
          ("export",), ("validation.json", "estimate.json")),
)


def _env() -> dict[str, str]:
    return {**os.environ, "FTLIB_WORKERS": "2", "DO_NOT_TRACK": "1",
            "TIKTOKEN_CACHE_DIR": os.environ.get("TIKTOKEN_CACHE_DIR", str(Path(__file__).parent / "data/tiktoken"))}


def _start(ws: Path, stage: Stage) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "ftlib", *stage.args], cwd=ws, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _run(ws: Path, stage: Stage) -> float:
    t0 = time.monotonic()
    proc = _start(ws, stage)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 1) if stage.name == "validate" else proc.returncode == 0, err.decode()
    return time.monotonic() - t0


def snapshot(root: Path, rel: str) -> dict[str, bytes] | None:
    """The visible bytes of one output (a file or a folder), or None when it is absent."""
    path = root / rel
    if path.is_file():
        return {rel: path.read_bytes()}
    if path.is_dir():
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(path.rglob("*"))
                if p.is_file() and not p.name.startswith(".")}
    return None


def _copy(src: Path, dst: Path, rel: str) -> None:
    if (src / rel).is_dir():
        shutil.copytree(src / rel, dst / rel)
    elif (src / rel).exists():
        shutil.copy2(src / rel, dst / rel)


@dataclass
class World:
    old: Path  # every stage's outputs from the older, smaller data
    new: Path  # the reference run on the new data
    seconds: dict[str, float]
    outputs: dict[str, tuple[str, ...]]  # what each stage wrote in the reference run (its declared outputs and more)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("crash")
    old, new = root / "old", root / "new"
    old.mkdir()
    new.mkdir()
    (old / "data.jsonl").write_bytes(_lines(N_OLD, "old"))
    (new / "data.jsonl").write_bytes(_lines(N_NEW, "new"))
    seconds, outputs = {}, {}
    for stage in STAGES:
        _run(old, stage)
        before = {p.name for p in new.iterdir()}
        seconds[stage.name] = _run(new, stage)
        outputs[stage.name] = tuple(sorted({*stage.outputs, *({p.name for p in new.iterdir()} - before)}))
    return World(old, new, seconds, outputs)


def _workspace(world: World, stage: Stage, dest: Path) -> Path:
    """The previous outputs of this stage, beside the new inputs it reads."""
    dest.mkdir(parents=True)
    for rel in world.outputs[stage.name]:
        _copy(world.old, dest, rel)
    for rel in stage.inputs:
        _copy(world.new, dest, rel)
    return dest


def _stray_processes(ws: Path) -> list[psutil.Process]:
    """Processes whose command line names this workspace: forked workers keep their parent's arguments and cwd."""
    found = []
    for p in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if p.info["cwd"] == str(ws) and any("ftlib" in a for a in p.info["cmdline"] or []):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _wait_gone(ws: Path, timeout: float = 5.0) -> list[psutil.Process]:
    end = time.monotonic() + timeout
    while (left := _stray_processes(ws)) and time.monotonic() < end:
        time.sleep(0.05)
    return left


def _kill_points(stage: Stage, seconds: float) -> Iterator[float]:
    rng = random.Random(f"{SEED}-{stage.name}")
    for _ in range(KILLS):
        yield rng.uniform(0.25, 1.05) * seconds


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_kill_9_leaves_previous_or_complete_outputs_and_no_workers(world: World, stage: Stage,
                                                                   tmp_path: Path) -> None:
    outputs = world.outputs[stage.name]
    old = {rel: snapshot(world.old, rel) for rel in outputs}
    new = {rel: snapshot(world.new, rel) for rel in outputs}
    assert all(old[rel] != new[rel] for rel in stage.outputs), "the test needs old and new outputs to differ"
    killed_mid_run = 0
    for i, delay in enumerate(_kill_points(stage, world.seconds[stage.name])):
        ws = _workspace(world, stage, tmp_path / f"trial{i}")
        proc = _start(ws, stage)
        try:
            proc.wait(delay)
        except subprocess.TimeoutExpired:
            killed_mid_run += 1
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        proc.stderr.close()  # type: ignore[union-attr]
        assert not _wait_gone(ws), f"{stage.name}: a worker outlived the killed stage (trial {i}, {delay:.2f}s)"

        seen = {rel: snapshot(ws, rel) for rel in outputs}
        sides = set()
        for rel in outputs:
            if seen[rel] == old[rel] == new[rel]:
                continue  # the same bytes either way: says nothing about which run left it
            if seen[rel] is None:
                sides.add("none")
            elif seen[rel] == old[rel]:
                sides.add("old")
            else:
                assert seen[rel] == new[rel], f"{stage.name}: {rel} is partial after kill -9 at {delay:.2f}s"
                sides.add("new")
        assert len(sides) <= 1, f"{stage.name}: outputs mix {sides} after kill -9 at {delay:.2f}s (trial {i})"
        visible = {p.name for p in ws.iterdir() if not p.name.startswith(".")}
        assert visible <= {*stage.inputs, *outputs}, f"{stage.name}: unexpected files {visible}"

        _run(ws, stage)  # the re-run after the crash
        assert {rel: snapshot(ws, rel) for rel in outputs} == new, f"{stage.name}: re-run differs"
        leftovers = [p.name for p in ws.iterdir() if p.name.startswith(".")]
        assert leftovers == [], f"{stage.name}: temp files left after the re-run: {leftovers}"
    print(f"{stage.name}: {killed_mid_run}/{KILLS} kills landed mid-run (stage takes {world.seconds[stage.name]:.2f}s)")
    assert killed_mid_run >= 1


def test_workers_die_with_a_killed_stage(world: World, tmp_path: Path) -> None:
    """The moment workers exist, kill -9 the stage: the kernel takes the workers down too."""
    stage = STAGES[0]
    ws = _workspace(world, stage, tmp_path / "ws")
    proc = _start(ws, stage)
    parent = psutil.Process(proc.pid)
    end = time.monotonic() + 60
    while not parent.children() and proc.poll() is None:
        assert time.monotonic() < end
        time.sleep(0.005)
    children = parent.children(recursive=True)
    assert children, "ingest finished before starting workers: use more lines"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    proc.stderr.close()  # type: ignore[union-attr]
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == [], f"{len(alive)} worker(s) still running 5 s after kill -9 of their stage"


@pytest.mark.parametrize("splits", ["missing", "empty"])
def test_export_from_a_missing_or_empty_folder_keeps_the_export(world: World, tmp_path: Path, splits: str) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    _copy(world.new, ws, "export")
    _copy(world.new, ws, "export.json")
    if splits == "empty":
        (ws / "splits").mkdir()
    before = snapshot(ws, "export"), snapshot(ws, "export.json")
    proc = subprocess.run([sys.executable, "-m", "ftlib", "export", "splits", "--provider", "openai", "--out", "export",
                           "--report", "export.json"], cwd=ws, env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "splits" in lines[0] and "ftlib split" in lines[0]
    assert (snapshot(ws, "export"), snapshot(ws, "export.json")) == before
