"""Backend-agnostic job logic: submit exactly once, wait with backoff.

Backends implement single calls; everything that must be right for every target (the order of ledger writes
around paid calls, the lease per key, reconciliation after create, polling, interrupt safety) lives here once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from ftlib.errors import JobNotFound
from ftlib.jobs import lease
from ftlib.jobs.ledger import SUBMITTED, SUBMITTING, Ledger
from ftlib.jobs.spec import Backend, JobSpec, JobState, JobStatus, ProviderError


class WaitTimeout(ProviderError):
    """The deadline passed; the job keeps running at the provider and a re-run resumes waiting."""


def stderr_console() -> Console:
    """Progress goes to stderr so stdout stays clean for --json output and pipes."""
    return Console(stderr=True, highlight=False)


def _printer(con: Console | None) -> Callable[[str], None]:
    """Plain lines: '[openai]' is not rich markup, ':x:' in a model id is not an emoji, no wrapping of ids."""
    target = con or stderr_console()
    return lambda msg: target.print(msg, markup=False, emoji=False, highlight=False, soft_wrap=True)


def submit_once(backend: Backend, spec: JobSpec, ledger: Ledger, *, console: Console | None = None,
                guard: Callable[[JobSpec], None] | None = None) -> str:
    """The job id for spec.key, creating the job only if neither the ledger nor the provider knows one.

    `guard(spec)` runs only when a job would be created, before anything is recorded or uploaded: it raises to
    refuse the files (ftlib.upload_check: the exact bytes pass the target's rules, secrets included).

    Order matters: intent is written before any paid call and the job id right after create, and the provider is
    asked before create, so a crash anywhere (or a second machine without the ledger) never yields a second job.
    The whole sequence runs under the key's leases (ftlib.jobs.lease), so a concurrent submitter waits and then
    finds the job; where no lease is shared, reconciliation after create keeps the oldest job for the key and
    cancels the others before they train.
    """
    say = _printer(console)
    key, name = spec.key, backend.name
    check_spec = getattr(backend, "check_spec", None)  # optional adapter hook: provider-specific limits
    if check_spec is not None:
        check_spec(spec)
    with lease.hold(ledger.root, name, key, lambda msg: say(f"[{name}] {msg}")):
        record = ledger.get(name, key)
        if record and record.get("job_id"):
            say(f"[{name}] job {record['job_id']} already submitted for key {key} (ledger)")
            return _resumed(backend, record["job_id"], say)

        base = _record_base(spec)
        job_id = _find(backend, spec, ledger, say)
        if job_id:
            ledger.update(name, key, **base, job_id=job_id, status=_keep_status(record))
            say(f"[{name}] found existing job {job_id} for key {key} at the provider")
            return _resumed(backend, job_id, say)

        check_data = getattr(backend, "check_data", None)  # optional: refuse bad data before the intent is recorded
        if check_data is not None:  # the backend's own preflight first: it names what its trainer would refuse
            check_data(spec)
        if guard is not None:
            guard(spec)
        ledger.update(name, key, **base, status=SUBMITTING)
        train_ref = _upload(backend, spec, ledger, spec.train_file, spec.train_sha256, "train_ref", say)
        val_ref = None
        if spec.validation_file is not None:
            if not spec.validation_sha256:
                raise ValueError("JobSpec.validation_sha256 is required with a validation_file")
            val_ref = _upload(backend, spec, ledger, spec.validation_file, spec.validation_sha256,
                              "validation_ref", say)

        job_id = _find(backend, spec, ledger, say)  # an upload can take long: another submitter may have won meanwhile
        if not job_id:
            created = backend.create_job(spec, train_ref, val_ref)
            say(f"[{name}] created job {created} for key {key}")
            job_id = reconcile(backend, spec, ledger, created, say)
        ledger.update(name, key, job_id=job_id, status=SUBMITTED)
        return job_id


def _find(backend: Backend, spec: JobSpec, ledger: Ledger, say: Callable[[str], None]) -> str | None:
    """The job the provider already has for the key (the oldest one that counts, after reconciling)."""
    if getattr(backend, "jobs_for_key", None) is None:
        return backend.find_job(spec)
    return reconcile(backend, spec, ledger, None, say)


def _age(s: JobStatus) -> tuple[Any, ...]:
    """Oldest first: creation time, then the id read as text with numbers (ftjob-9 before ftjob-10)."""
    created = getattr(s, "created_at", None)
    when = created.timestamp() if isinstance(created, datetime) else float("inf")
    return (when, _id_order(s.job_id))


def reconcile(backend: Backend, spec: JobSpec, ledger: Ledger, created: str | None,
              say: Callable[[str], None]) -> str | None:
    """One job per key at the provider: keep the oldest job for the key that is not cancelled, cancel every other
    one that has not finished (they are minutes old and still validating or queued), and record the cancelled ids.

    Two submitters that share no lease can both create a job; both then list the same jobs and keep the same one,
    so exactly one trains. `created` (this submitter's new job) is added if the listing does not show it yet.
    """
    lister = getattr(backend, "jobs_for_key", None)
    if lister is None:
        return created or backend.find_job(spec)
    jobs = {s.job_id: s for s in lister(spec.key)}
    if created and created not in jobs:
        jobs[created] = backend.get_job(created)
    if not jobs:
        return None
    ranked = sorted(jobs.values(), key=_age)
    keep = next((s for s in ranked if s.state is not JobState.CANCELLED), ranked[0])
    extra = [s for s in ranked if s is not keep and not s.state.terminal]
    if not extra:
        return keep.job_id
    name = backend.name
    cancelled = []
    for s in extra:
        try:
            backend.cancel(s.job_id)
        except ProviderError as e:
            say(f"[{name}] could not cancel duplicate job {s.job_id} for key {spec.key}: {e}; cancel it yourself "
                f"(ftlib cancel {s.job_id} --provider {name})")
            continue
        cancelled.append(s.job_id)
        say(f"[{name}] cancelled duplicate job {s.job_id} for key {spec.key} (another submitter created it at the "
            f"same time); keeping the older job {keep.job_id}")
    if cancelled:
        done = set((ledger.get(name, spec.key) or {}).get("duplicates_cancelled") or [])
        ledger.update(name, spec.key, duplicates_cancelled=sorted(done | set(cancelled), key=_id_order))
    return keep.job_id


def _id_order(job_id: str) -> list[tuple[int, int, str]]:
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", job_id) if p]


def _resumed(backend: Backend, job_id: str, say: Callable[[str], None]) -> str:
    """A job that died on this machine (the local trainer after kill -9) continues instead of starting over."""
    resume = getattr(backend, "resume", None)
    if resume is not None and resume(job_id):
        say(f"[{backend.name}] job {job_id} had stopped; resumed from its last checkpoint")
    return job_id


def _record_base(spec: JobSpec) -> dict[str, Any]:
    return {
        "provider": spec.provider, "job_key": spec.key, "base_model": spec.base_model, "method": spec.method,
        "hyperparameters": dict(spec.hyperparameters), "attempt": spec.attempt, "suffix": spec.suffix,
        "dataset_sha256": spec.train_sha256, "validation_sha256": spec.validation_sha256,
        "train_file": spec.train_file.name,
        "validation_file": spec.validation_file.name if spec.validation_file else None,
        "model_id": None, "error": None,
        **{k: v for k, v in (("seed", spec.seed), ("base_model_revision", spec.base_model_revision)) if v is not None},
    }


def _keep_status(record: dict[str, Any] | None) -> str:
    status = (record or {}).get("status")
    return status if status not in (None, SUBMITTING) else SUBMITTED


def _upload(backend: Backend, spec: JobSpec, ledger: Ledger, path: Path, sha: str, field: str,
            say: Callable[..., None]) -> str:
    upload = getattr(backend, "upload", None)
    has_upload = getattr(backend, "has_upload", None)  # optional: is a cached reference still at the provider?
    cached = ledger.upload_ref(backend.name, sha) if upload is not None else None
    if cached and has_upload is not None and not has_upload(cached):
        say(f"[{backend.name}] upload {cached} of {path.name} is gone at the provider (deleted or expired); "
            "forgetting it and uploading again")
        ledger.forget_upload(backend.name, sha)
        cached = None
    if upload is None:  # the backend reads the file where it is (the local trainer)
        ref = path.resolve().as_posix()
    elif ref := cached:
        say(f"[{backend.name}] reusing upload {ref} for {path.name}")
    else:
        ref = upload(path, sha, spec)
        ledger.record_upload(backend.name, sha, ref)
        say(f"[{backend.name}] uploaded {path.name} as {ref}")
    ledger.update(backend.name, spec.key, **{field: ref})
    return ref


@dataclass(frozen=True)
class Poll:
    """Backoff for status polling: start, multiply, cap (seconds)."""

    start: float = 5.0
    factor: float = 1.5
    cap: float = 60.0


def wait(
    backend: Backend,
    job_id: str,
    deadline_s: float | None,
    poll: Poll = Poll(),
    *,
    ledger: Ledger | None = None,
    console: Console | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> JobStatus:
    """Poll until a terminal state; a state change prints one line and is written to the ledger.

    Ctrl-C (or the deadline) leaves the job running at the provider; calling wait again resumes on the same job.
    A failed or cancelled job raises ProviderError carrying the provider's own message.
    """
    say = _printer(console)
    started = time.monotonic()
    interval = poll.start
    last: tuple[str, str | None] | None = None
    shown: str | None = None
    try:
        while True:
            try:
                status = backend.get_job(job_id)
            except JobNotFound as e:
                raise JobNotFound(not_found_advice(backend.name, job_id, ledger, str(e))) from None
            line = _progress_line(backend.name, status)
            if line != shown:
                shown = line
                say(line)
            if (status.raw_state, status.model_id) != last:
                last = (status.raw_state, status.model_id)
                if ledger is not None:
                    ledger.record_status(backend.name, status)
            if status.state is JobState.CANCELLED and ledger is not None and \
                    (moved := _moved_to(backend, ledger, job_id, say)) is not None:
                job_id, last, interval = moved, None, poll.start
                continue
            if status.state.terminal:
                break
            if deadline_s is not None and time.monotonic() - started + interval > deadline_s:
                raise WaitTimeout(f"{backend.name} job {job_id} is still {status.raw_state} after {deadline_s:g}s; "
                                  "it keeps running: re-run the same command to resume waiting")
            sleep(interval)
            interval = min(interval * poll.factor, poll.cap)
    except KeyboardInterrupt:
        say(f"[{backend.name}] interrupted: job {job_id} keeps running; re-run to resume waiting")
        raise
    if status.state is not JobState.SUCCEEDED:
        raise ProviderError(f"{backend.name} job {job_id} {status.state.value}: "
                            f"{status.error or 'no error message from the provider'} (to train again on the same "
                            f"data, fix the cause and raise finetune.{backend.name}.attempt)")
    return status


def _moved_to(backend: Backend, ledger: Ledger, job_id: str, say: Callable[[str], None]) -> str | None:
    """The job that trains for this job's key when this one was cancelled as a duplicate.

    Two submitters that created jobs within the same second can each keep a different one for a moment (their
    listings differ); the one whose job was cancelled follows the key to the job that still runs.
    """
    lister = getattr(backend, "jobs_for_key", None)
    record = ledger.find_by_job_id(backend.name, job_id) if lister is not None else None
    if record is None:
        return None
    live = sorted((s for s in lister(record["job_key"]) if s.state is not JobState.CANCELLED), key=_age)
    if not live or live[0].job_id == job_id:
        return None
    kept = live[0].job_id
    done = set(record.get("duplicates_cancelled") or []) | {job_id}
    ledger.update(backend.name, record["job_key"], job_id=kept, status=SUBMITTED, model_id=None, error=None,
                  duplicates_cancelled=sorted(done, key=_id_order))
    say(f"[{backend.name}] job {job_id} was cancelled as a duplicate for key {record['job_key']}; following the "
        f"job that trains, {kept}")
    return kept


def not_found_advice(provider: str, job_id: str, ledger: Ledger | None, reason: str) -> str:
    """What to do when the ledger names a job the provider does not have: never resubmit on our own (the
    credentials may point at another account, and a new job costs money), say how to start over."""
    record = ledger.find_by_job_id(provider, job_id) if ledger is not None else None
    if record is None:
        return (f"{reason}; check the job id and that the credentials and endpoint are for the account that owns "
                "the job")
    path = ledger.job_path(provider, record["job_key"]) if ledger is not None else None
    return (f"{provider} has no job {job_id}, which the ledger records in {path} ({reason}). If the credentials and "
            f"endpoint are for the right account, the job was deleted: delete {path} and re-run to submit a new "
            "job; otherwise point the credentials at the account that owns it")


def _progress_line(name: str, s: JobStatus) -> str:
    parts = [f"[{name}] job {s.job_id}: {s.raw_state}"]
    if s.progress is not None:
        parts.append(f"{s.progress:.0%}")
    if s.detail:
        parts.append(s.detail)
    if s.trained_tokens:
        parts.append(f"{s.trained_tokens} trained tokens")
    if s.model_id:
        parts.append(f"model {s.model_id}")
    if s.error:
        parts.append(f"error: {s.error}")
    return ", ".join(parts)
