"""Races: two submitters of one job key, and two writers of one output, started at the same moment, many times.

Two submitters with separate ledgers (two clones, or two machines) and no shared lease: OpenAI and Vertex have no
idempotency key, so both may create a job; the reconciliation after create keeps the oldest job for the key and
cancels the other before it trains, so exactly one job is not cancelled, every trial, and both ledgers name it.
Bedrock refuses a second job with the key's name. Where a lease is shared (the lock file beside the ledger for
processes with different TMPDIRs, an object created only if absent in the S3 DVC remote on moto, a Prefect global
concurrency limit on a real Prefect server on 127.0.0.1) the second submitter waits and then finds the job:
exactly one create call. FTLIB_RACE_TRIALS sets the trials of every threaded race (default: 20 for the OpenAI race
between two clones, 8 for the others).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from emulators.moto_server import atomic_conditional_writes, make_bucket, moto_aws, moto_url
from emulators.openai_server import OpenAIEmulator
from emulators.prefect_server import prefect_server
from rich.console import Console

from ftlib.finetune import plan_or_submit
from ftlib.jobs import lease
from ftlib.jobs.ledger import Ledger

__all__ = ["moto_aws", "moto_url"]  # fixtures
pytestmark = pytest.mark.integration

TRIALS = int(os.environ.get("FTLIB_RACE_TRIALS", "20"))  # the OpenAI race between two clones
OTHER_TRIALS = int(os.environ.get("FTLIB_RACE_TRIALS", "8"))  # the S3 lease, Bedrock and Vertex races
BASE = "gpt-4o-mini-2024-07-18"
LINE = '{"messages": [{"role": "user", "content": "Question %d?"}, {"role": "assistant", "content": "Answer %d."}]}\n'
REMOTE_BUCKET = "ftlib-remote"


@pytest.fixture
def emu() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as e:
        yield e


@pytest.fixture
def openai_env(emu: OpenAIEmulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for var in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_API_VERSION", lease.ENV):
        monkeypatch.delenv(var, raising=False)
    for k, v in emu.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(lease, "POLL_S", 0.05)
    return emu.env()


def _settings(attempt: int) -> dict[str, Any]:
    return {"base_model": BASE, "hyperparameters": {"n_epochs": 1}, "attempt": attempt, "max_retries": 2}


def make_clone(root: Path, remote: str | None = None) -> Path:
    """A project folder with the same export bytes as every other clone, its own ledger and, optionally, a DVC
    default remote (the lease follows it)."""
    (root / "export").mkdir(parents=True)
    (root / "export" / "train.jsonl").write_text("".join(LINE % (i, i) for i in range(12)))
    (root / "export" / "validation.jsonl").write_text("".join(LINE % (i, i) for i in range(100, 103)))
    if remote:
        (root / ".dvc").mkdir()
        (root / ".dvc" / "config").write_text(
            f"[core]\n    remote = store\n['remote \"store\"']\n    url = {remote}\n")
    return root


def submit(clone: Path, settings: dict[str, Any], out: io.StringIO | None = None) -> dict[str, Any]:
    con = Console(file=out or io.StringIO(), width=300)
    return plan_or_submit(clone / "export", "openai", settings, submit=True, wait=False,
                          models_dir=clone / "models", console=con)


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together by a barrier; re-raise the first failure."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException | None] = [None] * len(calls)

    def run(i: int, fn: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[i] = fn()
        except BaseException as e:  # handed to the test thread
            errors[i] = e

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for e in errors:
        if e is not None:
            raise e
    return results


def _check_one_alive(emu: OpenAIEmulator, key: str, clones: list[Path], job_ids: list[str]) -> int:
    """Exactly one job for the key is not cancelled, every clone's ledger names it; returns how many were created."""
    jobs = emu.jobs_for_key(key)
    alive = [j["id"] for j in jobs if j["status"] != "cancelled"]
    assert len(alive) == 1, [(j["id"], j["status"]) for j in jobs]
    assert set(job_ids) == set(alive)
    cancelled = {j["id"] for j in jobs if j["status"] == "cancelled"}
    recorded = set()
    for clone in clones:
        rec = Ledger(clone / "models").get("openai", key)
        assert rec["job_id"] == alive[0]
        recorded |= set(rec.get("duplicates_cancelled") or [])
    assert recorded == cancelled  # what happened is in the ledger
    return len(jobs)


# -- no shared lease: reconciliation -------------------------------------------------------------------------------

