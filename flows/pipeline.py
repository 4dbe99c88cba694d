"""Prefect flows over the same pipeline `dvc repro` runs.

DVC builds the data (it alone decides what is stale), ftlib.finetune submits each job exactly once (idempotent by
job key through the ledger under models/ and a lookup at the provider, never through Prefect's result cache), the
wait happens in a Prefect task outside DVC (so no workspace lock is held for hours), and a final `dvc repro` lets
the finetune stages record the finished jobs in dvc.lock and reports/ exactly as a plain `dvc repro` would.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, runtime, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from rich.console import Console

from flows import cards
from flows import params as cfg
from flows.dvc_cli import DvcError, run_dvc
from ftlib import layout
from ftlib.evaluate import evaluate
from ftlib.finetune import plan_or_submit

RETRY_DELAY_S = 10


class _LogStream(io.TextIOBase):
    """A file for rich Consoles that forwards whole lines to the Prefect run logger."""

    def __init__(self, log: Any) -> None:
        self._log = log
        self._buf = ""

    def write(self, s: str) -> int:
        self._buf += s
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            if line.strip():
                self._log(line)
        return len(s)

    def flush(self) -> None:
        if self._buf.strip():
            self._log(self._buf)
        self._buf = ""


def _console() -> Console:
    return Console(file=_LogStream(get_run_logger().info), width=200, highlight=False, no_color=True,
                   force_terminal=False, soft_wrap=True)


def _project(project_dir: str) -> Path:
    path = Path(project_dir).resolve()
    if not (path / "dvc.yaml").is_file():
        raise FileNotFoundError(f"{path}: no dvc.yaml here; set project_dir to the ftlib project folder")
    return path


def _retry_if_busy(task: Any, task_run: Any, state: Any) -> bool:
    """Retry `dvc repro` only when another dvc command held the lock; a data error fails at once."""
    try:
        state.result()
    except DvcError as e:
        return e.busy
    except Exception:
        return False
    return False


def _run_note() -> str:
    run = runtime.flow_run
    return f"Flow run `{run.name}` ({run.id}), {datetime.now(UTC).isoformat(timespec='seconds')}"


# -- tasks ---------------------------------------------------------------------------------------

@task(name="dvc-repro", retries=3, retry_delay_seconds=RETRY_DELAY_S, retry_condition_fn=_retry_if_busy,
      cache_policy=NO_CACHE)
def dvc_repro(project_dir: str, targets: list[str] | None = None, force: bool = False) -> str:
    """`dvc repro [targets]`, output streamed to the run log; DVC's own error message fails the task."""
    args = ["repro", *(["--force", "--single-item"] if force else []), *(targets or [])]
    return run_dvc(args, Path(project_dir), get_run_logger().info)


@task(name="dataset-card", cache_policy=NO_CACHE)
def publish_dataset_card(project_dir: str) -> str:
    card = cards.dataset_card(Path(project_dir), _run_note())
    create_markdown_artifact(card, key="dataset-card", description="Splits, file hashes, validation, cost estimate")
    return card


@task(name="submit", retries=3, retry_delay_seconds=RETRY_DELAY_S, cache_policy=NO_CACHE,
      task_run_name="submit-{provider}")
def submit_job(project_dir: str, params_file: str, provider: str, submit: bool) -> dict[str, Any]:
    """Plan, or submit once: a retry, a lost cache or a second worker finds the same job by its key."""
    project = Path(project_dir)
    return plan_or_submit(cfg.export_dir(project, project / params_file, provider), provider,
                          cfg.provider_settings(project / params_file, provider), submit=submit, wait=False,
                          models_dir=project / layout.MODELS, out=None, console=_console())


@task(name="wait", retries=2, retry_delay_seconds=RETRY_DELAY_S, cache_policy=NO_CACHE,
      task_run_name="wait-{provider}")
def wait_job(project_dir: str, params_file: str, provider: str, submitted: dict[str, Any]) -> dict[str, Any]:
    """Poll the job to a terminal state, outside DVC; submit_once finds the ledger entry, so nothing is created."""
    project = Path(project_dir)
    result = plan_or_submit(cfg.export_dir(project, project / params_file, provider), provider,
                            cfg.provider_settings(project / params_file, provider), submit=True, wait=True,
                            models_dir=project / layout.MODELS, out=None, console=_console())
    if result["job_key"] != submitted["job_key"]:
        raise RuntimeError(f"{provider}: the export or params changed while waiting (job key {submitted['job_key']} "
                           f"-> {result['job_key']}); re-run the flow")
    return result


@task(name="evaluate", retries=1, retry_delay_seconds=RETRY_DELAY_S, cache_policy=NO_CACHE,
      task_run_name="evaluate-{provider}")
def evaluate_model(project_dir: str, params_file: str, provider: str, submit: bool) -> dict[str, Any]:
    """Score the finished model on the held-out split; replies are cached by model id and prompt, so the
    evaluate stage `dvc repro` runs next (and any retry) makes no second call. DVC writes the tracked report."""
    project = Path(project_dir)
    params = cfg.load_params(project / params_file)
    return evaluate(cfg.export_dir(project, project / params_file, provider), provider, params, submit=submit,
                    project=project, models_dir=project / layout.MODELS, out=None, console=_console()).report


