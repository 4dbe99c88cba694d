"""The submit path's own check: the exact bytes about to be uploaded pass the target's rules, secrets included.

`ftlib finetune --submit` (and plan_or_submit / submit_once behind it) calls `check_files` right before a job would
be created, so a file edited after `ftlib validate`, or a pipeline run without the validate stage, cannot reach a
provider unchecked. It is cheap when it can be: the validate stage's report is reused when it describes the same
bytes (sha256), the same target and the same base model; only the secret scan of the raw lines always runs (a few
microseconds a line) because it also sees keys outside the fields ftlib models.

Errors and secrets always refuse. Warnings about examples (they have a file:line) refuse unless accepted
(`--accept-warnings`, `finetune.<target>.accept_warnings: true`); advisories about the whole dataset or the
base model (few examples, a deprecated model) are printed, never blocking: they are about the plan, not the bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ftlib import layout, validate
from ftlib.errors import StageError
from ftlib.issues import Issue
from ftlib.secret_scan import SECRET_NAMES, find_secrets
from ftlib.targets.base import Target

_CHUNK = 2000
_SHOWN = 5  # issues quoted in the refusal; the rest are counted


class UploadRefused(StageError):
    """The files a job would train on fail the target's rules; nothing was uploaded or recorded."""


@dataclass
class FileCheck:
    path: Path
    sha256: str
    reused: bool  # the validate stage's report described these bytes
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)  # about examples (file:line): refuse unless accepted
    advisories: list[Issue] = field(default_factory=list)  # about the dataset or model: shown, never refuse
    error_count: int = 0
    warning_count: int = 0


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            if raw.strip():
                yield n, raw


def _chunks(path: Path) -> Iterator[list[tuple[int, bytes]]]:
    chunk: list[tuple[int, bytes]] = []
    for item in _lines(path):
        chunk.append(item)
        if len(chunk) >= _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def raw_secret_issues(path: Path) -> tuple[list[Issue], str]:
    """A secret scan of every raw line (it sees keys anywhere in the bytes, even in keys ftlib does not model),
    and the sha256 of the bytes scanned."""
    out = []
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            h.update(raw)
            kinds = find_secrets(raw.decode("utf-8", "replace")) if raw.strip() else None
            if kinds:
                names = ", ".join(f"{SECRET_NAMES[k]} ({k})" for k in kinds)
                out.append(Issue("likely_secret", "error", f"the line contains what looks like {names}; secrets "
                                 "must never be uploaded: remove it (fix the raw data and re-run the pipeline) and "
                                 "rotate the credential", source=f"{path}:{n}"))
    return out, h.hexdigest()


def validate_file(path: Path, target: Target, base_model: str | None, split: str) -> validate.ValidationReport:
    """The validate stage's checks for one exported file (its format decoded, the target's rules, dataset rules)."""
    fmt = target.formats.get(layout.kind_of(path.name))
    report = validate.ValidationReport.empty(target.name, base_model, split)
    if fmt is None:
        report.issues.append(Issue("unsupported_kind", "error", f"{target.name} has no format for "
                                   f"{layout.kind_of(path.name)} examples; re-export", source=str(path)))
        return report
    for chunk in _chunks(path):
        report.merge(validate.check_lines(fmt, path, chunk, target.name, base_model, split))
    validate.finish_dataset(report, base_model)
    return report


def _recorded(report: Path | None, target: Target, path: Path, sha: str, base_model: str) -> dict[str, Any] | None:
    """The validate stage's entry for these exact bytes, target and base model, if it has one."""
    if report is None or not report.is_file():
        return None
    try:
        data = orjson.loads(report.read_bytes())
    except orjson.JSONDecodeError:
        return None
    entry = (data.get("files") or {}).get(path.name) if isinstance(data, dict) else None
    if not isinstance(entry, dict) or data.get("provider") not in (target.name, target.export_name):
        return None
    if entry.get("sha256") != sha or entry.get("base_model") != base_model:
        return None
    return entry


