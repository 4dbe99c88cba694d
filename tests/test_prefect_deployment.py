"""The deployment path for real: scripts/stack-up (Prefect server on 127.0.0.1, process work pool, `prefect deploy
--all`, a worker) in a temporary clone, `prefect deployment run ... --watch`, a worker killed mid-wait, and a plain
`dvc repro` in a second clone that must produce byte-identical tracked outputs. Takes 1-3 minutes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from unittest import mock

import psutil
import pytest
import yaml
from emulators.moto_server import aws_env, make_bucket, moto_server, reset
from emulators.openai_server import OpenAIEmulator
from test_flows import BIN, REGION, BedrockFinisher, commit_all, make_clone, read, sh

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
TRACKED = ("dvc.lock", "build/export", "reports", "models")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_bytes(root: Path, rel: str) -> dict[str, bytes]:
    path = root / rel
    if path.is_file():
        return {rel: path.read_bytes()}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


class Stack:
    """scripts/stack-up and stack-down for one clone, plus the Prefect CLI pointed at its server."""

    def __init__(self, repo: Path, env: dict[str, str]) -> None:
        self.repo = repo
        self.port = free_port()
        self.env = {
            **env, "FTLIB_PREFECT_PORT": str(self.port), "VENV": str(BIN.parent),
            "PREFECT_HOME": str(repo / ".prefect-local" / "home"),
            "PREFECT_API_URL": f"http://127.0.0.1:{self.port}/api",
            "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_UI_ENABLED": "false",
        }
        self.started: set[int] = set()

    def _pid(self, name: str) -> int | None:
        path = self.repo / ".prefect-local" / f"{name}.pid"
        return int(path.read_text()) if path.exists() else None

    def up(self) -> None:
        proc = subprocess.run([str(self.repo / "scripts" / "stack-up")], cwd=self.repo, env=self.env,
                              capture_output=True, text=True, timeout=240)
        for name in ("server", "worker"):
            if (pid := self._pid(name)) is not None:
                self.started.add(pid)
        assert proc.returncode == 0, f"stack-up failed:\n{proc.stdout}\n{proc.stderr}"

    def prefect(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "prefect"), *args], cwd=self.repo, env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def run_deployment(self, name: str, *, watch: bool = True) -> subprocess.Popen[str]:
        args = [str(BIN / "prefect"), "deployment", "run", name, *(["--watch"] if watch else [])]
        return subprocess.Popen(args, cwd=self.repo, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def kill_worker(self) -> None:
        """What a crashed machine does to the worker and the flow run it spawned (in its own session)."""
        pid = self._pid("worker")
        assert pid is not None
        kill_tree(pid)

    def down(self) -> None:
        subprocess.run([str(self.repo / "scripts" / "stack-down")], cwd=self.repo, env=self.env,
                       capture_output=True, text=True, timeout=60)
        for pid in self.started:  # whatever stack-down could not reach (e.g. a failed start)
            kill_tree(pid)


def kill_tree(pid: int) -> None:
    try:
        parent = psutil.Process(pid)
        procs = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        with suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGKILL)
    psutil.wait_procs(procs, timeout=10)


def finish(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid)
        out, _ = proc.communicate()
        pytest.fail(f"deployment run did not finish in {timeout} s:\n{out[-4000:]}")
    return proc.returncode, out


@contextmanager
def emulators() -> Iterator[tuple[OpenAIEmulator, dict[str, str]]]:
    with OpenAIEmulator() as openai_emu, moto_server() as moto_url, BedrockFinisher():
        with mock.patch.dict(os.environ, aws_env(moto_url)):
            make_bucket("ftlib-flows", REGION)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PREFECT_"))}
        yield openai_emu, {**env, **openai_emu.env(), **aws_env(moto_url), "DO_NOT_TRACK": "1",
                           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DVC_NO_ANALYTICS": "1"}
        reset(moto_url)


def test_deployment_completes_survives_a_killed_worker_and_matches_plain_dvc(tmp_path: Path) -> None:
    repo = make_clone(tmp_path / "prefect", submit=True)
    with emulators() as (openai_emu, env):
        stack = Stack(repo, env)
        try:
            stack.up()
            code, out = finish(stack.run_deployment("finetune-pipeline/local"), timeout=300)
            assert code == 0, out[-4000:]
            index = read(repo / "models" / "registry.json")
            models = {p: e["model_id"] for entry in index.values() for p, e in entry.items()}
            assert set(models) == {"openai", "anthropic"} and all(models.values()), index
            assert "up to date" in sh(repo, str(BIN / "dvc"), "status")
            prefect_outputs = {rel: tree_bytes(repo, rel) for rel in TRACKED}
            commit_all(repo, "models", "dvc.lock", "reports", "models")

            # A worker killed while waiting: the job keeps running; a new worker's run waits on the same job.
            params = yaml.safe_load((repo / "params.yaml").read_text())
            params["finetune"]["openai"]["attempt"] = 1
            (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            commit_all(repo, "train again", "params.yaml")
            openai_emu.auto_advance = False  # the new job stays validating_files until we say so
            watcher = stack.run_deployment("finetune-models/local", watch=False)
            finish(watcher, timeout=60)
            deadline = time.monotonic() + 180
            while not (len(openai_emu.jobs) == 2 and _polled(openai_emu, max(openai_emu.jobs))):
                assert time.monotonic() < deadline, "the flow never reached the wait"
                time.sleep(0.2)
            stack.kill_worker()
            stack.up()  # server kept, dead worker replaced
            openai_emu.auto_advance = True
            code, out = finish(stack.run_deployment("finetune-pipeline/local"), timeout=300)
            assert code == 0, out[-4000:]
            keys = Counter((j.get("metadata") or {}).get("ftlib_job_key") for j in openai_emu.jobs.values())
            assert len(keys) == 2 and set(keys.values()) == {1}, keys  # one provider job per key, never two
            assert openai_emu.create_attempts == 2
            records = [r for r in read(repo / "models" / "registry.json").values() if "openai" in r]
            assert any(r["openai"]["job_id"] == max(openai_emu.jobs) and r["openai"]["model_id"] for r in records)
            assert "up to date" in sh(repo, str(BIN / "dvc"), "status")
        finally:
            stack.down()

    # The same pipeline through plain `dvc repro` in a second clone, against fresh emulators.
    plain = make_clone(tmp_path / "plain", submit=True)
    with emulators() as (_, env):
        proc = subprocess.run([str(BIN / "dvc"), "repro"], cwd=plain, env={**env, "PATH": f"{BIN}:{env['PATH']}"},
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for rel in TRACKED:
        assert tree_bytes(plain, rel) == prefect_outputs[rel], f"{rel} differs between Prefect and plain dvc repro"


def _polled(emu: OpenAIEmulator, job_id: str) -> bool:
    return sum(1 for method, path in emu.requests if method == "GET" and path.endswith(f"/jobs/{job_id}")) >= 1
