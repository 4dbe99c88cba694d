"""Every JSONL line shape ftlib reads or writes, gathered from the targets, keyed by format name.

A format belongs to the target package that writes it; this module only collects them (in detection order)
and encodes examples for a target. It names no target.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache
from typing import Any

import orjson

from ftlib import checks
from ftlib.formats.base import Format, FormatError
from ftlib.issues import Issue
from ftlib.records import Example


@cache
def all_formats() -> dict[str, Format]:
    """name -> format, in detection order (Format.priority: shapes with distinctive keys first, the plain
    {"messages": [...]} catch-all last). The input-only shapes (ftlib.formats.inputs) are core, not a target's."""
    from ftlib import targets
    from ftlib.formats import inputs

    found = {f.name: f for f in inputs.FORMATS}
    found.update({f.name: f for t in targets.all_targets() for f in t.formats.values() if f is not None})
    return dict(sorted(found.items(), key=lambda kv: (kv[1].priority, kv[0])))


def __getattr__(name: str) -> Any:  # FORMATS stays a module attribute, built on first use
    if name == "FORMATS":
        return all_formats()
    raise AttributeError(name)


def get(name: str) -> Format:
    try:
        return all_formats()[name]
    except KeyError:
        raise KeyError(f"unknown format {name!r}; known: {', '.join(sorted(all_formats()))}") from None


def detect(obj: Mapping[str, Any]) -> Format | None:
    """The first format (by priority) whose detect() accepts this parsed line."""
    for fmt in all_formats().values():
        if fmt.detect(obj):
            return fmt
    return None


def picker(target: str) -> Callable[[str], Format | None]:
    """Map an example kind to the format that writes it, for a target name or a format name."""
    from ftlib import targets

    if target in targets.names():
        chosen = targets.get(target).formats
        return lambda kind: chosen.get(kind)
    try:
        fmt = get(target)
    except KeyError as e:
        raise ValueError(f"{e.args[0]}; or a target: {', '.join(targets.names())}") from None
    return lambda kind: fmt if kind == fmt.kind else None


def encode_lines(examples: Iterable[Example], target: str) -> Iterator[tuple[str, bytes] | Issue]:
    """(example kind, JSONL line) per writable example; an error Issue for each example skipped (the target
    cannot hold it) and a warning for each field a format leaves out. Nothing is dropped without an Issue."""
    pick = picker(target)
    for ex in examples:
        fmt = pick(ex.kind)
        if fmt is None:
            yield Issue("unsupported_kind", "error",
                        f"{target} cannot hold {ex.kind} examples; skipped. Export them to a target that can "
                        "(`ftlib targets` lists what each holds) or drop them first.", ex.id, ex.source)
            continue
        refused = checks.local_reference_issues(ex)  # a local path or file: URL never reaches any export
        if refused:
            for issue in refused:
                yield Issue(issue.code, "error", f"{issue.message}; skipped", ex.id, ex.source, issue.field)
            continue
        try:
            line = fmt.encode(ex)
        except FormatError as e:
            yield Issue(e.code, "error", f"{fmt.name}: {e}; skipped", ex.id, ex.source, e.field)
            continue
        for loss in fmt.losses(ex):
            yield Issue("export_loss", "warning", f"{fmt.name} cannot hold {loss}; written without it",
                        ex.id, ex.source)
        yield ex.kind, orjson.dumps(line) + b"\n"


__all__ = ["Format", "FormatError", "all_formats", "detect", "encode_lines", "get", "picker"]
