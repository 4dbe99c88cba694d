"""OpenAI (and Azure OpenAI through the same SDK): chat and DPO lines, the cookbook's checks, Files + fine_tuning."""

from __future__ import annotations

from ftlib.targets.base import Target
from ftlib.targets.openai import models, rules
from ftlib.targets.openai.formats import OPENAI_CHAT, OPENAI_DPO
from ftlib.targets.openai.hyperparameters import HYPERPARAMETERS

TARGET = Target(
    name="openai",
    title="OpenAI / Azure OpenAI",
    formats={"sft": OPENAI_CHAT, "preference": OPENAI_DPO},
    models=models.MODELS,
    dataset_limits=models.DATASET_LIMITS,
    rules=(rules.check_example,),
    line_rules=(rules.check_line,),
    default_base_model=models.DEFAULT_BASE_MODEL,
    default_epochs=models.default_epochs,
    hyperparameters=HYPERPARAMETERS,
    backend="ftlib.targets.openai.backend:OpenAIBackend",
    generator="ftlib.targets.openai.generate:OpenAIGenerator",
    console="https://platform.openai.com/finetune",
)
