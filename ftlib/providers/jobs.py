"""Provider-agnostic job logic: hyperparameter checks, submit exactly once, wait with backoff.

Adapters implement single API calls; everything that must be right for every provider (the order of ledger writes
around paid calls, polling, interrupt safety) lives here once.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from ftlib.providers.base import JobSpec, JobState, JobStatus, Method, Param, Provider, ProviderError
from ftlib.registry import SUBMITTED, SUBMITTING, Registry

_CHUNK = 1 << 20


class WaitTimeout(ProviderError):
    """The deadline passed; the job keeps running at the provider and a re-run resumes waiting."""


def stderr_console() -> Console:
    """Progress goes to stderr so stdout stays clean for --json output and pipes."""
    return Console(stderr=True, highlight=False)


def _printer(con: Console | None) -> Callable[[str], None]:
    """Plain lines: '[openai]' is not rich markup, ':x:' in a model id is not an emoji, no wrapping of ids."""
    target = con or stderr_console()
    return lambda msg: target.print(msg, markup=False, emoji=False, highlight=False, soft_wrap=True)


def sha256_file(path: Path) -> str:
    """Streaming hash: the ledger identity of the exact bytes that get uploaded."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _check_value(p: Param, value: Any, where: str) -> Any:
    if value == "auto":
        if p.allow_auto:
            return value
        raise ValueError(f"{where}: 'auto' is not allowed for {p.name}; give a number in {_range(p)}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: {p.name} must be {p.type.__name__}{' or auto' if p.allow_auto else ''}, "
                         f"got {value!r}; set a number in {_range(p)}")
    if p.type is int:
        if float(value) != int(value):
            raise ValueError(f"{where}: {p.name} must be a whole number, got {value!r}")
        value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{where}: {p.name} must be finite, got {value!r}")
    low_ok = value > p.min if p.min_exclusive else value >= p.min
    if not low_ok or value > p.max:
        raise ValueError(f"{where}: {p.name}={value!r} is out of range; allowed {_range(p)}")
    return value


def _range(p: Param) -> str:
    hi = "inf" if math.isinf(p.max) else f"{p.max:g}"
    return f"{'(' if p.min_exclusive else '['}{p.min:g}, {hi}]"


def check_hyperparameters(provider: Provider, method: Method, hp: dict[str, Any] | None) -> dict[str, Any]:
    """Validate against the provider's declared Params before any network call; returns normalised values."""
    where = f"finetune.{provider.name}.hyperparameters"
    declared = provider.params.get(method)
    if declared is None:
        known = ", ".join(sorted(provider.params))
        raise ValueError(f"finetune.{provider.name}.method: {provider.name} does not support {method!r}; use one of: "
                         f"{known}")
    by_name = {p.name: p for p in declared}
    out: dict[str, Any] = {}
    for name, value in sorted((hp or {}).items()):
        p = by_name.get(name)
        if p is None:
            raise ValueError(f"{where}: unknown hyperparameter {name!r} for {provider.name} {method}; known: "
                             f"{', '.join(sorted(by_name))}")
        out[name] = _check_value(p, value, where)
    return out


def submit_once(provider: Provider, spec: JobSpec, registry: Registry, *, console: Console | None = None) -> str:
    """The job id for spec.key, creating the job only if neither the ledger nor the provider knows one.

    Order matters: intent is written before any paid call and the job id right after create, and the provider is
    asked before create, so a crash anywhere (or a second machine without the ledger) never yields a second job.
    """
    say = _printer(console)
    key, name = spec.key, provider.name
    check_spec = getattr(provider, "check_spec", None)  # optional adapter hook: provider-specific limits
    if check_spec is not None:
        check_spec(spec)
    with registry.key_lock(name, key):
        record = registry.get(name, key)
        if record and record.get("job_id"):
            say(f"[{name}] job {record['job_id']} already submitted for key {key} (ledger)")
            return record["job_id"]

        base = _record_base(spec)
        job_id = provider.find_job(spec)
        if job_id:
            registry.update(name, key, **base, job_id=job_id, status=_keep_status(record))
            say(f"[{name}] found existing job {job_id} for key {key} at the provider")
            return job_id

        registry.update(name, key, **base, status=SUBMITTING)
        train_ref = _upload(provider, spec, registry, spec.train_file, spec.train_sha256, "train_ref", say)
        val_ref = None
        if spec.validation_file is not None:
            if not spec.validation_sha256:
                raise ValueError("JobSpec.validation_sha256 is required with a validation_file")
            val_ref = _upload(provider, spec, registry, spec.validation_file, spec.validation_sha256,
                              "validation_ref", say)

        job_id = provider.find_job(spec)  # an upload can take long: another submitter may have won meanwhile
        if not job_id:
            job_id = provider.create_job(spec, train_ref, val_ref)
            say(f"[{name}] created job {job_id} for key {key}")
        registry.update(name, key, job_id=job_id, status=SUBMITTED)
        return job_id


