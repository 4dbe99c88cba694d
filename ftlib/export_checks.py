"""Validation done by export while it encodes, so the validate stage need not decode every file again.

`ftlib validate` on files from anywhere reads, decodes and checks every line. The pipeline's files were written
a moment earlier by `ftlib export`, which held each example and its line in memory: export runs the same checks
then (the same driver, ftlib.validate) and writes what it found to a checks file (in the pipeline
build/export-checks/<target>.json, a DVC output beside the export folder).
`ftlib validate --checks FILE` uses that file only when it still describes these exact files: the sha256 of every
file, the target, the base model and a fingerprint of the code that checks (ftlib's rule, format and token
modules and the target's package) must all match; otherwise it checks the files itself. Either way the report
is the same, byte for byte (benchmarks/check_outputs.py and tests/test_export_checks.py compare them).

What export checks for a line is what validate would find decoding it:
- A line the format wrote without losses holds the whole example (the format contract behind export's loss
  report; tests/test_export_checks.py checks decode(encode(example)) == example wherever losses() is empty),
  so the rules run on the example as encoded, under the line's name (source file:line), without metadata or
  group (no format writes them) - and the target's line rules run on the parsed line, as validate runs them.
- A line with losses is parsed and decoded, exactly as validate does, and the decoded example is checked.
- A line its own format cannot read back is a format bug: the checks file then says it cannot stand in for
  validation, and validate checks the files itself (so even that report matches).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path
from typing import Any

import orjson

from ftlib.errors import FormatError
from ftlib.issues import Issue
from ftlib.records import Example

FORMAT_VERSION = 1
LOCAL = "\x00"  # an issue source inside a worker: LOCAL + line index within the chunk, made file:line by the parent
# The code whose behaviour decides a validation report: if any of it changes, old checks files no longer count.
_CHECK_MODULES = ("ftlib.validate", "ftlib.checks", "ftlib.secret_scan", "ftlib.tokens", "ftlib.limits",
                  "ftlib.records", "ftlib.issues", "ftlib.errors", "ftlib.formats", "ftlib.export_checks")


# Libraries whose version can change a finding: token counts, the OpenAI line schema, JSON parsing.
_CHECK_DISTRIBUTIONS = ("tiktoken", "jsonschema-rs", "jsonschema", "orjson")


def _module_files(name: str) -> list[Path]:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return []
    if spec.submodule_search_locations:  # a package: every file in it (rules, models, schemas)
        return sorted(p for d in spec.submodule_search_locations for p in Path(d).rglob("*")
                      if p.is_file() and "__pycache__" not in p.parts)
    return [Path(spec.origin)]


def fingerprint(provider: str, base_model: str | None) -> str:
    """sha256 of what a validation report depends on besides the files: target, base model, the versions of the
    libraries that check and the source of every module that checks (found without importing them, so validate
    stays quick to start)."""
    from ftlib.targets import GROUP  # light: entry points are looked up, not loaded

    h = hashlib.sha256(orjson.dumps([FORMAT_VERSION, provider, base_model]))
    for dist in _CHECK_DISTRIBUTIONS:
        with contextlib.suppress(PackageNotFoundError):
            h.update(f"{dist}=={version(dist)};".encode())
    eps = {ep.name: ep.value.partition(":")[0] for ep in entry_points(group=GROUP)}
    modules = [*_CHECK_MODULES, *([eps[provider]] if provider in eps else [])]
    for name in modules:
        for path in _module_files(name):
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


# -- in export's workers -------------------------------------------------------------------------------
@dataclass
class LineChecks:
    """What checking one chunk's lines of one file found: the partial report, issues sourced LOCAL + index."""

    report: Any  # validate.ValidationReport
    unreadable: int = 0  # lines the format could not decode again (a format bug): the checks file cannot be used


@dataclass
class Checker:
    """The checks of one target and base model, built once per worker process (picklable: only names travel)."""

    provider: str
    base_model: str | None
    _state: dict[str, Any] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {"provider": self.provider, "base_model": self.base_model, "_state": {}}

    def prepare(self) -> dict[str, Any]:
        """Look up the target, the model spec and the tokenizer once; called in export's parent before its workers
        start, they inherit all of it (the tokenizer alone takes ~0.4 s to build)."""
        if not self._state:
            from ftlib import targets, tokens, validate

            target = targets.get(self.provider)
            spec = tokens.spec_for(self.provider, self.base_model)
            if spec.chars_per_token is None:
                tokens.encoder(spec.encoding)
            self._state.update(target=target, spec=spec, parse=bool(target.line_rules), check=validate.check_line)
        return self._state

    def new_report(self, split: str) -> LineChecks:
        from ftlib import validate

        return LineChecks(validate.ValidationReport.empty(self.provider, self.base_model, split))

    def check(self, ex: Example, fmt: Any, line: bytes, lossy: bool, index: int, into: LineChecks) -> None:
        """Check one line export just wrote (ex: the example it encoded) into a chunk's partial report."""
        st = self._state or self.prepare()
        source = f"{LOCAL}{index}"
        obj = orjson.loads(line) if (lossy or st["parse"]) else None
        if lossy:
            try:
                ex = fmt.decode(obj, source)
            except FormatError:
                into.unreadable += 1
                return
        else:  # the example as its line reads back: no metadata or group (never written), named by file line
            ex = Example(messages=ex.messages, tools=ex.tools, parallel_tool_calls=ex.parallel_tool_calls,
                         chosen=ex.chosen, rejected=ex.rejected, source=source)
        issues, n = st["check"](ex, st["target"], st["spec"], obj)
        into.report.add(ex.kind, issues, n)


