"""What a target is: everything ftlib knows about one place a dataset can go, declared in one object.

A target package builds one `Target` and registers it under the `ftlib.targets` entry-point group; the core
(validation driver, tokens, export, CLI, params, flows) loops over targets and never names one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from ftlib.limits import ModelSpec, SplitLimits, normalise_model

if TYPE_CHECKING:
    from ftlib.checks import Sink
    from ftlib.evaluate.generator import Generator
    from ftlib.formats.base import Format
    from ftlib.jobs.spec import Backend
    from ftlib.records import Example

Kind = Literal["sft", "preference"]
Method = Literal["supervised", "dpo"]
METHOD_KIND: dict[str, Kind] = {"supervised": "sft", "dpo": "preference"}

Rule = Callable[["Example", "Sink"], None]  # one example's rules; adds issues to the sink
LineRule = Callable[[Any, str, "Sink"], None]  # the exported JSON line (and its kind) as the provider reads it
EpochRule = Callable[[int], tuple[int, str]]  # examples -> (epochs the provider picks by default, where that is from)


class Hyperparameters(BaseModel):
    """Base of every target's hyperparameter model: unknown keys are refused, values are checked before any call."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Target:
    """One target. `backend` is "module:Class" so its SDK is imported only when a job needs it."""

    name: str
    title: str
    formats: Mapping[Kind, Format | None]  # which format writes each example kind (None: cannot hold it)
    models: tuple[ModelSpec, ...]
    dataset_limits: Mapping[str, SplitLimits]  # per split name; "train" is the fallback for other splits
    rules: tuple[Rule, ...] = ()
    line_rules: tuple[LineRule, ...] = ()
    default_base_model: str | None = None
    fallback_model: ModelSpec | None = None  # counts and limits when a base model is not in `models`
    default_epochs: EpochRule | None = None
    hyperparameters: Mapping[Method, type[Hyperparameters]] = field(default_factory=dict)  # empty: export only
    backend: str | None = None
    console: str | None = None  # where a user sees jobs when the backend gives no per-job link
    export: str | None = None  # the target whose export files this one trains on (default: its own)
    deps: tuple[str, ...] = ()  # extra code folders its stages run (for dvc.yaml deps), besides its own package
    generator: str | None = None  # "module:Class" answering prompts with a tuned model (ftlib.evaluate); None: none

    @property
    def export_name(self) -> str:
        return self.export or self.name

    @property
    def methods(self) -> tuple[Method, ...]:
        return tuple(self.hyperparameters)

    def model_spec(self, base_model: str | None) -> ModelSpec | None:
        """The spec of base_model (the target default when None), longest family-prefix match; None if unknown."""
        name = base_model if base_model is not None else self.default_base_model
        if name is None:
            return self.fallback_model
        key = normalise_model(name)
        best = max((s for s in self.models if key.startswith(s.name)), key=lambda s: len(s.name), default=None)
        return best or self.fallback_model

    def backend_class(self) -> type[Backend]:
        if self.backend is None:
            raise ValueError(f"{self.name} is an export-only target: it has no job backend; export its files and "
                             "train with your own tool, or pick a target with a backend")
        module_name, _, attr = self.backend.partition(":")
        return getattr(importlib.import_module(module_name), attr)

    def make_backend(self, options: dict[str, Any] | None = None) -> Backend:
        """The job backend with its params.yaml settings; credentials come from the SDK's usual environment."""
        return self.backend_class()(dict(options or {}))

    def make_generator(self, options: dict[str, Any] | None = None) -> Generator:
        """The generation hook (ftlib.evaluate.generator.Generator) with its settings; its SDK loads on first call."""
        if self.generator is None:
            raise ValueError(f"{self.name} cannot evaluate models: it declares no generator; evaluate a target that "
                             "runs jobs (`ftlib targets`)")
        module_name, _, attr = self.generator.partition(":")
        return getattr(importlib.import_module(module_name), attr)(dict(options or {}))
