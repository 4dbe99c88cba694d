"""Claude through Amazon Bedrock model customization: text-only chat lines, AWS's validator rules, S3 + Bedrock."""

from __future__ import annotations

from ftlib.targets.anthropic import models, rules
from ftlib.targets.anthropic.formats import BEDROCK_CLAUDE
from ftlib.targets.anthropic.hyperparameters import HYPERPARAMETERS
from ftlib.targets.base import Target

TARGET = Target(
    name="anthropic",
    title="Claude on Amazon Bedrock",
    formats={"sft": BEDROCK_CLAUDE, "preference": None},
    models=models.MODELS,
    dataset_limits=models.DATASET_LIMITS,
    rules=(rules.check_example,),
    default_base_model=models.DEFAULT_BASE_MODEL,
    hyperparameters=HYPERPARAMETERS,
    backend="ftlib.targets.anthropic.backend:BedrockBackend",
    generator="ftlib.targets.anthropic.generate:BedrockGenerator",
    console="https://us-west-2.console.aws.amazon.com/bedrock/home?region=us-west-2#/custom-models",
)
