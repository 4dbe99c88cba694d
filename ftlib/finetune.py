"""The finetune stage: plan (free, no credentials) or submit exactly once and optionally wait.

dvc.yaml (through the CLI) and the Prefect flows both call plan_or_submit, so either entry point sees the same
ledger under models/ and neither can start a second paid job for the same inputs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from ftlib import atomic, layout, targets
from ftlib.jobs import hyperparameters
from ftlib.jobs.ledger import Ledger
from ftlib.jobs.spec import Backend, JobSpec
from ftlib.jobs.submit import Poll, stderr_console, submit_once
from ftlib.jobs.submit import wait as wait_for
from ftlib.jsonfile import write_json_atomic
from ftlib.targets.base import Method, Target

# settings keys that shape the job itself; everything else in finetune.<target> is backend options
JOB_KEYS = ("base_model", "method", "hyperparameters", "suffix", "attempt", "seed")
WAIT_KEYS = ("poll_interval_s", "wait_deadline_s")
# read by dvc.yaml and the flows (which export folder the job trains on) and by the submit guard (accept_warnings)
STAGE_KEYS = ("export", "accept_warnings")


def backend_options(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if k not in JOB_KEYS + WAIT_KEYS + STAGE_KEYS}


def _file_info(path: Path) -> dict[str, Any]:
    """Size, sha256 (the job key's view of the bytes) and example count, in one read of the file."""
    h = hashlib.sha256()
    lines = 0
    with open(path, "rb") as fh:
        for line in fh:
            h.update(line)
            lines += bool(line.strip())
    return {"path": path.as_posix(), "bytes": path.stat().st_size, "sha256": h.hexdigest(), "examples": lines}


def _method(target: Target, settings: dict[str, Any]) -> Method:
    method = settings.get("method") or "supervised"
    if method not in target.hyperparameters:
        known = ", ".join(target.methods) or "none (export-only target)"
        raise ValueError(f"finetune.{target.name}.method: {method!r} is not supported by {target.name}; use one "
                         f"of: {known}")
    return method


def _whole_number(settings: dict[str, Any], target: Target, key: str, fix: str) -> int | None:
    value = settings.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"finetune.{target.name}.{key} must be a whole number >= 0, got {value!r}; {fix}")
    return value


def build_spec(export_dir: Path, target: Target, settings: dict[str, Any],
               backend: Backend | None = None) -> tuple[JobSpec, dict[str, Any]]:
    """The job spec (hyperparameters checked, files hashed) and the file facts for the plan; no network."""
    method = _method(target, settings)
    train_name, val_name = layout.method_files(method)
    train = export_dir / train_name
    if not train.is_file():
        raise FileNotFoundError(f"{train}: no {method} training file; run `ftlib export --provider "
                                f"{target.export_name}` first (or set finetune.{target.name}.method)")
    validation = export_dir / val_name
    has_val = validation.is_file() and validation.stat().st_size > 0
    files = {"train": _file_info(train)}
    if has_val:
        files["validation"] = _file_info(validation)
    hp = hyperparameters.check(target, method, settings.get("hyperparameters"))
    attempt = _whole_number(settings, target, "attempt", "raise it to deliberately train again on the same data")
    base_model = settings.get("base_model") or target.default_base_model
    if not base_model:
        raise ValueError(f"finetune.{target.name}.base_model is not set and {target.name} has no default; set it "
                         "(a local folder or a model id)")
    revision = getattr(backend, "base_model_revision", None)
    spec = JobSpec(
        provider=target.name,
        base_model=base_model,
        method=method,
        train_file=train,
        train_sha256=files["train"]["sha256"],
        validation_file=validation if has_val else None,
        validation_sha256=files["validation"]["sha256"] if has_val else None,
        hyperparameters=hp,
        attempt=attempt or 0,
        suffix=settings.get("suffix"),
        options=backend_options(settings),
        seed=_whole_number(settings, target, "seed", "any fixed number makes training repeatable"),
        base_model_revision=revision(base_model) if revision else None,
    )
    return spec, files


def _estimate(spec: JobSpec, target: Target, settings: dict[str, Any], validated: Path | None) -> dict[str, Any]:
    """Tokens and cost for the training file: the validate stage's counts when they describe these exact bytes
    and this base model (no second tokenization), else counted here. A missing piece yields a reason."""
    from ftlib import formats, tokens

    epochs = hyperparameters.value_of(target, spec.method, spec.hyperparameters, "epochs")
    n_epochs = epochs if isinstance(epochs, int) else None
    try:
        stats: Any = None
        recorded = orjson.loads(validated.read_bytes()).get(spec.train_file.name) if validated and \
            validated.is_file() else None
        if recorded and recorded.get("sha256") == spec.train_sha256 and recorded.get("base_model") == spec.base_model:
            stats = {"examples": recorded["examples"], **recorded["tokens"]}
        else:
            fmt = formats.picker(target.name)("sft" if spec.method == "supervised" else "preference")
            stats = tokens.TokenStats()
            with open(spec.train_file, "rb") as fh:
                for n, line in enumerate(fh, 1):
                    if line.strip():
                        ex = fmt.decode(orjson.loads(line), f"{spec.train_file.name}:{n}")
                        stats.add(tokens.count_tokens(ex, spec.provider, spec.base_model))
        return tokens.estimate(stats, spec.provider, spec.base_model, n_epochs=n_epochs,
                               prices=settings.get("prices"))
    except Exception as e:  # the plan must still print; say why the estimate is missing
        return {"available": False, "reason": f"{type(e).__name__}: {e}"}


