"""`ftlib evaluate`: score a tuned model on the held-out split (ftlib.evaluate), registered by ftlib/cli.py.

Exit codes as everywhere: 0 ok (also a plan, or a model not trained yet: the report says why), 1 calls failed,
2 usage or configuration. Run standalone as `python -m ftlib.cli_evaluate ...`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ftlib import layout
from ftlib import params as params_file
from ftlib.errors import exit_codes

_INTERRUPTED = "interrupted: the replies received so far are cached; re-run to ask only for the rest"


def evaluate(
    export_dir: Annotated[Path, typer.Argument(help="the export folder the job trained on (its test.jsonl, else "
                                                    "validation.jsonl is the eval set)")],
    provider: Annotated[str, typer.Option("--provider", "-p", help="a target with a generator (`ftlib targets`)")],
    out: Annotated[Path | None, typer.Option(help="report JSON (a DVC metric); per-example results go beside it "
                                                  "as <name>.examples.jsonl, worst first")] = None,
    params: Annotated[Path, typer.Option("--params", help="params.yaml (finetune.<target>, evaluate:, launch:)")
                      ] = layout.PARAMS,
    submit: Annotated[bool | None, typer.Option(
        "--submit/--plan", help="--submit calls the model for replies not cached yet (spends money); default: "
                                "launch.submit in params, else plan")] = None,
    model: Annotated[str | None, typer.Option(help="evaluate this model id instead of the job's")] = None,
    base: Annotated[bool | None, typer.Option(
        "--base/--no-base", help="also evaluate the base model (the report shows the gain); default: "
                                 "evaluate.compare_base")] = None,
    models_dir: Annotated[Path, typer.Option("--models-dir", help="the tracked ledger folder")] = layout.MODELS,
) -> None:
    """Score the tuned model on held-out examples; replies are cached, so a re-run calls nothing."""
    from ftlib.evaluate import evaluate as run

    with exit_codes(_INTERRUPTED):
        loaded = params_file.load(params)
        submit = params_file.launch(loaded)["submit"] if submit is None else submit
        result = run(export_dir, provider, loaded, submit=submit, models_dir=models_dir, out=out, model_id=model,
                     compare_base=base, console=Console(stderr=True, highlight=False))
        report = result.report
        line = Console(soft_wrap=True)
        if report["evaluated"]:
            scores = report["scores"]
            gain = report.get("gain", {}).get("score")
            line.print(f"{provider} {report['model_id']}: score {scores['score']} on {scores['examples']} examples"
                       + (f" (base {report['base']['scores']['score']}, gain {gain:+})" if gain is not None else ""),
                       markup=False, highlight=False)
        else:
            plan = report["plan"]
            cost = plan.get("estimated_cost_usd")
            line.print(f"{provider}: not evaluated; {plan['calls']} call(s) needed"
                       + (f", about ${cost}" if cost is not None else ""), markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)


if __name__ == "__main__":
    _app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True)
    register(_app)
    _app()
