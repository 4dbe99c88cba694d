"""The evaluate stage: score the tuned model of this export and settings on the held-out split, spending once.

dvc.yaml (through `ftlib evaluate`) and the Prefect flow call `evaluate`. The model is the one the finetune stage's
job key names in the ledger, so the score lands next to that model id and the dataset hash it was trained on.
Replies come from the cache when it has them; the provider is asked only in submit mode (`launch.submit: true` or
--submit) with credentials, and only for prompts without a cached reply. Otherwise the stage plans: how many calls,
about what cost. Like the finetune report, the eval report describes the model and eval set, not what this run
did, so it is byte-identical whichever entry point (or a re-run that made zero calls) wrote it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from ftlib import layout, targets
from ftlib import params as params_file
from ftlib.errors import ConfigError, ProviderError
from ftlib.evaluate import evalset, runner, scoring
from ftlib.evaluate import settings as eval_settings
from ftlib.evaluate.cache import ReplyCache
from ftlib.evaluate.evalset import Case, EvalSet
from ftlib.evaluate.generator import Generator, NotServed, Price, Reply
from ftlib.finetune import backend_options, build_spec
from ftlib.jobs.ledger import Ledger
from ftlib.jobs.submit import stderr_console
from ftlib.jsonfile import write_json_atomic
from ftlib.records import Example
from ftlib.targets.base import METHOD_KIND, Target

WORST = 5  # examples named in the report; all of them are in the JSONL, worst first


@dataclass(frozen=True)
class Run:
    """One model to ask: the tuned model, or the base model it started from."""

    role: str  # "tuned" | "base"
    model_id: str
    cache: ReplyCache
    todo: list[Case]
    metrics_due: bool  # the generator computes dataset figures (loss) not cached yet


@dataclass(frozen=True)
class Outcome:
    report: dict[str, Any]
    calls: int  # requests made by this run (0 when everything came from the cache)


def evaluate(
    export_dir: Path,
    provider: str,
    params: dict[str, Any],
    *,
    submit: bool,
    project: Path = Path(),
    models_dir: Path | None = None,
    out: Path | None = None,
    model_id: str | None = None,
    compare_base: bool | None = None,
    console: Console | None = None,
    generator_options: dict[str, Any] | None = None,
) -> Outcome:
    """Score the model on the eval set (from cache, or by calling it in submit mode), write the report and the
    per-example JSONL (`out` and beside it), and record the summary with the job in the ledger.

    `model_id` evaluates that model instead of the one the finetune settings name. `generator_options` adds
    objects params.yaml cannot hold (credentials for custom auth). Raises ProviderError when calls failed (the
    replies received stay cached; nothing is written).
    """
    con = console or stderr_console()
    say: Callable[[str], None] = lambda msg: con.print(msg, markup=False, emoji=False, highlight=False,  # noqa: E731
                                                       soft_wrap=True)
    target = targets.get(provider)
    ft = params_file.finetune_settings(params, provider)
    probe = target.make_generator()  # cheap: SDKs load on the first call
    shared, own = eval_settings.read(params, provider, probe.settings_keys)
    gen = target.make_generator({**backend_options(ft), **own, **(generator_options or {})})
    if compare_base is not None:
        shared = shared.model_copy(update={"compare_base": compare_base})
    ledger = Ledger(models_dir or project / layout.MODELS)
    job = _job(Path(export_dir), target, ft, ledger, model_id)
    data = evalset.load(Path(export_dir), target.export_name, METHOD_KIND[job["method"]])
    settings = shared.generation
    cache_root = project / layout.EVAL_CACHE

    models = [("tuned", job["model_id"], job.get("revision"))]
    base_id = _base_id(gen, job.get("base_model")) if shared.compare_base else None
    if shared.compare_base and base_id:
        models.append(("base", base_id, job.get("base_revision")))
    runs = [_run(role, mid, rev, data, gen, cache_root, provider, settings) for role, mid, rev in models if mid]

    reason = _why_not(job, submit, gen)
    calls = 0
    due = [r for r in runs if r.todo or r.metrics_due]
    if due and reason is None:
        try:
            calls = _ask(due, data, gen, settings, shared, provider, say)
        except NotServed as e:  # a Claude custom model without Provisioned Throughput: a plan that says so
            reason = f"the model cannot be called yet, nothing more was asked: {e}"
            say(f"[{provider}] warning: {reason}")
        runs = [_run(r.role, r.model_id, r.cache.header["revision"], data, gen, cache_root, provider, settings)
                for r in runs]

    complete = bool(runs) and not any(r.todo or r.metrics_due for r in runs)
    if complete:
        report, rows = _scored(provider, job, data, runs, gen, shared, project)
        _record(ledger, provider, job, data, report)
        say(f"[{provider}] {job['model_id']}: score {report['scores']['score']} on {len(data.cases)} examples of "
            f"{data.path.name} (sha256 {data.sha256[:12]})" + (f", {calls} call(s) made" if calls else
                                                               ", all replies from the cache"))
    else:
        report = _plan(provider, job, data, runs, gen, shared, reason or "")
        rows = []
        _print_plan(say, report)
    if out is not None:
        _write_lines(layout.eval_examples(Path(out)), rows)
        write_json_atomic(Path(out), report)
    return Outcome(report, calls)


# -- the model ---------------------------------------------------------------------------------------------------------

def _job(export_dir: Path, target: Target, ft: dict[str, Any], ledger: Ledger, model_id: str | None) -> dict[str, Any]:
    """The model to evaluate and what it was trained from: the ledger record of this export's job key."""
    if model_id is not None:
        record = next((r for r in ledger.records(target.name) if r.get("model_id") == model_id), None) or {}
        return {"model_id": model_id, "record": record or None, "job_key": record.get("job_key"),
                "method": record.get("method") or ft.get("method") or "supervised",
                "base_model": record.get("base_model") or ft.get("base_model") or target.default_base_model,
                "base_revision": record.get("base_model_revision"), "dataset_sha256": record.get("dataset_sha256")}
    backend = target.make_backend(backend_options(ft))
    spec, _ = build_spec(export_dir, target, ft, backend)
    record = ledger.get(target.name, spec.key)
    return {"model_id": (record or {}).get("model_id"), "record": record, "job_key": spec.key, "method": spec.method,
            "base_model": spec.base_model, "base_revision": spec.base_model_revision,
            "dataset_sha256": spec.train_sha256, "status": (record or {}).get("status"),
            "job_id": (record or {}).get("job_id")}


