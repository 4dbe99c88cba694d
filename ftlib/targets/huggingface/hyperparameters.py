"""The local trainer's hyperparameters (TRL SFTConfig/DPOConfig and PEFT LoraConfig names), with defaults.

Unlike hosted targets, every default is part of the job key: it is ftlib, not a provider, that decides them.
"""

from __future__ import annotations

from pydantic import Field

from ftlib.targets.base import Hyperparameters


class Supervised(Hyperparameters):
    max_steps: int = Field(-1, ge=-1, description="optimizer steps; -1 trains num_train_epochs instead",
                           json_schema_extra={"concept": "steps"})
    num_train_epochs: float = Field(3.0, gt=0, le=100, description="passes over the training file",
                                    json_schema_extra={"concept": "epochs"})
    learning_rate: float = Field(2e-4, gt=0, le=1, description="AdamW learning rate (LoRA usually 1e-4 to 3e-4)",
                                 json_schema_extra={"concept": "learning_rate"})
    lora_r: int = Field(16, ge=1, le=1024, description="LoRA rank", json_schema_extra={"concept": "lora_r"})
    lora_alpha: int = Field(32, ge=1, le=4096, description="LoRA scaling (alpha / r multiplies the update)")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="dropout on the LoRA layers")
    per_device_train_batch_size: int = Field(4, ge=1, le=4096, description="examples per device per step",
                                             json_schema_extra={"concept": "batch_size"})
    gradient_accumulation_steps: int = Field(1, ge=1, le=4096, description="steps accumulated per update")
    max_length: int = Field(2048, ge=16, le=1_048_576, description="tokens per example; longer ones are truncated")
    save_steps: int = Field(50, ge=1, description="checkpoint every N steps (a killed run resumes from the last)")
    logging_steps: int = Field(1, ge=1, description="log the training loss every N steps")


class DPO(Supervised):
    beta: float = Field(0.1, gt=0, le=10, description="how far the tuned model may move from the reference",
                        json_schema_extra={"concept": "beta"})
    learning_rate: float = Field(5e-6, gt=0, le=1, description="AdamW learning rate",
                                 json_schema_extra={"concept": "learning_rate"})


HYPERPARAMETERS = {"supervised": Supervised, "dpo": DPO}
