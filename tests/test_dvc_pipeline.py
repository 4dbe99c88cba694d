"""Real `dvc repro` in fresh git repos made from the project's tracked files, offline (bundled local remote)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.integration


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "DO_NOT_TRACK": "1", "GIT_TERMINAL_PROMPT": "0"}
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def fresh_clone(dest: Path) -> Path:
    """The project's tracked files (as in a clone of main) in a new git repo: no data/, no build/."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    run(["git", "init", "-q"], dest)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A"], dest)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "clone"], dest)
    assert not (dest / "data").exists() and not (dest / "build").exists()
    return dest


def ran_stages(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")}


def tree_digest(root: Path, *parts: str) -> dict[str, str]:
    out = {}
    for part in parts:
        base = root / part
        for f in sorted([base] if base.is_file() else base.rglob("*")):
            if f.is_file():
                out[str(f.relative_to(root))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


TRACKED = ("dvc.lock", "build/dataset.parquet", "build/splits", "build/export", "reports")


@pytest.fixture(scope="module")
def repro_clone(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    clone = fresh_clone(tmp_path_factory.mktemp("clone-a"))
    run(["dvc", "pull", "-q", "data.dvc"], clone)
    return clone, run(["dvc", "repro"], clone).stdout


def test_fresh_clone_pulls_offline_and_runs_every_stage(repro_clone: tuple[Path, str]) -> None:
    clone, output = repro_clone
    stages = ran_stages(output)
    providers = ("openai", "anthropic", "gemini", "huggingface")
    # build/ is not in git, so those stages must run; the reports are committed, and DVC rightly skips a stage
    # whose deps and committed outputs already match dvc.lock.
    assert {"ingest", "split"} | {f"export@{p}" for p in providers} <= stages
    assert "up to date" in run(["dvc", "status"], clone).stdout
    ingest = json.loads((clone / "reports/ingest.json").read_text())
    assert ingest["kept"] >= 200 and ingest["duplicates"] > 0 and ingest["rejected"] > 0
    assert all(r["source"].startswith("data/broken.jsonl:") for r in ingest["rejects"])
    for p in providers:
        assert json.loads((clone / f"reports/validation/{p}.json").read_text())["ok"], p
    plan = json.loads((clone / "reports/finetune/openai.json").read_text())
    assert plan["submitted"] is False and plan["job"] is None and len(plan["job_key"]) == 32
    assert not (clone / "models").exists()  # a plan spends nothing and records no job


def test_pulled_sample_data_is_what_the_generator_writes(repro_clone: tuple[Path, str], tmp_path: Path) -> None:
    clone, _ = repro_clone
    subprocess.run([sys.executable, str(ROOT / "scripts/make_sample_data.py"), "--out", str(tmp_path)], check=True)
    assert tree_digest(tmp_path, ".") == tree_digest(clone / "data", ".")


def test_second_repro_does_nothing(repro_clone: tuple[Path, str]) -> None:
    clone, _ = repro_clone
    before = tree_digest(clone, *TRACKED)
    r = run(["dvc", "repro"], clone)
    assert ran_stages(r.stdout) == set()
    assert tree_digest(clone, *TRACKED) == before
    assert "up to date" in run(["dvc", "status"], clone).stdout


def test_two_clones_produce_byte_identical_outputs(repro_clone: tuple[Path, str], tmp_path: Path) -> None:
    clone_a, _ = repro_clone
    clone_b = fresh_clone(tmp_path)
    run(["dvc", "pull", "-q", "data.dvc"], clone_b)
    run(["dvc", "repro"], clone_b)
    assert tree_digest(clone_b, *TRACKED) == tree_digest(clone_a, *TRACKED)


def test_changing_the_seed_reruns_split_and_below_only(tmp_path: Path, repro_clone: tuple[Path, str]) -> None:
    clone_a, _ = repro_clone
    clone = fresh_clone(tmp_path)
    shutil.copytree(clone_a / "data", clone / "data")
    shutil.copytree(clone_a / ".dvc" / "cache", clone / ".dvc" / "cache")
    run(["dvc", "checkout", "-q"], clone, check=False)
    assert ran_stages(run(["dvc", "repro"], clone).stdout) == set()  # same inputs: outputs come from the cache
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["split"]["seed"] += 1
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stages = ran_stages(run(["dvc", "repro"], clone).stdout)
    assert "ingest" not in stages and "split" in stages
    assert {s.split("@")[0] for s in stages} == {"split", "export", "quality", "validate", "finetune", "evaluate"}