def test_openai_two_clones_keep_exactly_one_job_every_trial(emu: OpenAIEmulator, openai_env: dict[str, str],
                                                            tmp_path: Path) -> None:
    emu.delay("/fine_tuning/jobs", 0.05)  # both lookups overlap: each submitter creates a job
    clones = [make_clone(tmp_path / "a"), make_clone(tmp_path / "b")]
    both_created = 0
    for trial in range(TRIALS):
        settings = _settings(trial)
        ra, rb = race(partial(submit, clones[0], settings), partial(submit, clones[1], settings))
        assert ra["job_key"] == rb["job_key"]
        created = _check_one_alive(emu, ra["job_key"], clones, [ra["job"]["job_id"], rb["job"]["job_id"]])
        both_created += created == 2
    print(f"openai threads: {both_created}/{TRIALS} trials created two jobs; one was cancelled each time")
    assert both_created >= TRIALS // 2, "the submitters did not race: the test proves nothing"


def _cli(clone: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "ftlib.cli_jobs", "finetune", "export", "--provider", "openai", "--params",
            "params.yaml", "--models-dir", "models", "--submit"]
    with open(log, "wb") as out:
        return subprocess.Popen(args, cwd=clone, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)


def _params(clone: Path, attempt: int) -> None:
    (clone / "params.yaml").write_text(yaml.safe_dump({"finetune": {"openai": _settings(attempt)}}))


def test_openai_two_clones_as_processes(emu: OpenAIEmulator, openai_env: dict[str, str], tmp_path: Path) -> None:
    """The same with real `ftlib finetune --submit` processes, as two clones on two machines would run it."""
    emu.delay("/fine_tuning/jobs", 0.6)  # wider than the start-up jitter of two interpreters
    clones = [make_clone(tmp_path / "a"), make_clone(tmp_path / "b")]
    both_created = 0
    for trial in range(2):
        for c in clones:
            _params(c, trial)
        procs = [_cli(c, openai_env, tmp_path / f"{c.name}{trial}.log") for c in clones]
        assert [p.wait(120) for p in procs] == [0, 0], [(tmp_path / f"{c.name}{trial}.log").read_text() for c in clones]
        key = next(r for r in Ledger(clones[0] / "models").records() if r["attempt"] == trial)["job_key"]
        ids = [Ledger(c / "models").get("openai", key)["job_id"] for c in clones]
        both_created += _check_one_alive(emu, key, clones, ids) == 2
    assert both_created >= 1, "the processes did not race"


# -- shared leases -------------------------------------------------------------------------------------------------

def test_same_ledger_with_different_tmpdirs_creates_once(emu: OpenAIEmulator, openai_env: dict[str, str],
                                                         tmp_path: Path) -> None:
    """The lock lives beside the ledger, not in $TMPDIR: two processes of one clone never both create."""
    emu.delay("/fine_tuning/jobs", 0.3)
    clone = make_clone(tmp_path / "a")
    _params(clone, 0)
    procs = []
    for i in range(2):
        tmp = tmp_path / f"tmp{i}"
        tmp.mkdir()
        procs.append(_cli(clone, {**openai_env, "TMPDIR": str(tmp)}, tmp_path / f"p{i}.log"))
    assert [p.wait(120) for p in procs] == [0, 0]
    assert emu.create_attempts == 1
    logs = "".join((tmp_path / f"p{i}.log").read_text() for i in range(2))
    assert "already submitted" in logs  # the second found the first one's job in the shared ledger


def test_s3_remote_lease_lets_exactly_one_submitter_create(emu: OpenAIEmulator, openai_env: dict[str, str],
                                                           moto_aws: str, tmp_path: Path) -> None:
    """Two clones whose DVC remote is in S3: the object lease (If-None-Match: *) admits one submitter at a time."""
    emu.delay("/fine_tuning/jobs", 0.05)
    with atomic_conditional_writes():
        make_bucket(REMOTE_BUCKET, "us-east-1")
        url = f"s3://{REMOTE_BUCKET}/dvc"
        clones = [make_clone(tmp_path / "a", url), make_clone(tmp_path / "b", url)]
        waited = 0
        for trial in range(OTHER_TRIALS):
            before = emu.create_attempts
            logs = [io.StringIO(), io.StringIO()]
            ra, rb = race(partial(submit, clones[0], _settings(trial), logs[0]),
                          partial(submit, clones[1], _settings(trial), logs[1]))
            assert emu.create_attempts - before == 1, f"trial {trial}: two submitters created jobs"
            assert ra["job"]["job_id"] == rb["job"]["job_id"]
            waited += any(f"holding {url}" in log.getvalue() or "waiting for another submitter" in log.getvalue()
                          for log in logs)
        left = boto3.client("s3").list_objects_v2(Bucket=REMOTE_BUCKET, Prefix=f"dvc/{lease.LEASES}/")
        assert left.get("KeyCount", 0) == 0, "a lease object was left behind"
    assert waited >= OTHER_TRIALS // 2, "the submitters never met at the lease"


