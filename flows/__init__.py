"""Prefect flows: `finetune-pipeline` (everything), `build-dataset` (DVC data stages), `finetune-models` (jobs).

Deployments live in prefect.yaml at the repository root; scripts/stack-up runs them on a local server.
"""

from flows.pipeline import build_dataset, finetune_models, finetune_pipeline

__all__ = ["build_dataset", "finetune_models", "finetune_pipeline"]