@dataclass
class Encoded:
    """A worker's share of an export: per example kind the lines, the export issues and (when checking) the checks
    of those lines. Line indices (LOCAL sources) count from 1 within this share, per kind."""

    parts: dict[str, list[bytes]] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    checks: dict[str, LineChecks] = field(default_factory=dict)

    def add(self, examples: Iterable[Example], provider: str, checker: Checker | None = None,
            split: str = "train") -> None:
        """Encode examples (formats.encode_lines: lines, skip and loss issues); check each line when asked."""
        from ftlib import formats

        if checker is None:
            for item in formats.encode_lines(examples, provider):
                if isinstance(item, Issue):
                    self.issues.append(item)
                else:
                    self.parts.setdefault(item[0], []).append(item[1])
            return
        pick = formats.picker(provider)
        current: list[Example] = []  # the example encode_lines is on: it pulls the next only when done with one
        lossy = ""  # id of the example the latest loss warning was about

        def pulled() -> Iterator[Example]:
            for ex in examples:
                current[:] = [ex]
                yield ex

        for item in formats.encode_lines(pulled(), provider):
            if isinstance(item, Issue):
                if item.code == "export_loss":
                    lossy = item.example_id or ""
                self.issues.append(item)
                continue
            kind, line = item
            ex = current[0]
            lines = self.parts.setdefault(kind, [])
            lines.append(line)
            part = self.checks.get(kind) or self.checks.setdefault(kind, checker.new_report(split))
            checker.check(ex, pick(kind), line, bool(lossy) and lossy == ex.id, len(lines), part)
            lossy = ""


# -- in export's parent --------------------------------------------------------------------------------
@dataclass
class FileChecks:
    """One export file being written: its bytes' hash, its line count and the merged report."""

    path: str  # the file as validate names it in sources: <export dir>/<name>
    report: Any
    sha: Any = field(default_factory=hashlib.sha256)
    lines: int = 0
    unreadable: int = 0

    def add(self, blob: bytes, count: int, part: LineChecks | None) -> None:
        if part is not None:
            offset = self.lines
            for i, issue in enumerate(part.report.issues):
                if issue.source and issue.source.startswith(LOCAL):
                    part.report.issues[i] = replace(issue, source=f"{self.path}:{offset + int(issue.source[1:])}")
            self.report.merge(part.report)
            self.unreadable += part.unreadable
        self.sha.update(blob)
        self.lines += count


def checks_document(provider: str, base_model: str | None, export_dir: Path, files: dict[str, FileChecks],
                    ) -> dict[str, Any]:
    """The checks file: per export file its sha256, its finished report (as validate writes it) and token totals."""
    from ftlib import validate

    out: dict[str, Any] = {}
    usable = True
    for name, fc in sorted(files.items()):
        validate.finish_dataset(fc.report, base_model)
        usable = usable and fc.unreadable == 0
        out[name] = {"sha256": fc.sha.hexdigest(), "report": fc.report.to_dict(max_issues=1000),
                     "tokens": {"examples": fc.report.tokens.examples, "total": fc.report.tokens.total,
                                "min": fc.report.tokens.min, "max": fc.report.tokens.max}}
    return {"ftlib_export_checks": FORMAT_VERSION, "provider": provider, "base_model": base_model,
            "usable": usable, "fingerprint": fingerprint(provider, base_model),
            "export_dir": export_dir.as_posix(), "files": out}


# -- in validate ---------------------------------------------------------------------------------------
def load_usable(path: Path | None, export_dir: Path, provider: str, base_model: str | None,
                shas: dict[str, str]) -> dict[str, Any] | None:
    """The checks file's per-file entries when it describes exactly these files for this target, base model and
    code (sources re-based onto `export_dir` as given); None when the files must be checked instead."""
    if path is None or not path.is_file():
        return None
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    files = doc.get("files") if isinstance(doc, dict) else None
    if (not isinstance(files, dict) or doc.get("ftlib_export_checks") != FORMAT_VERSION or not doc.get("usable")
            or doc.get("provider") != provider or doc.get("base_model") != base_model
            or set(files) != set(shas) or any(files[n].get("sha256") != s for n, s in shas.items())
            or doc.get("fingerprint") != fingerprint(provider, base_model)):
        return None
    old, new = str(doc.get("export_dir")), export_dir.as_posix()
    if old != new:
        for name, entry in files.items():
            for issue in entry["report"]["issues"]:
                src = issue.get("source")
                if src and src.startswith(f"{old}/{name}:"):
                    issue["source"] = f"{new}/{name}:" + src.rpartition(":")[2]
    return files