def test_a_dead_holders_object_lease_is_taken_over(moto_aws: str) -> None:
    make_bucket(REMOTE_BUCKET, "us-east-1")
    store = lease.S3Object(REMOTE_BUCKET, "leases/k.json")
    assert store.create(b'{"owner": "crashed-host:1:abc"}') is not None
    assert store.create(b'{"owner": "someone else"}') is None  # If-None-Match: * refuses a second create
    time.sleep(2.2)  # older than the 1 s TTL by the store's own clock
    said: list[str] = []
    with lease.ObjectLease(store, "openai key k", said.append, ttl_s=1, poll_s=0.05) as held:
        assert held.owner.encode() in store.read()[2]  # type: ignore[index]
    assert any("took over" in s and "crashed-host" in s for s in said)
    assert store.read() is None  # released


def test_a_live_holder_is_renewed_and_not_taken_over(moto_aws: str) -> None:
    make_bucket(REMOTE_BUCKET, "us-east-1")
    store = lease.S3Object(REMOTE_BUCKET, "leases/k.json")
    first = lease.ObjectLease(store, "k", lambda s: None, ttl_s=1.5, poll_s=0.05)
    first.acquire()
    try:
        second = lease.ObjectLease(store, "k", lambda s: None, ttl_s=1.5, wait_s=3.5, poll_s=0.05)
        with pytest.raises(lease.LeaseTimeout, match="stayed held"):
            second.acquire()  # 3.5 s is over twice the TTL: only renewal keeps the first holder's lease
    finally:
        first.release()


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prefect server on 127.0.0.1 (SQLite in a temp folder), stopped after the module."""
    with prefect_server(tmp_path_factory.mktemp("prefect")) as url:
        yield url


FLOW = textwrap.dedent("""
    import sys
    from pathlib import Path
    from prefect import flow
    from ftlib.finetune import plan_or_submit

    @flow(name="submit-race")
    def submit(clone: str, attempt: int) -> str:
        settings = {"base_model": BASE, "hyperparameters": {"n_epochs": 1}, "attempt": attempt}
        result = plan_or_submit(Path(clone) / "export", "openai", settings, submit=True, wait=False,
                                models_dir=Path(clone) / "models")
        return result["job"]["job_id"]

    print("job", submit(sys.argv[1], int(sys.argv[2])))
