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

from ftlib.jsonfile import write_json_atomic
from ftlib.providers import get_provider, jobs
from ftlib.providers.base import JobSpec, Method, Provider
from ftlib.providers.jobs import Poll, check_hyperparameters, stderr_console, submit_once
from ftlib.registry import Registry

# settings keys that shape the job itself; everything else in finetune.<provider> is provider options
JOB_KEYS = ("base_model", "method", "hyperparameters", "suffix", "attempt")
WAIT_KEYS = ("poll_interval_s", "wait_deadline_s")
FILES: dict[str, tuple[str, str]] = {
    "supervised": ("train.jsonl", "validation.jsonl"),
    "dpo": ("train.preference.jsonl", "validation.preference.jsonl"),
}


def _file_info(path: Path) -> dict[str, Any]:
    """Size, sha256 (the job key's view of the bytes) and example count, in one read of the file."""
    h = hashlib.sha256()
    lines = 0
    with open(path, "rb") as fh:
        for line in fh:
            h.update(line)
            lines += bool(line.strip())
    return {"path": path.as_posix(), "bytes": path.stat().st_size, "sha256": h.hexdigest(), "examples": lines}


def _method(settings: dict[str, Any]) -> Method:
    method = settings.get("method") or "supervised"
    if method not in FILES:
        raise ValueError(f"finetune.method: {method!r} is not supported; use one of: {', '.join(FILES)}")
    return method


def build_spec(export_dir: Path, provider: Provider, settings: dict[str, Any]) -> tuple[JobSpec, dict[str, Any]]:
    """The job spec (hyperparameters checked, files hashed) and the file facts for the plan; no network."""
    method = _method(settings)
    train_name, val_name = FILES[method]
    train = export_dir / train_name
    if not train.is_file():
        raise FileNotFoundError(f"{train}: no {method} training file; run `ftlib export` for {provider.name} first "
                                f"(or set finetune.{provider.name}.method)")
    validation = export_dir / val_name
    has_val = validation.is_file() and validation.stat().st_size > 0
    files = {"train": _file_info(train)}
    if has_val:
        files["validation"] = _file_info(validation)
    hp = check_hyperparameters(provider, method, settings.get("hyperparameters"))
    attempt = settings.get("attempt", 0)
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
        raise ValueError(f"finetune.{provider.name}.attempt must be a whole number >= 0, got {attempt!r}; "
                         "raise it to deliberately train again on the same data")
    options = {k: v for k, v in settings.items() if k not in JOB_KEYS + WAIT_KEYS}
    spec = JobSpec(
        provider=provider.name,
        base_model=settings.get("base_model") or provider.default_base_model,
        method=method,
        train_file=train,
        train_sha256=files["train"]["sha256"],
        validation_file=validation if has_val else None,
        validation_sha256=files["validation"]["sha256"] if has_val else None,
        hyperparameters=hp,
        attempt=attempt,
        suffix=settings.get("suffix"),
        options=options,
    )
    return spec, files


def _estimate(spec: JobSpec, settings: dict[str, Any]) -> dict[str, Any]:
    """Tokens and cost from the exported training file; a missing piece yields a reason instead of a number."""
    try:
        from ftlib import formats, tokens

        kind = "sft" if spec.method == "supervised" else "preference"
        fmt = formats.get(formats.PROVIDER_FORMATS[spec.provider][kind] or "")
        stats = tokens.TokenStats()
        with open(spec.train_file, "rb") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    ex = fmt.decode(orjson.loads(line), f"{spec.train_file.name}:{n}")
                    stats.add(tokens.count_tokens(ex, spec.provider, spec.base_model))
        n_epochs = spec.hyperparameters.get("n_epochs")
        return tokens.estimate(stats, spec.provider, spec.base_model,
                               n_epochs=n_epochs if isinstance(n_epochs, int) else None,
                               prices=settings.get("prices"))
    except Exception as e:  # the plan must still print; say why the estimate is missing
        return {"available": False, "reason": f"{type(e).__name__}: {e}"}


def plan_or_submit(
    export_dir: Path,
    provider: str,
    settings: dict[str, Any],
    submit: bool,
    wait: bool,
    models_dir: Path = Path("models"),
    out: Path | None = None,
    *,
    console: Console | None = None,
    deadline_s: float | None = None,
    poll: Poll | None = None,
) -> dict[str, Any]:
    """Without submit: a deterministic plan, nothing spent. With submit: check config, submit once, maybe wait."""
    settings = dict(settings or {})
    adapter = get_provider(provider, {k: v for k, v in settings.items() if k not in JOB_KEYS + WAIT_KEYS})
    spec, files = build_spec(Path(export_dir), adapter, settings)
    registry = Registry(models_dir)
    con = console or stderr_console()
    if submit:
        adapter.check_config()
        job_id = submit_once(adapter, spec, registry, console=con)
        if wait:
            poll = poll or Poll(start=float(settings.get("poll_interval_s", 5.0)))
            if deadline_s is None and settings.get("wait_deadline_s") is not None:
                deadline_s = float(settings["wait_deadline_s"])
            jobs.wait(adapter, job_id, deadline_s, poll, registry=registry, console=con)
    # The same fields whichever entry point (dvc repro, Prefect, a re-run) got here: the file is a DVC output and
    # must be byte-identical across them, so it describes the job for this key, not what this run did.
    job = _job_view(registry.get(provider, spec.key))
    result: dict[str, Any] = {
        "provider": provider,
        "base_model": spec.base_model,
        "method": spec.method,
        "hyperparameters": spec.hyperparameters,
        "suffix": spec.suffix,
        "attempt": spec.attempt,
        "job_key": spec.key,
        "files": files,
        "estimate": _estimate(spec, settings),
        "submitted": bool(job and job.get("job_id")),
        "job": job,
    }
    if not submit:
        _print_plan(con, result)
    if out is not None:
        write_json_atomic(Path(out), result)
    return result


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