def plan_or_submit(
    export_dir: Path,
    provider: str,
    settings: dict[str, Any],
    submit: bool,
    wait: bool,
    models_dir: Path = layout.MODELS,
    out: Path | None = None,
    *,
    console: Console | None = None,
    deadline_s: float | None = None,
    poll: Poll | None = None,
    estimate: Path | None = None,
    artifacts: Path | None = None,
    validation: Path | None = None,
    accept_warnings: bool | None = None,
) -> dict[str, Any]:
    """Without submit: a deterministic plan, nothing spent. With submit: check config, submit once, maybe wait.

    `estimate` is the validate stage's estimate file for this export (reused when it matches the bytes).
    Before a job is created the files are checked as uploaded (ftlib.upload_check): errors and secrets refuse,
    warnings about examples refuse unless `accept_warnings` (default: finetune.<target>.accept_warnings);
    `validation` is the validate stage's report, reused when it describes the same bytes.
    `artifacts` is the folder DVC tracks for the job: model.json (key, model id, status) always, plus what a
    finished job produced where the backend has files (the local adapter and its loss curve).
    """
    settings = dict(settings or {})
    target = targets.get(provider)
    backend = target.make_backend(backend_options(settings))
    spec, files = build_spec(Path(export_dir), target, settings, backend)
    ledger = Ledger(models_dir)
    con = console or stderr_console()
    if submit:
        backend.check_config()
        accept = bool(settings.get("accept_warnings")) if accept_warnings is None else accept_warnings
        job_id = submit_once(backend, spec, ledger, console=con,
                             guard=lambda s: _check_upload(s, target, accept, validation, con))
        if wait:
            poll = poll or Poll(start=float(settings.get("poll_interval_s", 5.0)))
            if deadline_s is None and settings.get("wait_deadline_s") is not None:
                deadline_s = float(settings["wait_deadline_s"])
            wait_for(backend, job_id, deadline_s, poll, ledger=ledger, console=con)
    # The same fields whichever entry point (dvc repro, Prefect, a re-run) got here: the file is a DVC output and
    # must be byte-identical across them, so it describes the job for this key, not what this run did.
    job = _job_view(ledger.get(provider, spec.key))
    result: dict[str, Any] = {
        "provider": provider,
        "base_model": spec.base_model,
        "method": spec.method,
        "hyperparameters": spec.hyperparameters,
        "suffix": spec.suffix,
        "attempt": spec.attempt,
        "job_key": spec.key,
        "files": files,
        "estimate": _estimate(spec, target, settings, estimate),
        "submitted": bool(job and job.get("job_id")),
        "job": job,
    }
    if spec.seed is not None:
        result["seed"] = spec.seed
    if not submit:
        _print_plan(con, result)
    if artifacts is not None:
        _write_artifacts(Path(artifacts), backend, spec.key, job)
    if out is not None:
        write_json_atomic(Path(out), result)
    return result


def _check_upload(spec: JobSpec, target: Target, accept: bool, report: Path | None, con: Console) -> None:
    """The exact files the job would upload pass the target's rules (raises UploadRefused naming file:line)."""
    from ftlib import upload_check

    files, shas = {"train": spec.train_file}, {"train": spec.train_sha256}
    if spec.validation_file is not None and spec.validation_sha256:
        files["validation"], shas["validation"] = spec.validation_file, spec.validation_sha256
    say = lambda msg: con.print(msg, markup=False, emoji=False, highlight=False, soft_wrap=True)  # noqa: E731
    upload_check.check_files(files, shas, target, spec.base_model, accept_warnings=accept, report=report, say=say)


def _write_artifacts(folder: Path, backend: Backend, key: str, job: dict[str, Any] | None) -> None:
    """Built in a temp folder and swapped in whole: never an old adapter beside a new job's model.json."""
    with atomic.replacing_dir(folder) as tmp:
        export = getattr(backend, "export_artifacts", None)
        if export is not None and job and job.get("status") == "succeeded":
            export(job["job_id"], tmp)
        write_json_atomic(tmp / "model.json", {"job_key": key, **(job or {"job_id": None, "model_id": None,
                                                                           "status": None})})


def _job_view(record: dict[str, Any] | None) -> dict[str, Any] | None:
    if not record:
        return None
    return {k: record.get(k) for k in ("job_id", "status", "model_id", "error", "console_url")}


def _print_plan(con: Console, plan: dict[str, Any]) -> None:
    p = lambda msg: con.print(msg, markup=False, emoji=False, highlight=False, soft_wrap=True)  # noqa: E731
    p(f"plan for {plan['provider']} {plan['method']} on {plan['base_model']} (job key {plan['job_key']})")
    for role, f in plan["files"].items():
        p(f"  {role}: {f['path']} {f['examples']} examples, {f['bytes']} bytes, sha256 {f['sha256']}")
    p(f"  hyperparameters: {plan['hyperparameters'] or 'provider defaults'}")
    est = plan.get("estimate") or {}
    if est.get("available") is False:
        p(f"  estimate: unavailable ({est['reason']})")
    else:
        p(f"  estimate: {est.get('billed_tokens')} billed tokens over {est.get('n_epochs')} epochs, "
          f"about ${est.get('estimated_cost_usd')} ({est.get('price_source')})")
    job = plan.get("job")
    p(f"  existing job: {job['job_id']} ({job['status']})" if job else "  no job yet: add --submit to start one")