""").replace("BASE", repr(BASE))


def test_prefect_concurrency_limit_lets_one_flow_run_create(emu: OpenAIEmulator, openai_env: dict[str, str],
                                                            prefect_api: str, tmp_path: Path) -> None:
    """Two flow runs on one Prefect server, two clones with no other shared lease: the server's global concurrency
    limit for the key admits one at a time, so one creates the job and the other finds it."""
    emu.delay("/fine_tuning/jobs", 1.0)  # the first holder keeps the limit for seconds: the second must wait
    script = tmp_path / "race_flow.py"
    script.write_text(FLOW)
    clones = [make_clone(tmp_path / "a"), make_clone(tmp_path / "b")]
    env = {**os.environ, **openai_env, "PREFECT_API_URL": prefect_api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "1", "PREFECT_HOME": str(tmp_path / "client-home")}
    procs = [subprocess.Popen([sys.executable, str(script), str(c), "0"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for c in clones]
    outs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert emu.create_attempts == 1, outs
    ids = {line.split()[1] for out in outs for line in out.splitlines() if line.startswith("job ")}
    assert len(ids) == 1, outs
    assert all("holding Prefect concurrency limit" in out for out in outs)
    assert any("after waiting" in out for out in outs), outs  # they met: one waited for the other's lease
    creates = [i for i, (m, p) in enumerate(emu.requests) if m == "POST" and p == "/v1/fine_tuning/jobs"]
    lists_before = [r for r in emu.requests[:creates[0]] if r == ("GET", "/v1/fine_tuning/jobs")]
    assert len(lists_before) == 2  # only the holder looked (before and after its uploads) until the job existed
    with urllib.request.urlopen(f"{prefect_api}/v2/concurrency_limits/filter", data=b"{}", timeout=10) as r:
        names = r.read().decode()
    assert "ftlib-submit-openai-" in names


# -- Bedrock and Vertex --------------------------------------------------------------------------------------------

def test_bedrock_two_submitters_one_job(moto_aws: str, tmp_path: Path) -> None:
    from ftlib.jobs.spec import JobSpec
    from ftlib.jobs.submit import submit_once
    from ftlib.targets.anthropic.backend import BedrockBackend
    from ftlib.targets.anthropic.models import HAIKU

    region, bucket = "us-west-2", "ftlib-train"
    make_bucket(bucket, region)
    options = {"role_arn": "arn:aws:iam::123456789012:role/ftlib", "s3_bucket": bucket, "region": region}
    train = tmp_path / "train.jsonl"
    train.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n')
    import hashlib

    sha = hashlib.sha256(train.read_bytes()).hexdigest()
    arns = set()
    for trial in range(OTHER_TRIALS):
        spec = JobSpec("anthropic", HAIKU, "supervised", train, sha, hyperparameters={"epochCount": 1}, attempt=trial)
        got = race(*(partial(submit_once, BedrockBackend(options), spec, Ledger(tmp_path / f"l{i}" / "models"),
                             console=Console(file=io.StringIO())) for i in range(2)))
        assert got[0] == got[1]
        arns.add(got[0])
    summaries = boto3.client("bedrock", region_name=region).list_model_customization_jobs(maxResults=1000)
    assert len(summaries["modelCustomizationJobSummaries"]) == OTHER_TRIALS == len(arns)


def test_vertex_two_submitters_keep_exactly_one_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from emulators.gcs import gcs_emulator
    from emulators.vertex_server import VertexEmulator
    from google.oauth2.credentials import Credentials

    from ftlib.digest import sha256_file
    from ftlib.jobs.spec import JobSpec
    from ftlib.jobs.submit import submit_once
    from ftlib.targets.gemini.backend import LABEL_KEY, VertexBackend

    for var in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(var, raising=False)
    train = tmp_path / "train.jsonl"
    train.write_text('{"contents": [{"role": "user", "parts": [{"text": "q"}]}, '
                     '{"role": "model", "parts": [{"text": "a"}]}]}\n')
    options = {"project": "proj", "location": "us-central1", "gcs_uri": "gs://ftlib-test/tuning",
               "retry_attempts": 2, "retry_initial_delay": 0.01}
    both_created = 0
    with VertexEmulator() as vertex, gcs_emulator("ftlib-test"):
        monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", vertex.url)
        vertex.list_delay = 0.05
        for trial in range(OTHER_TRIALS):
            spec = JobSpec("gemini", "gemini-2.5-flash", "supervised", train, sha256_file(train),
                           hyperparameters={"epoch_count": 1}, attempt=trial)
            ledgers = [Ledger(tmp_path / f"l{i}" / "models") for i in range(2)]
            backends = [VertexBackend(options, credentials=Credentials(token="t")) for _ in range(2)]
            # both upload first: the same object twice at once is the GCS emulator's race, not ours
            ref = backends[0].upload(train, spec.train_sha256, spec)
            for led in ledgers:
                led.record_upload("gemini", spec.train_sha256, ref)
            got = race(*(partial(submit_once, backends[i], spec, ledgers[i], console=Console(file=io.StringIO()))
                         for i in range(2)))
            jobs = vertex.jobs_with_label(LABEL_KEY, spec.key)
            alive = [j["name"] for j in jobs if j["state"] not in ("JOB_STATE_CANCELLING", "JOB_STATE_CANCELLED")]
            assert len(alive) == 1 and got == alive * 2, (got, [(j["name"], j["state"]) for j in jobs])
            both_created += len(jobs) == 2
    print(f"vertex threads: {both_created}/{OTHER_TRIALS} trials created two jobs; one was cancelled each time")
    assert both_created >= 1, "the submitters did not race"


# -- two writers of one output -------------------------------------------------------------------------------------

def test_two_ingests_into_one_output_both_leave_a_whole_file(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text("".join(LINE % (i, i) for i in range(2500)))  # two chunks: worker processes on both sides
    env = {**os.environ, "FTLIB_WORKERS": "2"}
    args = [sys.executable, "-m", "ftlib", "ingest", "data.jsonl", "--out", "out/dataset.parquet", "--report",
            "out/ingest.json"]
    subprocess.run(args, cwd=tmp_path, env=env, check=True, capture_output=True)
    reference = (tmp_path / "out/dataset.parquet").read_bytes(), (tmp_path / "out/ingest.json").read_bytes()
    for _ in range(2):
        shutil.rmtree(tmp_path / "out")
        procs = [subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for _ in range(2)]
        errs = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errs
        assert ((tmp_path / "out/dataset.parquet").read_bytes(), (tmp_path / "out/ingest.json").read_bytes()) \
            == reference
        assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []  # no temp files left
