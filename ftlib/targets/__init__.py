"""Targets found through the `ftlib.targets` entry-point group: built-ins and third-party packages alike.

An entry point names a `Target` object (or a function returning one). The core asks here and nowhere else.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ftlib.targets.base import Target

GROUP = "ftlib.targets"


def __getattr__(name: str) -> Any:
    """`Target` on first use: importing this package stays cheap (targets.base loads pydantic), so modules that
    only may need a target (params, the CLI's command modules) cost nothing at start-up."""
    if name == "Target":
        from ftlib.targets.base import Target

        return Target
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def _discovered() -> dict[str, Target]:
    from ftlib.targets.base import Target

    found: dict[str, Target] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        obj = ep.load()
        target = obj() if callable(obj) and not isinstance(obj, Target) else obj
        if not isinstance(target, Target) or target.name != ep.name:
            raise TypeError(f"entry point {ep.name} = {ep.value} ({GROUP}) must name a Target called {ep.name!r}")
        found[ep.name] = target
    if not found:
        raise RuntimeError(f"no {GROUP} entry points found: ftlib is not installed; run `pip install -e .`")
    return found


def names() -> tuple[str, ...]:
    return tuple(_discovered())


def get(name: str) -> Target:
    try:
        return _discovered()[name]
    except KeyError:
        raise ValueError(f"unknown target {name!r}; use one of: {', '.join(names())}") from None


def all_targets() -> tuple[Target, ...]:
    return tuple(_discovered().values())


def exact_counter() -> str:
    """The first target whose default model has exact token counts: the neutral default for summaries."""
    return next((t.name for t in all_targets() if (spec := t.model_spec(None)) is not None and spec.exact),
                names()[0])


def with_backend() -> tuple[str, ...]:
    """Targets that can run a fine-tuning job (the others are export-only)."""
    return tuple(t.name for t in all_targets() if t.backend)


__all__ = ["GROUP", "Target", "all_targets", "get", "names", "with_backend"]