def _sort(check: FileCheck, issues: list[Issue]) -> None:
    for i in issues:
        if i.severity == "error":
            check.errors.append(i)
        elif i.source or i.example_id:
            check.warnings.append(i)
        else:
            check.advisories.append(i)


def check_file(path: Path, sha: str, target: Target, base_model: str, split: str,
               report: Path | None = None) -> FileCheck:
    entry = _recorded(report, target, path, sha, base_model)
    check = FileCheck(path, sha, reused=entry is not None)
    if entry is not None:
        _sort(check, [Issue(i["code"], i["severity"], i["message"], i.get("example_id"), i.get("source"),
                            i.get("field")) for i in entry.get("issues") or ()])
        # Listed issues may be truncated in the report; its counts are complete.
        check.error_count = max(int(entry.get("errors") or 0), len(check.errors))
        dataset_level = len(check.advisories)
        check.warning_count = max(int(entry.get("warnings") or 0) - dataset_level, len(check.warnings))
    else:
        _sort(check, validate_file(path, target, base_model, split).issues)
        check.error_count, check.warning_count = len(check.errors), len(check.warnings)
    raw, scanned = raw_secret_issues(path)
    if scanned != sha:
        raise UploadRefused(f"{path} changed after it was hashed for the job key (sha256 {sha[:12]}, now "
                            f"{scanned[:12]}); re-run the command so the job key and the check describe the same bytes")
    known = {i.source for i in check.errors if i.code == "likely_secret"}
    extra = [i for i in raw if i.source not in known]
    check.errors.extend(extra)
    check.error_count += len(extra)
    return check


def check_files(files: dict[str, Path], shas: dict[str, str], target: Target, base_model: str, *,
                accept_warnings: bool = False, report: Path | None = None,
                say: Callable[[str], None] | None = None) -> list[FileCheck]:
    """Check each file a job would upload ({"train": path, "validation": path}); raise UploadRefused naming
    file:line, field and fix when it must not be uploaded. Returns the checks (for the plan output)."""
    checks = [check_file(path, shas[role], target, base_model, "train" if role == "train" else "validation",
                         report) for role, path in files.items()]
    errors = [i for c in checks for i in c.errors]
    warnings = [i for c in checks for i in c.warnings]
    n_errors = sum(c.error_count for c in checks)
    n_warnings = sum(c.warning_count for c in checks)
    if say is not None:
        how = ", ".join(f"{c.path.name} ({'validate report reused: same sha256' if c.reused else 'validated now'})"
                        for c in checks)
        say(f"[{target.name}] checked before upload: {how}: {n_errors} error(s), {n_warnings} warning(s)")
    if n_errors:
        secrets = sum(1 for i in errors if i.code == "likely_secret")
        what = f"{n_errors} error(s)" + (f", {secrets} of them likely secrets" if secrets else "")
        raise UploadRefused(f"refusing to upload to {target.name}: {what} in the files the job would train on "
                            f"(nothing was uploaded). {_listing(errors)}. Fix the data and re-run the pipeline "
                            "(`ftlib validate` lists every issue); errors and secrets cannot be overridden.")
    if n_warnings and not accept_warnings:
        raise UploadRefused(f"refusing to upload to {target.name}: {n_warnings} warning(s) about examples in the "
                            f"files the job would train on (nothing was uploaded). {_listing(warnings)}. Fix them, "
                            f"or pass --accept-warnings (finetune.{target.name}.accept_warnings: true in params.yaml) "
                            "to submit anyway.")
    return checks


def _listing(issues: list[Issue]) -> str:
    shown = "; ".join(str(i) for i in issues[:_SHOWN])
    more = f" (and {len(issues) - _SHOWN} more)" if len(issues) > _SHOWN else ""
    return f"First: {shown}{more}"