def _ask(due: list[Run], data: EvalSet, gen: Generator, settings: Any, shared: Any, provider: str,
         say: Callable[[str], None]) -> int:
    """Ask each model for the replies its cache lacks; the number of calls made. ProviderError when calls failed."""
    calls = 0
    failures: list[tuple[str, str]] = []
    for run in due:
        with run.cache.locked():  # a second entry point on the same model waits, then finds the replies
            todo = runner.missing(data.cases, run.cache)
            if todo or _metrics_due(gen, run.cache, data):
                model = gen.resolve(run.model_id, run.role == "tuned")
                if todo:
                    say(f"[{provider}] asking {run.role} model {run.model_id} for {len(todo)} of "
                        f"{len(data.cases)} replies ({len(data.cases) - len(todo)} cached)")
                result = runner.ask(gen, model, todo, settings, run.cache, shared.concurrency, say)
                calls += result.calls
                failures += result.failures
                if not result.failures and _metrics_due(gen, run.cache, data):
                    run.cache.add_metrics(data.sha256, gen.dataset_metrics(model, [c.example for c in data.cases]))
    if failures:
        first = "; ".join(f"{src}: {msg}" for src, msg in failures[:3])
        raise ProviderError(f"{provider}: {len(failures)} call(s) failed ({first}); the replies received are "
                            "cached, so re-running asks only for the failed ones")
    return calls


def _base_id(gen: Generator, base_model: str | None) -> str | None:
    hook = getattr(gen, "base_model_id", None)
    return hook(base_model) if hook is not None and base_model else None


def _why_not(job: dict[str, Any], submit: bool, gen: Generator) -> str | None:
    """Why nothing may be called (a plan instead), or None."""
    if not job["model_id"]:
        if not job.get("job_id"):
            return (f"no model yet: no job for key {job['job_key']} in the ledger; train it first (`ftlib finetune "
                    "--submit --wait`, or launch.submit: true)")
        return (f"no model yet: job {job['job_id']} is {job.get('status') or 'not finished'}; wait for it (`ftlib "
                f"status --key {job['job_key']}` or `ftlib finetune --submit --wait`) and evaluate again")
    if not submit:
        return "plan mode (launch.submit is false): nothing was called; evaluate with --submit or launch.submit: true"
    try:
        gen.check_config()
    except ConfigError as e:
        return f"not configured, nothing was called: {e}"
    return None


