"""Hugging Face conversational files (TRL SFT and preference) and the `local` trainer that trains on them.

Two targets from one package: `huggingface` exports (for TRL, axolotl or any open-weight trainer) and `local`
trains a LoRA adapter on this machine's CPU or GPUs with TRL + PEFT, reading the `huggingface` export.
"""

from __future__ import annotations

from ftlib.targets.base import Target
from ftlib.targets.huggingface import models, rules
from ftlib.targets.huggingface.formats import HF_MESSAGES, TRL_PREFERENCE
from ftlib.targets.huggingface.hyperparameters import HYPERPARAMETERS

TARGET = Target(
    name="huggingface",
    title="Hugging Face / TRL files",
    formats={"sft": HF_MESSAGES, "preference": TRL_PREFERENCE},
    models=(),
    fallback_model=models.OPEN_WEIGHT,
    dataset_limits=models.DATASET_LIMITS,
    rules=(rules.check_example,),
)

LOCAL = Target(
    name="local",
    title="Local LoRA training (TRL + PEFT)",
    formats=TARGET.formats,
    models=(),
    fallback_model=models.OPEN_WEIGHT,
    dataset_limits=models.DATASET_LIMITS,
    rules=TARGET.rules,
    hyperparameters=HYPERPARAMETERS,
    backend="ftlib.targets.huggingface.local:LocalBackend",
    generator="ftlib.targets.huggingface.generate:LocalGenerator",
    export="huggingface",
)
