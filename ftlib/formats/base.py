"""The format plug-in protocol: a pure encoder/decoder pair per on-disk JSONL line shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ftlib.errors import FormatError
from ftlib.records import Example, Kind

__all__ = ["Format", "FormatError"]


class Format(Protocol):
    """One JSONL line shape. Encoders and decoders are pure: no I/O, no global state."""

    name: str  # registry key, e.g. "openai-chat"
    kind: Kind  # which examples it holds: "sft" or "preference"
    priority: int  # detection order, lowest first: shapes with distinctive keys before catch-alls

    def detect(self, obj: Mapping[str, Any]) -> bool:
        """True when a parsed line looks like this format (used to auto-detect input files)."""
        ...

    def decode(self, obj: Mapping[str, Any], source: str | None = None) -> Example:
        """Line -> Example. Raises FormatError naming the field and the fix."""
        ...

    def encode(self, ex: Example) -> dict[str, Any]:
        """Example -> line. Raises FormatError(code="unsupported") when the format cannot hold the example."""
        ...

    def losses(self, ex: Example) -> list[str]:
        """What encode() would leave out of this example (e.g. "thinking"), so exports can report it."""
        ...
