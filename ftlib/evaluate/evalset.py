"""The eval set: held-out examples from an export folder (the `test` split when there is one, else `validation`),
each cut into a prompt (the conversation up to the last assistant turn) and the reference (that turn).

Read with the target's own format, so the prompt a model sees is exactly what the job was trained to answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import orjson

from ftlib import formats, layout
from ftlib.errors import FormatError
from ftlib.issues import Issue
from ftlib.records import Example, Kind, Message, canonical_json

SPLITS = ("test", "validation")  # first one present wins


@dataclass(frozen=True)
class Case:
    """One held-out example: what is sent, what a good answer looks like, and the whole example (for losses)."""

    source: str  # file:line
    prompt: Example
    reference: Message
    example: Example

    @property
    def key(self) -> str:
        """The prompt's identity in the reply cache: same prompt and tools, same key, whatever the file."""
        return hashlib.sha256(canonical_json(self.prompt.canonical())).hexdigest()


@dataclass(frozen=True)
class EvalSet:
    path: Path
    split: str
    sha256: str
    cases: tuple[Case, ...]
    skipped: tuple[Issue, ...]  # lines with no assistant turn to compare against

    def describe(self) -> dict[str, object]:
        return {"file": self.path.name, "split": self.split, "sha256": self.sha256, "examples": len(self.cases),
                "skipped": len(self.skipped)}


def find(export_dir: Path, kind: Kind) -> tuple[Path, str]:
    """(file, split): test, else validation, of the kind the job trained on."""
    for split in SPLITS:
        path = Path(export_dir) / layout.export_file(split, kind)
        if path.is_file() and path.stat().st_size > 0:
            return path, split
    names = " or ".join(layout.export_file(s, kind) for s in SPLITS)
    raise FileNotFoundError(f"{export_dir}: no held-out examples to evaluate on ({names}); give the split a "
                            "validation (or test) share, e.g. `split.ratios: train=0.9,validation=0.1`, and re-run "
                            "split and export")


def split_case(ex: Example, source: str) -> Case | None:
    """Prompt = everything before the last assistant turn; preference examples: the prompt and the chosen reply."""
    if ex.kind == "preference":
        if ex.chosen is None:
            return None
        prompt = replace(ex, chosen=None, rejected=None)
        return Case(source, prompt, ex.chosen, Example(messages=(*ex.messages, ex.chosen), tools=ex.tools))
    last = next((i for i in range(len(ex.messages) - 1, -1, -1) if ex.messages[i].role == "assistant"), None)
    if last is None or not any(m.role == "user" for m in ex.messages[:last]):
        return None
    prompt = Example(messages=ex.messages[:last], tools=ex.tools, parallel_tool_calls=ex.parallel_tool_calls)
    return Case(source, prompt, ex.messages[last], Example(messages=ex.messages[: last + 1], tools=ex.tools))


def load(export_dir: Path, export_target: str, kind: Kind) -> EvalSet:
    """Every line of the eval file as a Case (in file order); lines without an assistant turn are listed, not lost."""
    path, split = find(export_dir, kind)
    fmt = formats.picker(export_target)(kind)
    if fmt is None:
        raise ValueError(f"{export_target} has no {kind} format, so {path} cannot be read for evaluation")
    data = path.read_bytes()
    cases: list[Case] = []
    skipped: list[Issue] = []
    for n, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        source = f"{path.name}:{n}"  # the same in every checkout and from either entry point
        try:
            ex = fmt.decode(orjson.loads(line), source)
        except (orjson.JSONDecodeError, FormatError) as e:
            raise FormatError(f"{source}: cannot read this {fmt.name} line ({e}); re-run `ftlib export` to rewrite "
                              "the file", getattr(e, "field", None)) from None
        case = split_case(ex, source)
        if case is None:
            skipped.append(Issue("no_reference", "warning", "no assistant reply after a user turn to compare "
                                 "against; not evaluated", ex.id, source))
        else:
            cases.append(case)
    return EvalSet(path, split, hashlib.sha256(data).hexdigest(), tuple(cases), tuple(skipped))
