"""OpenAI's hyperparameters per method (fine_tuning.jobs.create `method`): each also accepts "auto"."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ftlib.targets.base import Hyperparameters

Auto = Literal["auto"]


class Supervised(Hyperparameters):
    n_epochs: Annotated[int, Field(ge=1, le=50)] | Auto | None = Field(
        None, description="passes over the training file; auto lets OpenAI apply its default-epoch rule",
        json_schema_extra={"concept": "epochs"})
    batch_size: Annotated[int, Field(ge=1, le=256)] | Auto | None = Field(
        None, description="examples per training step", json_schema_extra={"concept": "batch_size"})
    learning_rate_multiplier: Annotated[float, Field(gt=0, allow_inf_nan=False)] | Auto | None = Field(
        None, description="scales OpenAI's base learning rate", json_schema_extra={"concept": "learning_rate"})


class DPO(Supervised):
    beta: Annotated[float, Field(gt=0, le=2)] | Auto | None = Field(
        None, description="how far the tuned model may move from the reference model", json_schema_extra={
            "concept": "beta"})


HYPERPARAMETERS = {"supervised": Supervised, "dpo": DPO}
