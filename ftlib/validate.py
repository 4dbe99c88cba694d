"""The validation driver: runs the shared rules and one target's rules over examples, never stopping at the first.

Layers: ftlib.checks (rules every target shares; check_basic is what ingest uses), each target's own `rules` and
`line_rules` (its package), and here the dataset-level rules (example counts, one kind per file, base model status,
per-example token limits) that read the target's declared limits. The driver names no target.
Messages never quote training text: a secret or private data must not leak into a report.

Severity choices live with each model's data (ModelSpec.too_long_severity: a provider that truncates long examples
gets a warning, one that rejects them an error). Retired base models are errors, deprecated ones warnings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ftlib import targets, tokens
from ftlib.checks import Sink, basic, check_basic, dedupe
from ftlib.errors import FormatError
from ftlib.issues import Issue, Severity
from ftlib.limits import ModelSpec
from ftlib.records import Example
from ftlib.targets.base import Target
from ftlib.tokens import TokenStats

__all__ = ["ValidationReport", "check_basic", "check_dataset", "check_example", "check_line", "check_lines",
           "finish_dataset", "report_dict", "validate_dataset"]


# -- entry points ------------------------------------------------------------------------------------
def _token_issue(ex: Example, n: int, spec: ModelSpec, s: Sink) -> None:
    limit = spec.max_example_tokens
    if limit is None or n <= limit:
        return
    est = "" if spec.exact else "an estimated "
    if spec.too_long_severity == "warning":
        s.warn("example_too_long", "messages",
               f"the example has {est}{n:,} tokens, over the {limit:,} limit of {spec.name}; the provider truncates "
               "it, usually cutting the assistant reply: shorten or split the conversation")
    else:
        s.error("example_too_long", "messages",
                f"the example has {est}{n:,} tokens, over the {limit:,} limit of {spec.name} ({spec.limit_source}); "
                "shorten or split the conversation")


def _check(ex: Example, target: Target, spec: ModelSpec, line: Any, with_line: bool) -> tuple[list[Issue], int]:
    s = Sink(ex)
    basic(ex, s)
    for rule in target.rules:
        rule(ex, s)
    if with_line:
        for line_rule in target.line_rules:
            line_rule(line, ex.kind, s)
    n = tokens.count_with_spec(ex, spec)
    _token_issue(ex, n, spec, s)
    return dedupe(s.issues), n


def check_line(ex: Example, target: Target, spec: ModelSpec, line: Any) -> tuple[list[Issue], int]:
    """Issues and token count of one example read from an exported line (`line`: the parsed JSON), as the
    validate stage finds them; export calls this while it writes the line (ftlib.export_checks)."""
    return _check(ex, target, spec, line, True)


def check_example(
    ex: Example, provider: str, base_model: str | None = None, line: dict[str, Any] | None = None,
) -> list[Issue]:
    """All problems of one example for one provider (roles/order, empty content, images, tool links,
    token limit for base_model, likely secrets). `line` is the exported JSON line, checked against the
    line rules of the target (for OpenAI, the official line schema)."""
    target = targets.get(provider)
    return _check(ex, target, tokens.spec_for(provider, base_model), line, line is not None)[0]


@dataclass
class ValidationReport:
    """Issues plus the counts a report or DVC metric needs; to_dict() is deterministic (no timestamps)."""

    provider: str
    base_model: str | None
    split: str
    examples: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    tokens: TokenStats = field(default_factory=TokenStats)
    exact_tokens: bool = True
    issues: list[Issue] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(1 for i in self.issues if i.severity == "error")

    @property
    def ok(self) -> bool:
        return self.errors == 0

    @classmethod
    def empty(cls, provider: str, base_model: str | None, split: str) -> ValidationReport:
        report = cls(provider, base_model or targets.get(provider).default_base_model, split)
        report.exact_tokens = tokens.spec_for(provider, base_model).exact
        return report

    def add(self, kind: str, issues: list[Issue], tokens: int) -> None:
        """Count one checked example."""
        self.issues.extend(issues)
        self.examples += 1
        self.kinds[kind] += 1
        self.tokens.add(tokens)

    def merge(self, other: ValidationReport) -> None:
        """Fold in the report of the next chunk of the same file (issues stay in file order)."""
        self.examples += other.examples
        self.kinds.update(other.kinds)
        self.tokens.merge(other.tokens)
        self.issues.extend(other.issues)

    def to_dict(self, max_issues: int | None = None) -> dict[str, Any]:
        d = report_dict(self.issues, self.examples, max_issues=max_issues)
        return {
            "provider": self.provider, "base_model": self.base_model, "split": self.split,
            "kinds": dict(sorted(self.kinds.items())),
            "tokens": {**self.tokens.to_dict(), "exact": self.exact_tokens}, **d,
        }


def report_dict(issues: list[Issue], examples: int, max_issues: int | None = None, **extra: Any) -> dict[str, Any]:
    """The JSON-ready summary of a list of issues: counts, counts by code, and the issues themselves."""
    by_code = Counter(i.code for i in issues)
    listed = issues if max_issues is None else issues[:max_issues]
    return {
        **extra,
        "examples": examples,
        "errors": sum(1 for i in issues if i.severity == "error"),
        "warnings": sum(1 for i in issues if i.severity == "warning"),
        "examples_with_errors": len({i.example_id for i in issues if i.severity == "error" and i.example_id}),
        "issues_by_code": dict(sorted(by_code.items())),
        "issues_truncated": len(issues) - len(listed),
        "issues": [i.to_dict() for i in listed],
    }


def check_lines(fmt: Any, path: str | Path, lines: Iterable[tuple[int, bytes]], provider: str,
                base_model: str | None, split: str) -> ValidationReport:
    """One chunk of an exported file's (line number, raw line) pairs decoded with its format and checked (no
    dataset rules: chunks are merged, then finish_dataset); a line that is not JSON or that the format cannot
    read is one error at file:line, listed first."""
    rejects: list[Issue] = []
    pairs: list[tuple[Example, Any]] = []
    for n, raw in lines:
        source = f"{path}:{n}"
        try:
            obj = orjson.loads(raw)
            pairs.append((fmt.decode(obj, source), obj))
        except orjson.JSONDecodeError as e:
            rejects.append(Issue("invalid_json", "error", f"not valid JSON ({e}); re-run ftlib export",
                                 source=source))
        except FormatError as e:
            rejects.append(Issue(e.code, "error", str(e), source=source, field=e.field))
    report = validate_dataset((ex for ex, _ in pairs), provider, base_model, split,
                              lines=(obj for _, obj in pairs), dataset_rules=False)
    report.issues[:0] = rejects
    return report


def validate_dataset(
    examples: Iterable[Example], provider: str, base_model: str | None = None, split: str = "train",
    lines: Iterable[dict[str, Any]] | None = None, dataset_rules: bool = True,
) -> ValidationReport:
    """Stream examples once (optionally zipped with their exported lines) into a ValidationReport.

    dataset_rules=False checks examples only: for one chunk of a file whose reports are merged afterwards
    (ValidationReport.merge), with finish_dataset() applied once to the total.
    """
    target = targets.get(provider)
    spec = tokens.spec_for(provider, base_model)
    report = ValidationReport.empty(provider, base_model, split)
    line_iter = iter(lines) if lines is not None else None
    for ex in examples:
        line = next(line_iter, None) if line_iter is not None else None
        found, n = _check(ex, target, spec, line, line_iter is not None)
        report.add(ex.kind, found, n)
    if dataset_rules:
        finish_dataset(report, base_model)
    return report


def finish_dataset(report: ValidationReport, base_model: str | None) -> None:
    """Add the dataset-level rules (example counts, one kind per file, base model status) to a full report."""
    target = targets.get(report.provider)
    report.issues.extend(_dataset_issues(report, target, base_model, target.model_spec(base_model), report.split))


def check_dataset(
    examples: Iterable[Example], provider: str, base_model: str | None = None, split: str = "train",
) -> list[Issue]:
    """check_example for each example plus dataset-level rules (minimum example counts, ...)."""
    return validate_dataset(examples, provider, base_model, split).issues


def _dataset_issues(
    r: ValidationReport, target: Target, base_model: str | None, spec: ModelSpec | None, split: str,
) -> list[Issue]:
    provider = target.name
    out: list[Issue] = []

    def add(code: str, severity: Severity, message: str, fld: str | None = None) -> None:
        out.append(Issue(code, severity, message, field=fld))

    if base_model is not None and spec is None:
        add("unknown_base_model", "warning",
            f"{base_model!r} is not in ftlib's {provider} model table, so its token limit and price are unknown; "
            "check the name or pass prices=", "base_model")
    if spec is not None and spec.status != "active":
        add("base_model_retired" if spec.status == "retired" else "base_model_deprecated",
            "error" if spec.status == "retired" else "warning",
            f"{r.base_model}: {spec.status_note}", "base_model")
    n = r.examples
    lim = target.dataset_limits.get(split, target.dataset_limits["train"])
    if n == 0:
        add("empty_dataset", "error", f"the {split} split has no examples; check the input files and filters")
    elif lim.min_error is not None and n < lim.min_error:
        add("too_few_examples", "error",
            f"the {split} split has {n} examples, {provider} needs at least {lim.min_error} ({lim.source}); add more")
    elif lim.min_recommended is not None and n < lim.min_recommended:
        rec = lim.recommended or f"at least {lim.min_recommended}"
        add("few_examples", "warning",
            f"the {split} split has {n} examples; {rec} recommended ({lim.source}): add more for reliable results")
    if lim.max_error is not None and n > lim.max_error:
        add("too_many_examples", "error",
            f"the {split} split has {n} examples, over {provider}'s maximum of {lim.max_error} ({lim.source}); "
            "sample it down or reduce the split")
    if len(r.kinds) > 1:
        add("mixed_example_kinds", "error",
            f"the {split} split mixes {', '.join(f'{c} {k}' for k, c in sorted(r.kinds.items()))} examples; one "
            "file must hold one kind: separate SFT and preference data")
    return out
