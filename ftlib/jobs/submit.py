"""Backend-agnostic job logic: submit exactly once, wait with backoff.

Backends implement single calls; everything that must be right for every target (the order of ledger writes
around paid calls, polling, interrupt safety) lives here once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

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
    """
    say = _printer(console)
    key, name = spec.key, backend.name
    check_spec = getattr(backend, "check_spec", None)  # optional adapter hook: provider-specific limits
    if check_spec is not None:
        check_spec(spec)
    with ledger.key_lock(name, key):
        record = ledger.get(name, key)
        if record and record.get("job_id"):
            say(f"[{name}] job {record['job_id']} already submitted for key {key} (ledger)")
            return _resumed(backend, record["job_id"], say)

        base = _record_base(spec)
        job_id = backend.find_job(spec)
        if job_id:
            ledger.update(name, key, **base, job_id=job_id, status=_keep_status(record))
            say(f"[{name}] found existing job {job_id} for key {key} at the provider")
            return _resumed(backend, job_id, say)

        if guard is not None:
            guard(spec)
        check_data = getattr(backend, "check_data", None)  # optional: refuse bad data before the intent is recorded
        if check_data is not None:
            check_data(spec)
        ledger.update(name, key, **base, status=SUBMITTING)
        train_ref = _upload(backend, spec, ledger, spec.train_file, spec.train_sha256, "train_ref", say)
        val_ref = None
        if spec.validation_file is not None:
            if not spec.validation_sha256:
                raise ValueError("JobSpec.validation_sha256 is required with a validation_file")
            val_ref = _upload(backend, spec, ledger, spec.validation_file, spec.validation_sha256,
                              "validation_ref", say)

        job_id = backend.find_job(spec)  # an upload can take long: another submitter may have won meanwhile
        if not job_id:
            job_id = backend.create_job(spec, train_ref, val_ref)
            say(f"[{name}] created job {job_id} for key {key}")
        ledger.update(name, key, job_id=job_id, status=SUBMITTED)
        return job_id


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
    if upload is None:  # the backend reads the file where it is (the local trainer)
        ref = path.resolve().as_posix()
    elif ref := ledger.upload_ref(backend.name, sha):
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
            status = backend.get_job(job_id)
            line = _progress_line(backend.name, status)
            if line != shown:
                shown = line
                say(line)
            if (status.raw_state, status.model_id) != last:
                last = (status.raw_state, status.model_id)
                if ledger is not None:
                    ledger.record_status(backend.name, status)
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
