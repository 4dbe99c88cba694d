"""Vertex AI tuning hyperparameters (google-genai CreateTuningJobConfig field names)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ftlib.targets.base import Hyperparameters


class Supervised(Hyperparameters):
    epoch_count: Annotated[int, Field(ge=1, le=100)] | None = Field(
        None, description="passes over the training file", json_schema_extra={"concept": "epochs"})
    learning_rate_multiplier: Annotated[float, Field(gt=0.0, le=100.0)] | None = Field(
        None, description="scales Vertex's base learning rate", json_schema_extra={"concept": "learning_rate"})
    adapter_size: Literal[1, 2, 4, 8, 16] | None = Field(
        None, description="LoRA adapter size", json_schema_extra={"concept": "lora_r"})


class Preference(Supervised):
    beta: Annotated[float, Field(gt=0.0, le=2.0)] | None = Field(
        None, description="how far the tuned model may move from the base model", json_schema_extra={
            "concept": "beta"})


HYPERPARAMETERS = {"supervised": Supervised, "dpo": Preference}
