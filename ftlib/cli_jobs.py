"""Job commands for the `ftlib` CLI: finetune, status, models, cancel, jobs.

Exit codes: 0 ok, 1 job or data failure, 2 usage or configuration. Every error is one line, never a traceback.
Run standalone as `python -m ftlib.cli_jobs ...` (the crash tests do).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from ftlib import layout, targets
from ftlib import params as params_file
from ftlib.errors import ProviderError, exit_codes

if TYPE_CHECKING:  # the job layer (pydantic, SDK adapters) loads when a job command runs, not for `ftlib --help`
    from ftlib.jobs.spec import Backend, JobStatus

ProviderOpt = Annotated[str, typer.Option("--provider", "-p", help="a target with a job backend (`ftlib targets`)")]
ParamsOpt = Annotated[Path, typer.Option("--params", help="params.yaml holding finetune.<target> settings")]
ModelsOpt = Annotated[Path, typer.Option("--models-dir", help="the tracked ledger folder")]
_INTERRUPTED = "interrupted: a submitted job keeps running; re-run to resume"


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def _line(con: Console, msg: str) -> None:
    con.print(msg, markup=False, emoji=False, highlight=False, soft_wrap=True)


def load_settings(path: Path, provider: str) -> dict[str, Any]:
    """finetune.<target> from params.yaml (see ftlib.params.finetune_settings)."""
    return params_file.finetune_settings(params_file.load(path), provider)


def _backend(params: Path, provider: str) -> Backend:
    from ftlib.finetune import backend_options

    backend = targets.get(provider).make_backend(backend_options(load_settings(params, provider)))
    backend.check_config()
    return backend


def _status_line(s: JobStatus) -> str:
    parts = [f"{s.job_id}: {s.raw_state}"]
    if s.model_id:
        parts.append(f"model {s.model_id}")
    if s.error:
        parts.append(f"error: {s.error}")
    if s.console_url:
        parts.append(s.console_url)
    return "  ".join(parts)


def finetune(
    export_dir: Annotated[Path, typer.Argument(help="folder with train.jsonl / validation.jsonl from `ftlib export`")],
    provider: ProviderOpt,
    base_model: Annotated[str | None, typer.Option(help="overrides finetune.<provider>.base_model")] = None,
    method: Annotated[str | None, typer.Option(help="supervised | dpo")] = None,
    params: ParamsOpt = layout.PARAMS,
    submit: Annotated[bool | None, typer.Option(
        "--submit/--plan", help="--submit creates the job (spends money); default: launch.submit in params, else plan")
    ] = None,
    wait: Annotated[bool | None, typer.Option(
        "--wait/--no-wait", help="poll until done (Ctrl-C leaves the job running); default: launch.wait in params")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="write the plan/result JSON here")] = None,
    artifacts: Annotated[Path | None, typer.Option(
        help="folder for DVC: model.json plus what the job produced (the local adapter)")] = None,
    models_dir: ModelsOpt = layout.MODELS,
    poll_interval: Annotated[float | None, typer.Option(help="first polling interval, seconds")] = None,
    deadline: Annotated[float | None, typer.Option(help="stop waiting after this many seconds")] = None,
    accept_warnings: Annotated[bool | None, typer.Option(
        "--accept-warnings", help="submit even if the files have warnings about examples (never errors or secrets); "
        "default: finetune.<provider>.accept_warnings")] = None,
) -> None:
    """Plan a fine-tuning job, or submit it exactly once with --submit (and --wait for the model id).

    Before a job is created the exact files to upload are checked with the target's rules, secrets included."""
    from ftlib.finetune import plan_or_submit
    from ftlib.jobs.submit import Poll

    with exit_codes(_INTERRUPTED):
        loaded = params_file.load(params)
        settings = params_file.finetune_settings(loaded, provider)
        launch = params_file.launch(loaded)
        submit = launch["submit"] if submit is None else submit
        wait = launch["wait"] if wait is None else wait
        if base_model:
            settings["base_model"] = base_model
        if method:
            settings["method"] = method
        poll = Poll(start=poll_interval, cap=max(poll_interval, 1.0)) if poll_interval else None
        export_name = targets.get(provider).export_name
        estimate = layout.report("estimate", export_name)
        result = plan_or_submit(export_dir, provider, settings, submit=submit, wait=wait and submit,
                                models_dir=models_dir, out=out, console=_err(), deadline_s=deadline, poll=poll,
                                estimate=estimate, artifacts=artifacts,
                                validation=layout.report("validation", export_name), accept_warnings=accept_warnings)
        job = result.get("job")
        if job:
            _line(Console(), f"{provider} job {job['job_id']}: {job['status']}"
                  + (f", model {job['model_id']}" if job.get("model_id") else ""))


