"""One generic check of a target's declared hyperparameters (pydantic models), with messages that name the fix.

A key spelled the way another target spells it (n_epochs for Bedrock, epochCount for OpenAI) gets the name this
target uses for the same thing, found through each field's declared `concept`.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ftlib import targets
from ftlib.targets.base import Method, Target


def _concepts(target: Target) -> dict[str, str]:
    """field name -> concept for every hyperparameter model of a target."""
    out: dict[str, str] = {}
    for model in target.hyperparameters.values():
        for name, info in model.model_fields.items():
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            if isinstance(extra.get("concept"), str):
                out[name] = extra["concept"]
    return out


def spelling_hint(target: Target, method: Method, key: str) -> str:
    """'; Bedrock spells it epochCount' style help for a key another target uses."""
    concept = next((c for t in targets.all_targets() if t is not target for k, c in _concepts(t).items()
                    if k == key), None)
    if concept is None:
        return ""
    own = target.hyperparameters[method].model_fields
    match = next((k for k, c in _concepts(target).items() if c == concept and k in own), None)
    if match is None:  # e.g. a batch size, which Vertex picks itself
        return f"; {key} is another target's name for {concept.replace('_', ' ')}, which {target.name} does not let " \
               "you set: leave it out"
    return f"; {key} is another target's name for it: {target.name} calls it {match}"


def check(target: Target, method: Method, hp: dict[str, Any] | None) -> dict[str, Any]:
    """Validated values, before any network call: unknown keys and out-of-range values raise ValueError.

    Keys with no value and no default are left out, so the job key only covers what the user or ftlib decided.
    """
    where = f"finetune.{target.name}.hyperparameters"
    model = target.hyperparameters.get(method)
    if model is None:
        known = ", ".join(target.methods) or "none: it is an export-only target"
        raise ValueError(f"finetune.{target.name}.method: {target.name} does not support {method!r}; use one of: "
                         f"{known}")
    if hp is not None and not isinstance(hp, dict):
        raise ValueError(f"{where} must be a mapping of name: value, got {type(hp).__name__}")
    try:
        return model.model_validate(hp or {}).model_dump(exclude_none=True)
    except ValidationError as e:
        raise ValueError(_message(e, target, method, where)) from None


def _message(e: ValidationError, target: Target, method: Method, where: str) -> str:
    model = target.hyperparameters[method]
    err = e.errors()[0]
    name = str(err["loc"][0]) if err["loc"] else "?"
    if err["type"] == "extra_forbidden":
        return (f"{where}: unknown hyperparameter {name!r} for {target.name} {method}; known: "
                f"{', '.join(sorted(model.model_fields))}{spelling_hint(target, method, name)}")
    # A union (int | "auto") reports one error per branch: the numeric branch says what is wrong.
    branch = next((x for x in e.errors() if x["loc"][:1] == (name,) and x["type"] != "literal_error"), err)
    info = model.model_fields.get(name)
    about = f" ({info.description})" if info is not None and info.description else ""
    return f"{where}.{name}={err['input']!r}: {branch['msg'].lower()}{about}"


def value_of(target: Target, method: Method, hp: dict[str, Any], concept: str) -> Any:
    """The value of the hyperparameter that means `concept` (e.g. "epochs") for this target, if set."""
    model = target.hyperparameters.get(method)
    fields = model.model_fields if model is not None else {}
    return next((hp[k] for k, c in _concepts(target).items() if c == concept and k in fields and k in hp), None)