def _metrics_due(gen: Generator, cache: ReplyCache, data: EvalSet) -> bool:
    return getattr(gen, "dataset_metrics", None) is not None and data.sha256 not in cache.metrics


def _run(role: str, model_id: str, revision: str | None, data: EvalSet, gen: Generator, root: Path, provider: str,
         settings: Any) -> Run:
    cache = ReplyCache(root, provider, model_id, settings, revision)
    return Run(role, model_id, cache, runner.missing(data.cases, cache), _metrics_due(gen, cache, data))


# -- reports -----------------------------------------------------------------------------------------------------------

def _head(provider: str, job: dict[str, Any], data: EvalSet, shared: Any) -> dict[str, Any]:
    return {"provider": provider, "model_id": job["model_id"], "job_key": job["job_key"],
            "base_model": job.get("base_model"), "dataset_sha256": job.get("dataset_sha256"),
            "eval_set": data.describe(), "generation": shared.generation.to_dict(),
            "skipped": [i.to_dict() for i in data.skipped]}


def _price(gen: Generator, shared: Any, model_id: str, base_model: str | None, tuned: bool) -> Price:
    built_in = gen.price(model_id, base_model, tuned)
    if shared.input_price_per_million is None and shared.output_price_per_million is None:
        return built_in
    return Price(shared.input_price_per_million if shared.input_price_per_million is not None
                 else built_in.input_per_million,
                 shared.output_price_per_million if shared.output_price_per_million is not None
                 else built_in.output_per_million, "params.yaml evaluate prices")


def _cost(price: Price, input_tokens: int, output_tokens: int) -> float | None:
    if price.input_per_million is None or price.output_per_million is None:
        return None
    return round((input_tokens * price.input_per_million + output_tokens * price.output_per_million) / 1e6, 6)


def _plan(provider: str, job: dict[str, Any], data: EvalSet, runs: list[Run], gen: Generator, shared: Any,
          reason: str) -> dict[str, Any]:
    """What evaluating would take: calls per model and an estimate of tokens and cost (nothing is called)."""
    from ftlib import tokens

    todo = runs or [Run("tuned", "", None, list(data.cases), False)]  # type: ignore[arg-type]
    per_model = []
    for run in todo:
        est: dict[str, Any] = {"role": run.role, "model_id": run.model_id or None, "calls": len(run.todo),
                               "cached": len(data.cases) - len(run.todo)}
        try:
            spec = tokens.spec_for(provider, job.get("base_model"))
            tin = sum(tokens.count_with_spec(c.prompt, spec) for c in run.todo)
            tout = sum(min(tokens.count_with_spec(Example(messages=(c.reference,)), spec), shared.max_tokens)
                       for c in run.todo)
            price = _price(gen, shared, run.model_id, job.get("base_model"), run.role == "tuned")
            est.update(input_tokens=tin, output_tokens=tout, estimated_cost_usd=_cost(price, tin, tout),
                       price_source=price.source)
        except Exception as e:  # the plan must still print; say why the estimate is missing
            est["estimate_unavailable"] = f"{type(e).__name__}: {e}"
        per_model.append(est)
    costs = [m.get("estimated_cost_usd") for m in per_model]
    return {**_head(provider, job, data, shared), "evaluated": False, "reason": reason,
            "plan": {"calls": sum(m["calls"] for m in per_model), "models": per_model,
                     "estimated_cost_usd": round(sum(costs), 6) if all(c is not None for c in costs) else None}}


def _print_plan(say: Callable[[str], None], report: dict[str, Any]) -> None:
    ev = report["eval_set"]
    say(f"[{report['provider']}] not evaluated: {report['reason']}")
    say(f"  eval set: {ev['file']} ({ev['split']}), {ev['examples']} examples, sha256 {ev['sha256']}")
    for m in report["plan"]["models"]:
        cost = m.get("estimated_cost_usd")
        money = f"about ${cost}" if cost is not None else f"cost not per token ({m.get('price_source')})" \
            if "price_source" in m else f"estimate unavailable ({m.get('estimate_unavailable')})"
        say(f"  {m['role']} model {m['model_id'] or '(not trained yet)'}: {m['calls']} call(s), {m['cached']} cached; "
            f"~{m.get('input_tokens', '?')} input + ~{m.get('output_tokens', '?')} output tokens, {money}")


