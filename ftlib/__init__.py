"""ftlib: prepare LLM fine-tuning data and run fine-tuning jobs reproducibly."""

import sys as _sys
from types import ModuleType as _ModuleType

from ftlib.issues import Issue
from ftlib.records import Attachment, Example, Message, ToolCall

__version__ = "0.1.0"

# The library path to a model, imported on first use so `import ftlib` stays fast (no SDKs, no pyarrow).
_LAZY = {"plan": "ftlib.api", "job": "ftlib.api", "Job": "ftlib.api", "FineTuner": "ftlib.finetuner",
         "Dataset": "ftlib.dataset"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ftlib' has no attribute {name!r}")


class _CallableModule(_ModuleType):
    """A submodule that, called, runs the ftlib.api function of its name: `ftlib.finetune(ds, provider=...)`,
    `ftlib.jobs("openai")`, while ftlib.finetune (the stage) and ftlib.jobs (the job core) stay importable."""

    def __call__(self, *args: object, **kwargs: object) -> object:
        from ftlib import api

        return getattr(api, self.__name__.rpartition(".")[2])(*args, **kwargs)


def _callable_submodule(name: str) -> property:
    """A plain function could not be `ftlib.finetune`: importing the submodule of that name rebinds the attribute.
    So the attribute is the submodule itself, made callable on first access; the import system's rebinding is
    ignored (the submodule is in sys.modules either way)."""

    def get(package: _ModuleType) -> _ModuleType:
        import importlib

        module = importlib.import_module(f"{package.__name__}.{name}")
        if not isinstance(module, _CallableModule):
            module.__class__ = _CallableModule
        return module

    return property(get, lambda package, value: None)


class _Package(_ModuleType):
    finetune = _callable_submodule("finetune")
    jobs = _callable_submodule("jobs")


_sys.modules[__name__].__class__ = _Package

__all__ = ["Attachment", "Dataset", "Example", "FineTuner", "Issue", "Job", "Message", "ToolCall", "__version__",
           "finetune", "job", "jobs", "plan"]
