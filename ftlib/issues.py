"""One shape for every problem ftlib reports: ingest rejects, export losses and validation findings."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from ftlib.secret_scan import redact

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Issue:
    """A problem with one example (or the whole dataset when example_id is None).

    `message` says what is wrong and how to fix it; `source` is "file:line" so users can jump to it.
    """

    code: str
    severity: Severity
    message: str
    example_id: str | None = None
    source: str | None = None
    field: str | None = None

    def __post_init__(self) -> None:
        """The one net every report, log line and refusal passes through: a message or field that quotes input
        (a format error naming a value, a metadata key) never carries a likely secret or a URL password."""
        for name in ("message", "field"):
            text = getattr(self, name)
            if text:
                safe = redact(text)
                if safe != text:
                    object.__setattr__(self, name, safe)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def __str__(self) -> str:
        where = self.source or (self.example_id[:12] if self.example_id else "dataset")
        fld = f" [{self.field}]" if self.field else ""
        return f"{where}: {self.severity} {self.code}{fld}: {self.message}"
