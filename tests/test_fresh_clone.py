"""A fresh clone works the standard ways: `git clone` then `dvc pull` exits 0 with every output of the committed
sample run, `dvc status` finds nothing to do, and every file the README points at exists.

These check what is committed (a clone of HEAD), which is what a user gets. After changing pipeline code, run
scripts/refresh-sample-remote and commit dvc.lock, reports/, models/ and dvc-store/ with the change.
"""

from __future__ import annotations

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