def _scored(provider: str, job: dict[str, Any], data: EvalSet, runs: list[Run], gen: Generator, shared: Any,
            project: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    validator = shared.schema(project)
    by_role = {r.role: r for r in runs}
    tuned = by_role["tuned"]
    base = by_role.get("base")
    rows = []
    for n, case in enumerate(data.cases):
        reply = tuned.cache.replies[case.key]
        row: dict[str, Any] = {"n": n, "source": case.source, "prompt": _last_user(case), **_reference(case),
                               "reply": _reply(reply), **scoring.score(case.reference, reply, validator)}
        if base is not None:
            other = scoring.score(case.reference, base.cache.replies[case.key], validator)
            row["base"] = {"reply": _reply(base.cache.replies[case.key]), "score": other["score"]}
            row["gain"] = round(row["score"] - other["score"], 6)
        rows.append(row)
    summary = scoring.summarize([_metrics_only(r) for r in rows])
    rows.sort(key=lambda r: (r["score"], r["n"]))  # worst first: `head` shows what to fix
    report = {**_head(provider, job, data, shared), "evaluated": True, "scores": summary,
              "worst": [{"source": r["source"], "score": r["score"]} for r in rows[:WORST]],
              **_usage(gen, shared, tuned, data, job, True)}
    if tuned.cache.metrics.get(data.sha256):
        report["metrics"] = tuned.cache.metrics[data.sha256]
    if base is not None:
        base_rows = [scoring.score(c.reference, base.cache.replies[c.key], validator) for c in data.cases]
        base_summary = scoring.summarize(base_rows)
        report["base"] = {"model_id": base.model_id, "scores": base_summary,
                          **_usage(gen, shared, base, data, job, False)}
        if base.cache.metrics.get(data.sha256):
            report["base"]["metrics"] = base.cache.metrics[data.sha256]
        report["gain"] = scoring.gain(summary, base_summary)
        if "metrics" in report and "metrics" in report["base"]:
            report["gain"]["metrics"] = scoring.gain(report["metrics"], report["base"]["metrics"])
    return report, rows


def _metrics_only(row: dict[str, Any]) -> dict[str, Any]:
    skip = {"n", "source", "prompt", "reference", "reference_tool_calls", "reply", "base", "gain"}
    return {k: v for k, v in row.items() if k not in skip}


def _usage(gen: Generator, shared: Any, run: Run, data: EvalSet, job: dict[str, Any], tuned: bool) -> dict[str, Any]:
    replies = [run.cache.replies[c.key] for c in data.cases]
    tin = sum(r.input_tokens or 0 for r in replies)
    tout = sum(r.output_tokens or 0 for r in replies)
    price = _price(gen, shared, run.model_id, job.get("base_model"), tuned)
    return {"usage": {"input_tokens": tin, "output_tokens": tout}, "cost_usd": _cost(price, tin, tout),
            "price_source": price.source}


def _last_user(case: Case) -> str:
    return next((m.content for m in reversed(case.prompt.messages) if m.role == "user"), "")


def _reference(case: Case) -> dict[str, Any]:
    ref = case.reference
    out: dict[str, Any] = {"reference": ref.content}
    if ref.tool_calls:
        out["reference_tool_calls"] = [[c.name, c.arguments] for c in ref.tool_calls]
    return out


def _reply(reply: Reply) -> Any:
    return {"text": reply.text, "tool_calls": [list(c) for c in reply.tool_calls]} if reply.tool_calls else reply.text


def _record(ledger: Ledger, provider: str, job: dict[str, Any], data: EvalSet, report: dict[str, Any]) -> None:
    """The score goes next to the model id and dataset hash in the ledger (no-op when unchanged)."""
    record = job.get("record")
    if not record or record.get("model_id") != job["model_id"]:
        return
    evaluation: dict[str, Any] = {"eval_file": data.path.name, "examples": len(data.cases),
                                  "score": report["scores"]["score"], "scores": report["scores"],
                                  "generation": report["generation"]}
    if "metrics" in report:
        evaluation["metrics"] = report["metrics"]
    if "base" in report:
        evaluation["base_score"] = report["base"]["scores"]["score"]
    ledger.update(provider, record["job_key"], eval_sha256=data.sha256, evaluation=evaluation)


def _write_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    """All or nothing: a temp file beside the target, fsynced, then renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) + b"\n" for r in rows)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