def _record_base(spec: JobSpec) -> dict[str, Any]:
    return {
        "provider": spec.provider, "job_key": spec.key, "base_model": spec.base_model, "method": spec.method,
        "hyperparameters": dict(spec.hyperparameters), "attempt": spec.attempt, "suffix": spec.suffix,
        "dataset_sha256": spec.train_sha256, "validation_sha256": spec.validation_sha256,
        "train_file": spec.train_file.name,
        "validation_file": spec.validation_file.name if spec.validation_file else None,
        "model_id": None, "error": None,
    }


def _keep_status(record: dict[str, Any] | None) -> str:
    status = (record or {}).get("status")
    return status if status not in (None, SUBMITTING) else SUBMITTED


def _upload(provider: Provider, spec: JobSpec, registry: Registry, path: Path, sha: str, field: str,
            say: Callable[..., None]) -> str:
    ref = registry.upload_ref(provider.name, sha)
    if ref:
        say(f"[{provider.name}] reusing upload {ref} for {path.name}")
    else:
        ref = provider.upload(path, sha, spec)
        registry.record_upload(provider.name, sha, ref)
        say(f"[{provider.name}] uploaded {path.name} as {ref}")
    registry.update(provider.name, spec.key, **{field: ref})
    return ref


@dataclass(frozen=True)
class Poll:
    """Backoff for status polling: start, multiply, cap (seconds)."""

    start: float = 5.0
    factor: float = 1.5
    cap: float = 60.0


def wait(
    provider: Provider,
    job_id: str,
    deadline_s: float | None,
    poll: Poll = Poll(),
    *,
    registry: Registry | None = None,
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
    try:
        while True:
            status = provider.get_job(job_id)
            if (status.raw_state, status.model_id) != last:
                last = (status.raw_state, status.model_id)
                say(_progress_line(provider.name, status))
                if registry is not None:
                    _record_status(registry, provider.name, status)
            if status.state.terminal:
                break
            if deadline_s is not None and time.monotonic() - started + interval > deadline_s:
                raise WaitTimeout(f"{provider.name} job {job_id} is still {status.raw_state} after {deadline_s:g}s; "
                                  "it keeps running: re-run the same command to resume waiting")
            sleep(interval)
            interval = min(interval * poll.factor, poll.cap)
    except KeyboardInterrupt:
        say(f"[{provider.name}] interrupted: job {job_id} keeps running; re-run to resume waiting")
        raise
    if status.state is not JobState.SUCCEEDED:
        raise ProviderError(f"{provider.name} job {job_id} {status.state.value}: "
                            f"{status.error or 'no error message from the provider'} (to train again on the same "
                            f"data, fix the cause and raise finetune.{provider.name}.attempt)")
    return status


def _progress_line(name: str, s: JobStatus) -> str:
    parts = [f"[{name}] job {s.job_id}: {s.raw_state}"]
    if s.progress is not None:
        parts.append(f"{s.progress:.0%}")
    if s.trained_tokens:
        parts.append(f"{s.trained_tokens} trained tokens")
    if s.model_id:
        parts.append(f"model {s.model_id}")
    if s.error:
        parts.append(f"error: {s.error}")
    return ", ".join(parts)


def _record_status(registry: Registry, provider: str, s: JobStatus) -> None:
    record = registry.find_by_job_id(provider, s.job_id)
    if record is None:
        return
    fields: dict[str, Any] = {"status": s.state.value if s.state is not JobState.UNKNOWN else s.raw_state}
    if s.model_id:
        fields["model_id"] = s.model_id
    if s.error:
        fields["error"] = s.error
    if s.console_url:
        fields["console_url"] = s.console_url
    registry.update(provider, record["job_key"], **fields)