def status(
    provider: ProviderOpt,
    job_id: Annotated[str | None, typer.Argument(help="provider job id")] = None,
    key: Annotated[str | None, typer.Option("--key", help="ftlib job key (from the plan)")] = None,
    params: ParamsOpt = layout.PARAMS,
    models_dir: ModelsOpt = layout.MODELS,
) -> None:
    """Show a job's state (by id or by ftlib job key) and record it in the ledger."""
    from ftlib.jobs.ledger import Ledger

    with exit_codes(_INTERRUPTED):
        ledger = Ledger(models_dir)
        if not job_id and not key:
            raise ValueError("give a JOB_ID or --key KEY")
        if key and not job_id:
            record = ledger.get(provider, key)
            if not record:
                raise ValueError(f"no {provider} job with key {key} in {models_dir}; run `ftlib models` to list them")
            job_id = record.get("job_id")
            if not job_id:
                raise ProviderError(f"key {key} was never submitted to completion (status {record.get('status')}); "
                                    "re-run `ftlib finetune --submit` to resume")
        s = _backend(params, provider).get_job(job_id)
        ledger.record_status(provider, s)
        _line(Console(), _status_line(s))
        if s.state.value in ("failed", "cancelled"):
            raise typer.Exit(1)


def models(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    models_dir: ModelsOpt = layout.MODELS,
) -> None:
    """Fine-tuned models and jobs recorded under models/, next to the dataset hash they were trained on."""
    from ftlib.jobs.ledger import Ledger

    with exit_codes(_INTERRUPTED):
        records = Ledger(models_dir).records()
        rows = [{**{k: r.get(k) for k in ("dataset_sha256", "provider", "base_model", "status", "model_id", "job_id",
                                          "job_key", "eval_sha256")},
                 "score": (r.get("evaluation") or {}).get("score")} for r in records]  # ftlib evaluate's score
        if as_json:
            typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
            return
        table = Table("dataset", "provider", "base model", "status", "model id", "job id", "eval set", "score")
        for r in rows:
            # str(): a hand-edited or foreign record may hold numbers (a numeric job id) where text is expected
            table.add_row(*(str(r[k] if r[k] is not None else "")[: 12 if k == "dataset_sha256" else None]
                            for k in ("dataset_sha256", "provider", "base_model", "status", "model_id", "job_id")),
                          (r["eval_sha256"] or "")[:12],
                          "" if r["score"] is None else str(r["score"]))
        Console(width=200).print(table) if rows else _line(Console(), f"no jobs recorded in {models_dir}")


def cancel(
    job_id: Annotated[str, typer.Argument(help="provider job id")],
    provider: ProviderOpt,
    params: ParamsOpt = layout.PARAMS,
    models_dir: ModelsOpt = layout.MODELS,
) -> None:
    """Cancel a running job (the ledger keeps the record with status cancelled)."""
    from ftlib.jobs.ledger import Ledger

    with exit_codes(_INTERRUPTED):
        backend = _backend(params, provider)
        backend.cancel(job_id)
        s = backend.get_job(job_id)
        Ledger(models_dir).record_status(provider, s)
        _line(Console(), _status_line(s))


def jobs(
    provider: ProviderOpt,
    limit: Annotated[int, typer.Option(help="how many recent jobs")] = 20,
    params: ParamsOpt = layout.PARAMS,
) -> None:
    """Recent jobs at the provider (including ones ftlib did not create)."""
    with exit_codes(_INTERRUPTED):
        con = Console()
        for s in _backend(params, provider).list_jobs(limit):
            _line(con, _status_line(s))


def register(app: typer.Typer) -> None:
    """Adds the job commands to the main `ftlib` app (ftlib/cli.py calls this)."""
    app.command("finetune")(finetune)
    app.command("status")(status)
    app.command("models")(models)
    app.command("cancel")(cancel)
    app.command("jobs")(jobs)


def _standalone() -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True)
    register(app)
    return app


if __name__ == "__main__":
    _standalone()()
