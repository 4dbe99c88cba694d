"""Shared job logic against an in-memory provider: hyperparameter checks, submit-once under crashes, waiting."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from ftlib.digest import sha256_file
from ftlib.jobs.ledger import Ledger
from ftlib.jobs.spec import JobSpec, JobState, JobStatus, ProviderError
from ftlib.jobs.submit import Poll, WaitTimeout, submit_once, wait


class Crash(Exception):
    """Stands in for kill -9 at a chosen point."""


class FakeProvider:
    name = "fake"

    def __init__(self, states: list[str] | None = None) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.uploads: list[str] = []
        self.calls: list[str] = []
        self.crash_at: str | None = None
        self.states = states or ["queued", "running", "succeeded"]
        self.polls = 0

    def _maybe_crash(self, point: str) -> None:
        if self.crash_at == point:
            self.crash_at = None
            raise Crash(point)

    def check_config(self) -> None:
        pass

    def upload(self, path: Path, sha256: str, spec: JobSpec) -> str:
        self.calls.append("upload")
        self.uploads.append(sha256)
        ref = f"file-{sha256[:8]}"
        self._maybe_crash("after_upload")
        return ref

    def find_job(self, spec: JobSpec) -> str | None:
        self.calls.append("find")
        return next((i for i, j in self.jobs.items() if j["key"] == spec.key), None)

    def create_job(self, spec: JobSpec, train_ref: str, validation_ref: str | None) -> str:
        self.calls.append("create")
        self._maybe_crash("before_create")
        job_id = f"job-{len(self.jobs) + 1}"
        self.jobs[job_id] = {"key": spec.key, "train": train_ref}
        self._maybe_crash("after_create")
        return job_id

    def get_job(self, job_id: str) -> JobStatus:
        raw = self.states[min(self.polls, len(self.states) - 1)]
        self.polls += 1
        state = {"queued": JobState.PENDING, "running": JobState.RUNNING, "succeeded": JobState.SUCCEEDED,
                 "failed": JobState.FAILED}.get(raw, JobState.UNKNOWN)
        return JobStatus(job_id, state, raw, model_id="ft:model" if raw == "succeeded" else None,
                         error="training diverged" if raw == "failed" else None)

    def cancel(self, job_id: str) -> None:
        pass

    def list_jobs(self, limit: int = 20) -> list[JobStatus]:
        return []


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


@pytest.fixture
def spec(tmp_path: Path) -> JobSpec:
    train = tmp_path / "train.jsonl"
    train.write_bytes(b'{"messages": []}\n' * 3)
    val = tmp_path / "validation.jsonl"
    val.write_bytes(b'{"messages": [1]}\n')
    return JobSpec("fake", "base", "supervised", train, sha256_file(train), val, sha256_file(val),
                   hyperparameters={"n_epochs": 2})


# submit once

def test_submit_then_rerun_returns_same_job_without_new_calls(spec: JobSpec, tmp_path: Path) -> None:
    prov, reg = FakeProvider(), Ledger(tmp_path / "models")
    job = submit_once(prov, spec, reg, console=_quiet())
    assert prov.calls == ["find", "upload", "upload", "find", "create"]
    rec = reg.get("fake", spec.key)
    assert rec["job_id"] == job and rec["status"] == "submitted"
    assert rec["dataset_sha256"] == spec.train_sha256 and rec["validation_sha256"] == spec.validation_sha256
    assert rec["train_ref"] == f"file-{spec.train_sha256[:8]}"
    prov.calls.clear()
    assert submit_once(prov, spec, reg, console=_quiet()) == job
    assert prov.calls == []


def test_second_machine_without_ledger_finds_job_at_provider(spec: JobSpec, tmp_path: Path) -> None:
    prov = FakeProvider()
    job = submit_once(prov, spec, Ledger(tmp_path / "a"), console=_quiet())
    other = Ledger(tmp_path / "b")
    prov.calls.clear()
    assert submit_once(prov, spec, other, console=_quiet()) == job
    assert prov.calls == ["find"]
    assert other.get("fake", spec.key)["job_id"] == job
    assert len(prov.jobs) == 1


@pytest.mark.parametrize("point", ["after_upload", "before_create", "after_create"])
def test_crash_anywhere_then_rerun_gives_exactly_one_job(spec: JobSpec, tmp_path: Path, point: str) -> None:
    prov, reg = FakeProvider(), Ledger(tmp_path / "models")
    prov.crash_at = point
    with pytest.raises(Crash):
        submit_once(prov, spec, reg, console=_quiet())
    rec = reg.get("fake", spec.key)
    assert rec["status"] == "submitting" and "job_id" not in rec  # intent was written before the paid calls
    uploads_before = len(prov.uploads)
    job = submit_once(prov, spec, reg, console=_quiet())
    assert len(prov.jobs) == 1 and job in prov.jobs
    assert reg.get("fake", spec.key)["job_id"] == job
    if point != "after_upload":
        assert len(prov.uploads) == uploads_before  # cached refs: no second upload of the same bytes


def test_upload_cache_is_shared_across_keys(spec: JobSpec, tmp_path: Path) -> None:
    prov, reg = FakeProvider(), Ledger(tmp_path / "models")
    submit_once(prov, spec, reg, console=_quiet())
    again = JobSpec(**{**spec.__dict__, "attempt": 1})
    submit_once(prov, again, reg, console=_quiet())
    assert len(prov.jobs) == 2 and len(prov.uploads) == 2  # train + validation once each


# wait

def test_wait_backoff_records_states_and_model(spec: JobSpec, tmp_path: Path) -> None:
    prov, reg = FakeProvider(["queued", "queued", "running", "succeeded"]), Ledger(tmp_path / "models")
    job = submit_once(prov, spec, reg, console=_quiet())
    sleeps: list[float] = []
    out = io.StringIO()
    status = wait(prov, job, None, Poll(1.0, 2.0, 3.0), ledger=reg, console=Console(file=out, width=300),
                  sleep=sleeps.append)
    assert status.model_id == "ft:model"
    assert sleeps == [1.0, 2.0, 3.0]
    lines = out.getvalue().splitlines()
    assert lines == [f"[fake] job {job}: queued", f"[fake] job {job}: running",
                     f"[fake] job {job}: succeeded, model ft:model"]
    rec = reg.get("fake", spec.key)
    assert (rec["status"], rec["model_id"]) == ("succeeded", "ft:model")


def test_wait_failure_raises_provider_message(spec: JobSpec, tmp_path: Path) -> None:
    prov, reg = FakeProvider(["running", "failed"]), Ledger(tmp_path / "models")
    job = submit_once(prov, spec, reg, console=_quiet())
    with pytest.raises(ProviderError, match="failed: training diverged"):
        wait(prov, job, None, Poll(0, 1, 0), ledger=reg, console=_quiet(), sleep=lambda s: None)
    assert reg.get("fake", spec.key)["error"] == "training diverged"


def test_interrupt_leaves_job_and_rerun_resumes(spec: JobSpec, tmp_path: Path) -> None:
    prov, reg = FakeProvider(["queued", "running", "succeeded"]), Ledger(tmp_path / "models")
    job = submit_once(prov, spec, reg, console=_quiet())

    def ctrl_c(_: float) -> None:
        raise KeyboardInterrupt

    out = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        wait(prov, job, None, Poll(1, 1, 1), ledger=reg, console=Console(file=out, width=300), sleep=ctrl_c)
    assert "keeps running" in out.getvalue()
    assert reg.get("fake", spec.key)["status"] == "pending"
    assert submit_once(prov, spec, reg, console=_quiet()) == job
    assert wait(prov, job, None, Poll(0, 1, 0), ledger=reg, console=_quiet(), sleep=lambda s: None).model_id
    assert len(prov.jobs) == 1


def test_deadline_raises_but_job_keeps_running(spec: JobSpec, tmp_path: Path) -> None:
    prov = FakeProvider(["running"])
    with pytest.raises(WaitTimeout, match=r"still running after 2s.*re-run"):
        wait(prov, "job-1", 2, Poll(5, 1, 5), console=_quiet(), sleep=lambda s: None)


def test_unknown_state_is_kept_raw(spec: JobSpec, tmp_path: Path) -> None:
    prov, reg = FakeProvider(["paused", "succeeded"]), Ledger(tmp_path / "models")
    job = submit_once(prov, spec, reg, console=_quiet())
    seen = []
    wait(prov, job, None, Poll(0, 1, 0), ledger=reg, console=_quiet(),
         sleep=lambda s: seen.append(reg.get("fake", spec.key)["status"]))
    assert seen == ["paused"]


# reconciliation after create: one job per key even when two submitters share no lease

class ListingProvider(FakeProvider):
    """A provider without idempotency that can list jobs by key, like OpenAI (metadata) and Vertex (labels)."""

    def __init__(self) -> None:
        super().__init__()
        self.cancelled: list[str] = []
        self.hidden: set[str] = set()  # jobs the listing does not show yet (eventual consistency)
        self.refuse_cancel = False

    def jobs_for_key(self, key: str) -> list[JobStatus]:
        from datetime import UTC, datetime

        out = []
        for i, (job_id, job) in enumerate(self.jobs.items()):
            if job["key"] == key and job_id not in self.hidden:
                state = JobState.CANCELLED if job_id in self.cancelled else JobState.PENDING
                out.append(JobStatus(job_id, state, state.value, created_at=datetime(2026, 1, 1, 0, 0, i, tzinfo=UTC)))
        return out[::-1]  # newest first, as providers list

    def get_job(self, job_id: str) -> JobStatus:
        state = JobState.CANCELLED if job_id in self.cancelled else JobState.PENDING
        return JobStatus(job_id, state, state.value)

    def cancel(self, job_id: str) -> None:
        if self.refuse_cancel:
            raise ProviderError("409 job already running")
        self.cancelled.append(job_id)


def test_a_job_created_by_another_submitter_meanwhile_is_cancelled_and_the_oldest_kept(spec: JobSpec,
                                                                                      tmp_path: Path) -> None:
    prov, reg = ListingProvider(), Ledger(tmp_path / "models")
    real_create = prov.create_job

    def create_after_a_rival(spec: JobSpec, train: str, val: str | None) -> str:
        real_create(spec, train, val)  # the other clone's job lands first
        return real_create(spec, train, val)

    prov.create_job = create_after_a_rival  # type: ignore[method-assign]
    out = io.StringIO()
    job = submit_once(prov, spec, reg, console=Console(file=out, width=300))
    assert job == "job-1" and prov.cancelled == ["job-2"]
    rec = reg.get("fake", spec.key)
    assert rec["job_id"] == "job-1" and rec["duplicates_cancelled"] == ["job-2"]
    assert "cancelled duplicate job job-2" in out.getvalue() and "keeping the older job job-1" in out.getvalue()


def test_our_new_job_is_counted_even_before_the_listing_shows_it(spec: JobSpec, tmp_path: Path) -> None:
    prov, reg = ListingProvider(), Ledger(tmp_path / "models")
    other = prov.create_job(spec, "f", None)  # job-1, made by another clone
    prov.hidden.add("job-2")  # ours will not be listed yet
    from ftlib.jobs.submit import reconcile

    kept = reconcile(prov, spec, reg, prov.create_job(spec, "f", None), lambda _: None)
    assert kept == other and prov.cancelled == ["job-2"]


def test_only_cancelled_jobs_keep_the_oldest_and_a_refused_cancel_says_what_to_do(spec: JobSpec,
                                                                                   tmp_path: Path) -> None:
    from ftlib.jobs.submit import reconcile

    prov, reg = ListingProvider(), Ledger(tmp_path / "models")
    for _ in range(2):
        prov.create_job(spec, "f", None)
    prov.cancelled = ["job-1", "job-2"]
    assert reconcile(prov, spec, reg, None, lambda _: None) == "job-1"  # a cancelled job still answers for its key
    prov.cancelled = []
    prov.refuse_cancel = True
    said: list[str] = []
    assert reconcile(prov, spec, reg, None, said.append) == "job-1"
    assert "could not cancel duplicate job job-2" in said[0] and "ftlib cancel job-2 --provider fake" in said[0]


# stuck states

class GoneProvider(FakeProvider):
    def __init__(self) -> None:
        super().__init__()
        self.deleted: set[str] = set()

    def get_job(self, job_id: str) -> JobStatus:
        from ftlib.errors import JobNotFound

        raise JobNotFound(f"fake has no job {job_id} (HTTP 404)")

    def has_upload(self, ref: str) -> bool:
        return ref not in self.deleted


def test_a_job_unknown_to_the_provider_names_the_ledger_file_and_the_fix(spec: JobSpec, tmp_path: Path) -> None:
    from ftlib.errors import JobNotFound

    prov, reg = GoneProvider(), Ledger(tmp_path / "models")
    job = submit_once(prov, spec, reg, console=_quiet())
    with pytest.raises(JobNotFound) as err:
        wait(prov, job, None, Poll(0, 1, 0), ledger=reg, console=_quiet(), sleep=lambda s: None)
    path = reg.job_path("fake", spec.key)
    assert f"fake has no job {job}, which the ledger records in {path}" in str(err.value)
    assert f"delete {path} and re-run" in str(err.value)


def test_a_stale_upload_is_forgotten_and_sent_again(spec: JobSpec, tmp_path: Path) -> None:
    prov, reg = GoneProvider(), Ledger(tmp_path / "models")
    submit_once(prov, spec, reg, console=_quiet())
    prov.deleted = {reg.upload_ref("fake", spec.train_sha256)}
    out = io.StringIO()
    submit_once(prov, JobSpec(**{**spec.__dict__, "attempt": 1}), reg, console=Console(file=out, width=300))
    assert "is gone at the provider (deleted or expired); forgetting it and uploading again" in out.getvalue()
    assert prov.uploads.count(spec.train_sha256) == 2 and prov.uploads.count(spec.validation_sha256) == 1


def test_a_corrupt_record_of_another_key_does_not_block_this_one(spec: JobSpec, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    prov, reg = FakeProvider(), Ledger(tmp_path / "models")
    job = submit_once(prov, spec, reg, console=_quiet())
    (tmp_path / "models/jobs/fake/other.json").write_text("[1, 2")
    (tmp_path / "models/jobs/fake/numeric.json").write_text('{"job_key": "numeric", "provider": "fake", "job_id": 7}')
    status = wait(prov, job, None, Poll(0, 1, 0), ledger=reg, console=_quiet(), sleep=lambda s: None)
    assert status.model_id == "ft:model" and reg.get("fake", spec.key)["model_id"] == "ft:model"
    err = capsys.readouterr().err
    assert "other.json: not valid JSON" in err and "numeric.json: job_id must be a string" in err
    assert err.count("warning:") == 2  # once per file, not once per poll
    with pytest.raises(ValueError, match=r"other\.json: not valid JSON"):
        reg.get("fake", "other")  # the record a command asks for by name still fails loudly, with the fix


def test_a_submitter_whose_job_was_cancelled_as_a_duplicate_follows_the_job_that_trains(spec: JobSpec,
                                                                                       tmp_path: Path) -> None:
    """Same-second creates can leave each clone keeping a different job for a moment; wait heals the loser."""
    prov, reg = ListingProvider(), Ledger(tmp_path / "models")
    mine = submit_once(prov, spec, reg, console=_quiet())  # job-1, the only one this clone saw
    prov.create_job(spec, "f", None)  # job-2: the other clone's, which (same second) kept its own and cancelled ours
    prov.cancelled.append(mine)
    prov.get_job = lambda job_id: JobStatus(  # type: ignore[method-assign]
        job_id, *((JobState.CANCELLED, "cancelled") if job_id in prov.cancelled else (JobState.SUCCEEDED, "done")),
        model_id=None if job_id in prov.cancelled else "ft:model")
    out = io.StringIO()
    status = wait(prov, mine, None, Poll(0, 1, 0), ledger=reg, console=Console(file=out, width=300),
                  sleep=lambda s: None)
    assert status.job_id == "job-2" and status.model_id == "ft:model"
    rec = reg.get("fake", spec.key)
    assert (rec["job_id"], rec["model_id"], rec["duplicates_cancelled"]) == ("job-2", "ft:model", ["job-1"])
    assert "job job-1 was cancelled as a duplicate" in out.getvalue()
    prov.jobs.pop("job-2")
    prov.cancelled = ["job-1"]
    with pytest.raises(ProviderError, match="cancelled"):  # cancelled with nothing else for the key: as before
        wait(prov, "job-1", None, Poll(0, 1, 0), ledger=Ledger(tmp_path / "m2"), console=_quiet(),
             sleep=lambda s: None)
