"""Claude 3 hyperParameters on Bedrock (sent as strings); supervised only."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ftlib.targets.base import Hyperparameters


class Supervised(Hyperparameters):
    epochCount: Annotated[int, Field(ge=1, le=10)] | None = Field(
        None, description="passes over the training file (Bedrock default 2)", json_schema_extra={"concept": "epochs"})
    batchSize: Annotated[int, Field(ge=4, le=256)] | None = Field(
        None, description="records per step (Bedrock default 32)", json_schema_extra={"concept": "batch_size"})
    learningRateMultiplier: Annotated[float, Field(ge=0.1, le=2.0)] | None = Field(
        None, description="scales the base learning rate (Bedrock default 1)",
        json_schema_extra={"concept": "learning_rate"})
    earlyStoppingThreshold: Annotated[float, Field(ge=0.0, le=0.1)] | None = Field(
        None, description="minimum validation-loss improvement that counts as progress")
    earlyStoppingPatience: Annotated[int, Field(ge=1, le=10)] | None = Field(
        None, description="epochs without progress before training stops")


HYPERPARAMETERS = {"supervised": Supervised}
