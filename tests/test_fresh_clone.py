"""A fresh clone works the standard ways: `git clone` then `dvc pull` exits 0 with every output of the committed
sample run, `dvc status` finds nothing to do, and every file the README points at exists.

These check what is committed (a clone of HEAD), which is what a user gets. After changing pipeline code, run
scripts/refresh-sample-remote and commit dvc.lock, reports/, models/ and dvc-store/ with the change.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "DO_NOT_TRACK": "1"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("fresh") / "ftlib"
    assert _run(ROOT, "git", "clone", "-q", str(ROOT), str(dest)).returncode == 0
    return dest


def test_dvc_pull_exits_0_and_the_pipeline_is_up_to_date(clone: Path) -> None:
    pulled = _run(clone, str(BIN / "dvc"), "pull")
    assert pulled.returncode == 0, (pulled.stdout + pulled.stderr)[-3000:] + \
        "\nfix: run scripts/refresh-sample-remote and commit dvc.lock, reports/, models/ and dvc-store/"
    status = _run(clone, str(BIN / "dvc"), "status")
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout[-3000:]


def test_every_file_the_readme_points_at_exists(clone: Path) -> None:
    readme = (clone / "README.md").read_text()
    links = {m for m in re.findall(r"\]\(([^)#\s]+)\)", readme) if "://" not in m and not m.startswith("mailto:")}
    named = set(re.findall(r"(?<![\w/.-])([\w.-]+\.md)\b", readme))  # PROVIDERS.md, TRAINING.md, ...
    missing = sorted(p for p in links | named if not (clone / p).exists() and not list(clone.rglob(Path(p).name)))
    assert missing == [], f"README points at files a clone does not have: {missing}"


def test_the_standard_prefect_route_completes_from_the_project_folder(tmp_path: Path) -> None:
    """`prefect server start`, `prefect work-pool create local --type process`, `prefect deploy --all` and
    `prefect worker start --pool local` from the project folder, then `prefect deployment run ... --watch`: no
    variable to set (the pull step records the folder `prefect deploy` ran in)."""
    from emulators.prefect_server import QUIET, prefect_server

    repo = tmp_path / "ftlib"
    assert _run(ROOT, "git", "clone", "-q", str(ROOT), str(repo)).returncode == 0
    assert _run(repo, str(BIN / "dvc"), "pull", "-q", "data.dvc").returncode == 0
    with prefect_server(tmp_path / "server-home") as api:
        env = {k: v for k, v in os.environ.items() if k != "FTLIB_PROJECT_DIR"}
        env.update(QUIET, PREFECT_API_URL=api, PREFECT_HOME=str(tmp_path / "home"), DVC_NO_ANALYTICS="1",
                   PATH=f"{BIN}{os.pathsep}{env['PATH']}", PREFECT_WORKER_QUERY_SECONDS="1")
        env.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT / "tests" / "data" / "tiktoken"))  # offline here only

        def prefect(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
            return subprocess.run([str(BIN / "prefect"), *args], cwd=repo, env=env, capture_output=True, text=True,
                                  timeout=timeout)

        assert prefect("work-pool", "create", "local", "--type", "process").returncode == 0
        deployed = prefect("deploy", "--all")
        assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
        inspect = json.loads(prefect("deployment", "inspect", "finetune-pipeline/local", "--output", "json").stdout)
        assert inspect["pull_steps"] == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(repo)}}]
        worker = subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", "local"], cwd=repo, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            run = prefect("deployment", "run", "finetune-pipeline/local", "--watch", timeout=900)
        finally:
            os.killpg(worker.pid, 15)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, 9)
                worker.wait(10)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Completed" in run.stdout
    status = _run(repo, str(BIN / "dvc"), "status")
    assert "up to date" in status.stdout, status.stdout[-2000:]
