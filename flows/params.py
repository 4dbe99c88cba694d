"""What the flows read from params.yaml, through ftlib.params as the CLI reads it: which providers to
fine-tune, whether to submit, each provider's settings.

The same file drives `dvc repro`, so a flow run and a plain DVC run agree on every job key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftlib import layout, targets
from ftlib import params as params_file
from ftlib.params import configured_providers


def load_params(path: Path) -> dict[str, Any]:
    return params_file.load(path, required=True)


def default_submit(params: dict[str, Any]) -> bool:
    """launch.submit: the same switch the finetune stages in dvc.yaml read."""
    return params_file.launch(params)["submit"]


def provider_settings(params_path: Path, provider: str) -> dict[str, Any]:
    """finetune.<provider> exactly as the `ftlib finetune` stage reads it (base model from providers.<p>)."""
    return params_file.finetune_settings(params_file.load(params_path), provider)


def resolve_providers(params: dict[str, Any], providers: list[str] | None) -> list[str]:
    """The flow parameter, checked against params.yaml; None means every configured provider."""
    configured = configured_providers(params)
    if providers is None:
        return configured
    known = targets.with_backend()
    unknown = [p for p in providers if p not in known]
    if unknown:
        raise ValueError(f"unknown provider(s) {unknown}; use one of: {', '.join(known)}")
    missing = [p for p in providers if p not in configured]
    if missing:
        raise ValueError(f"provider(s) {missing} have no finetune.<provider> section in params.yaml (and so no "
                         f"finetune stage in dvc.yaml); configured: {', '.join(configured) or 'none'}")
    return list(dict.fromkeys(providers))


def export_dir(project: Path, params_path: Path, provider: str) -> Path:
    """The export folder the provider's job reads, as dvc.yaml's finetune stage passes it."""
    return project / layout.export_dir(params_file.export_for(params_file.load(params_path), provider))