@task(name="publish-evaluations", cache_policy=NO_CACHE)
def publish_evaluations(reports: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = cards.eval_rows(reports)
    create_table_artifact(rows, key="model-evaluations",
                          description=f"Each tuned model's score on the held-out split. {_run_note()}")
    return rows


@task(name="publish-jobs", cache_policy=NO_CACHE)
def publish_jobs(project_dir: str, jobs: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    project = Path(project_dir)
    rows = cards.jobs_rows(project)
    create_table_artifact(rows, key="finetune-jobs",
                          description=f"Jobs and models by dataset sha256 (models/registry.json). {_run_note()}")
    for provider, url in cards.console_links(jobs).items():
        create_link_artifact(url, link_text=f"{provider} fine-tuning console", key=f"{provider}-console")
    return rows


# -- flows ---------------------------------------------------------------------------------------

@flow(name="build-dataset", log_prints=True)
def build_dataset(project_dir: str = ".", params_file: str = "params.yaml") -> dict[str, Any]:
    """Ingest, split, export and validate through `dvc repro` (only stale stages run), then a dataset card."""
    project = _project(project_dir)
    cfg.load_params(project / params_file)  # fail early on a broken params file
    dvc_repro(str(project), ["validate"])
    publish_dataset_card(str(project))
    manifest = cards.read_json(project / layout.SPLITS / layout.MANIFEST) or {}
    return {"splits": manifest.get("counts") or {}}


def _record_in_dvc(project: Path, providers: list[str], all_configured: bool,
                   jobs: dict[str, dict[str, Any] | None]) -> None:
    """Let DVC's finetune and evaluate stages record the jobs and scores; force a finetune stage only when its
    report predates the job (then its evaluate stage is stale and runs, from the cache the flow filled)."""
    dvc_repro(str(project), None if all_configured else [f"evaluate@{p}" for p in providers])
    forced = [p for p, job in jobs.items()
              if job and not _report_describes(project / layout.report("finetune", p), job)]
    for provider in forced:
        dvc_repro(str(project), [f"finetune@{provider}"], force=True)
    if forced:
        dvc_repro(str(project), [f"evaluate@{p}" for p in forced])


def _report_describes(report: Path, job: dict[str, Any]) -> bool:
    data = cards.read_json(report) or {}
    recorded = data.get("job") or {}
    return recorded.get("job_id") == job.get("job_id") and recorded.get("status") == job.get("status")


@flow(name="finetune-models", log_prints=True)
def finetune_models(providers: list[str] | None = None, submit: bool | None = None,
                    params_file: str = "params.yaml", project_dir: str = ".") -> dict[str, Any]:
    """Submit (or plan) per provider concurrently, wait outside DVC, then let `dvc repro` record the results."""
    project = _project(project_dir)
    params = cfg.load_params(project / params_file)
    chosen = cfg.resolve_providers(params, providers)
    do_submit = cfg.default_submit(params) if submit is None else submit
    logger = get_run_logger()
    logger.info("providers: %s; submit: %s", ", ".join(chosen) or "none", do_submit)
    submitted = {p: submit_job.submit(str(project), params_file, p, do_submit) for p in chosen}
    waits: dict[str, PrefectFuture[dict[str, Any]]] = {}
    if do_submit:
        waits = {p: wait_job.submit(str(project), params_file, p, submitted[p]) for p in chosen}
    results: dict[str, dict[str, Any]] = {}
    failures: dict[str, BaseException] = {}
    for p in chosen:
        try:
            results[p] = (waits.get(p) or submitted[p]).result()
        except Exception as e:  # one provider failing must not hide the others' finished jobs
            failures[p] = e
            logger.error("%s: %s", p, e)
    jobs = {p: r.get("job") for p, r in results.items()}
    done = [p for p in chosen if p in results]
    evals = {p: evaluate_model.submit(str(project), params_file, p, do_submit) for p in done}
    reports: dict[str, dict[str, Any]] = {}
    for p, fut in evals.items():
        try:
            reports[p] = fut.result()
        except Exception as e:  # a model that could not be scored must not hide the others
            failures[p] = e
            logger.error("%s evaluation: %s", p, e)
    if done and not do_submit and cfg.default_submit(params):
        logger.warning("launch.submit is true in %s, so `dvc repro` would submit jobs; not recording with DVC "
                       "because this run has submit=False", params_file)
    elif done:
        _record_in_dvc(project, done, all_configured=not failures and done == cfg.configured_providers(params),
                       jobs={p: jobs[p] for p in done if do_submit})
    publish_jobs(str(project), jobs)
    publish_evaluations(reports)
    if failures:
        raise RuntimeError("fine-tuning failed for " + "; ".join(f"{p}: {e}" for p, e in failures.items()))
    return {p: {"job_key": r["job_key"], "job": jobs[p], "submitted": r["submitted"]} for p, r in results.items()}


@flow(name="finetune-pipeline", log_prints=True)
def finetune_pipeline(providers: list[str] | None = None, submit: bool | None = None,
                      params_file: str = "params.yaml", project_dir: str = ".") -> dict[str, Any]:
    """Everything: build the dataset (DVC), then submit, wait and record each provider's job."""
    build_dataset(project_dir=project_dir, params_file=params_file)
    return finetune_models(providers=providers, submit=submit, params_file=params_file, project_dir=project_dir)
