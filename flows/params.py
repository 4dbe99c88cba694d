"""What the flows read from params.yaml: which providers to fine-tune, whether to submit, each provider's settings.

The same file drives `dvc repro`, so a flow run and a plain DVC run agree on every job key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ftlib.cli_jobs import load_settings
from ftlib.providers import PROVIDERS


def load_params(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: params file not found; pass params_file relative to project_dir")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def finetune_section(params: dict[str, Any]) -> dict[str, Any]:
    section = params.get("finetune") or {}
    if not isinstance(section, dict):
        raise ValueError("params: `finetune` must be a mapping with one section per provider")
    return section


def configured_providers(params: dict[str, Any]) -> list[str]:
    """Providers with a finetune.<provider> section, in file order (that is the order DVC's foreach uses)."""
    return [name for name, value in finetune_section(params).items() if name in PROVIDERS and isinstance(value, dict)]


def default_submit(params: dict[str, Any]) -> bool:
    """launch.submit: the same switch the finetune stages in dvc.yaml read."""
    value = (params.get("launch") or {}).get("submit", False)
    if not isinstance(value, bool):
        raise ValueError(f"params: launch.submit must be true or false, got {value!r}")
    return value


def provider_settings(params_path: Path, provider: str) -> dict[str, Any]:
    """finetune.<provider> exactly as the `ftlib finetune` stage reads it (base model from providers.<p>)."""
    return load_settings(params_path, provider)


def resolve_providers(params: dict[str, Any], providers: list[str] | None) -> list[str]:
    """The flow parameter, checked against params.yaml; None means every configured provider."""
    configured = configured_providers(params)
    if providers is None:
        return configured
    unknown = [p for p in providers if p not in PROVIDERS]
    if unknown:
        raise ValueError(f"unknown provider(s) {unknown}; use one of: {', '.join(PROVIDERS)}")
    missing = [p for p in providers if p not in configured]
    if missing:
        raise ValueError(f"provider(s) {missing} have no finetune.<provider> section in params.yaml (and so no "
                         f"finetune stage in dvc.yaml); configured: {', '.join(configured) or 'none'}")
    return list(dict.fromkeys(providers))
