"""params.yaml: the one file dvc.yaml, the CLI and the Prefect flows read, loaded and checked in one place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ftlib import targets


def load(path: Path, required: bool = False) -> dict[str, Any]:
    """The parsed file; a missing optional file means defaults (plan mode works without one)."""
    if not path.is_file():
        if required:
            raise FileNotFoundError(f"{path}: params file not found; pass the path of the project's params.yaml")
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def finetune_settings(params: dict[str, Any], provider: str) -> dict[str, Any]:
    """finetune.<target>, with the base model the validate stage checked (providers.<export>.base_model) as default,
    so one target has one base model across validation, cost estimate and job."""
    target = targets.get(provider)
    section = (params.get("finetune") or {}).get(provider) or {}
    if not isinstance(section, dict):
        raise ValueError(f"params: finetune.{provider} must be a mapping of settings")
    settings = dict(section)
    validated = ((params.get("providers") or {}).get(target.export_name) or {}).get("base_model")
    if validated and "base_model" not in settings:
        settings["base_model"] = validated
    return settings


def launch(params: dict[str, Any]) -> dict[str, bool]:
    """launch.submit / launch.wait: how the finetune stages run (plan by default)."""
    section = params.get("launch") or {}
    if not isinstance(section, dict) or not all(isinstance(section.get(k, False), bool) for k in ("submit", "wait")):
        raise ValueError("params: launch.submit and launch.wait must be true or false")
    return {"submit": section.get("submit", False), "wait": section.get("wait", False)}


def configured_providers(params: dict[str, Any]) -> list[str]:
    """Providers with a finetune.<provider> section, in file order (the order DVC's foreach uses)."""
    section = params.get("finetune") or {}
    if not isinstance(section, dict):
        raise ValueError("params: `finetune` must be a mapping with one section per provider")
    known = targets.with_backend()
    chosen = [name for name, value in section.items() if name in known and isinstance(value, dict)]
    for name in chosen:
        if not section[name].get("export"):
            raise ValueError(f"params: finetune.{name}.export is missing; dvc.yaml's finetune stage needs it: set it "
                             f"to the export folder the job trains on ({targets.get(name).export_name})")
    return chosen


def export_for(params: dict[str, Any], provider: str) -> str:
    """The export folder a target's job trains on: finetune.<target>.export, else the target's own export."""
    section = (params.get("finetune") or {}).get(provider) or {}
    chosen = section.get("export") if isinstance(section, dict) else None
    return str(chosen) if chosen else targets.get(provider).export_name
