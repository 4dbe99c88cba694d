"""The provider-neutral training record: one model rich enough for every format ftlib reads or writes.

Formats translate to and from these types, so no exporter has to invent data and every
format round-trips through the same thing. The content id is a hash of the training content only
(never source, metadata or group), so one conversation read from two files or two formats is one example.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import filetype
import orjson

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")
Kind = Literal["sft", "preference"]


class RecordError(ValueError):
    """A record that cannot be built; `field` names the offending field so errors can point at it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the byte form hashed for ids and written to tracked files."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class Attachment:
    """An image or document given to the model: bytes (inline) or a URI, identified by sha256.

    For URI-only attachments the sha256 is of the URI text: ftlib never downloads at ingest.
    """

    mime_type: str
    sha256: str
    data: bytes | None = None
    uri: str | None = None
    detail: str | None = None  # OpenAI image detail: low | high | auto

    @classmethod
    def from_bytes(cls, data: bytes, mime_type: str | None = None, detail: str | None = None) -> Attachment:
        mime = mime_type or sniff_mime(data)
        if mime is None:
            raise RecordError("cannot detect the attachment type; pass mime_type=", "mime_type")
        return cls(mime_type=mime, sha256=sha256_hex(data), data=data, detail=detail)

    @classmethod
    def from_path(cls, path: str | Path, mime_type: str | None = None, detail: str | None = None) -> Attachment:
        p = Path(path)
        data = p.read_bytes()
        mime = mime_type or sniff_mime(data) or mimetypes.guess_type(p.name)[0]
        return cls.from_bytes(data, mime, detail)

    @classmethod
    def from_uri(cls, uri: str, mime_type: str | None = None, detail: str | None = None) -> Attachment:
        if uri.startswith("data:"):
            header, _, payload = uri.partition(",")
            declared = header[5:].split(";")[0] or None
            try:
                data = base64.b64decode(payload, validate=True)
            except ValueError as e:
                raise RecordError(f"data URL is not valid base64: {e}", "url") from e
            return cls.from_bytes(data, mime_type or declared, detail)
        mime = mime_type or mimetypes.guess_type(uri.split("?")[0])[0] or "application/octet-stream"
        return cls(mime_type=mime, sha256=sha256_hex(uri.encode()), uri=uri, detail=detail)

    def data_url(self) -> str:
        """The attachment as a URL: the original URI, or a base64 data URL for inline bytes."""
        if self.data is None:
            return self.uri or ""
        return f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode()}"

    @property
    def is_image(self) -> bool:
        return self.mime_type.startswith("image/")

    def canonical(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mime_type": self.mime_type, "sha256": self.sha256}
        if self.detail:
            d["detail"] = self.detail
        return d


def sniff_mime(data: bytes) -> str | None:
    """Detect the type from magic bytes rather than trusting file names."""
    kind = filetype.guess(data)
    return kind.mime if kind else None


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str = "{}"  # JSON text, as the model emits it

    def canonical(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    content: str = ""
    attachments: tuple[Attachment, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None  # tool name on tool results; participant name otherwise
    weight: int | None = None  # 0 or 1 on assistant messages; None means "train on it" (1)
    thinking: str | None = None  # reasoning text, where a format can carry it

    def canonical(self) -> dict[str, Any]:
        """Only what affects training, with defaults omitted so equivalent inputs hash the same."""
        d: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.attachments:
            d["attachments"] = [a.canonical() for a in self.attachments]
        if self.tool_calls:
            d["tool_calls"] = [t.canonical() for t in self.tool_calls]
        if self.tool_call_id:
            d["tool_call_id"] = self.tool_call_id
        if self.name:
            d["name"] = self.name
        if self.weight is not None and self.weight != 1:
            d["weight"] = self.weight
        if self.thinking:
            d["thinking"] = self.thinking
        return d


def _slot_init(cls: type) -> None:
    """Give a frozen slots dataclass an __init__ that fills each slot through its descriptor.

    The generated one assigns every field by name through object.__setattr__ (frozen classes must); building the
    messages of a million examples per stage made that ~2.5x cost (1.2 against 0.5 us a message) a visible share
    of export. Same parameters, defaults and result; tests/test_records.py compares both field by field.
    """
    fs = fields(cls)
    if any(not f.init or f.default_factory is not MISSING for f in fs) or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: only plain fields with plain defaults can take a slot __init__")
    params = ", ".join(f.name if f.default is MISSING else f"{f.name}=_d{i}" for i, f in enumerate(fs))
    body = "".join(f"        _s{i}(self, {f.name})\n" for i, f in enumerate(fs))
    outer = ", ".join([f"_s{i}" for i in range(len(fs))] + [f"_d{i}" for i in range(len(fs))])
    src = f"def make({outer}):\n    def __init__(self, {params}):\n{body}    return __init__\n"
    ns: dict[str, Any] = {}
    exec(src, ns)  # generated from the field list, as dataclasses itself does
    init = ns["make"](*(cls.__dict__[f.name].__set__ for f in fs), *(f.default for f in fs))
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[misc]


for _cls in (Attachment, ToolCall, Message):  # what every reader and store builds, per field of every example
    _slot_init(_cls)
del _cls


def message(role: str, content: str = "", **kw: Any) -> Message:
    """Build a message, accepting lists for the tuple fields."""
    if role not in ROLES:
        raise RecordError(f"unknown role {role!r}; use one of {', '.join(ROLES)}", "role")
    for key in ("attachments", "tool_calls"):
        if key in kw:
            kw[key] = tuple(kw[key] or ())
    return Message(role=role, content=content, **kw)


@dataclass(slots=True)
class Example:
    """One training example: a chat conversation (SFT) or a prompt with preferred/rejected replies (DPO)."""

    messages: tuple[Message, ...]
    tools: tuple[dict[str, Any], ...] = ()
    parallel_tool_calls: bool | None = None
    chosen: Message | None = None
    rejected: Message | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    group: str | None = None
    source: str | None = None  # "file:line"

    def __post_init__(self) -> None:
        # An empty system prompt carries nothing to train on, and exported it becomes an empty system message that
        # some trainers reject or render as a blank turn: it is dropped, so `"system": ""` and no system key are
        # the same example (and the same id) in every format.
        msgs = self.messages
        for m in msgs:
            if m.role == "system" and not m.attachments and not m.content.strip():
                self.messages = tuple(m for m in msgs if m.role != "system" or m.attachments or m.content.strip())
                break

    @property
    def kind(self) -> Kind:
        return "preference" if self.chosen is not None or self.rejected is not None else "sft"

    def canonical(self) -> dict[str, Any]:
        d: dict[str, Any] = {"messages": [m.canonical() for m in self.messages]}
        if self.tools:
            d["tools"] = list(self.tools)
        if self.parallel_tool_calls is not None:
            d["parallel_tool_calls"] = self.parallel_tool_calls
        if self.kind == "preference":
            d["chosen"] = self.chosen.canonical() if self.chosen else None
            d["rejected"] = self.rejected.canonical() if self.rejected else None
        return d

    @property
    def id(self) -> str:
        return sha256_hex(canonical_json(self.canonical()))

    def attachments(self) -> Iterable[Attachment]:
        for m in self.all_messages():
            yield from m.attachments

    def all_messages(self) -> Iterable[Message]:
        yield from self.messages
        if self.chosen is not None:
            yield self.chosen
        if self.rejected is not None:
            yield self.rejected

    # -- constructors people expect -------------------------------------------------------------
    @classmethod
    def from_pair(
        cls,
        user: str,
        assistant: str,
        system: str | None = None,
        attachments: Sequence[Attachment | str | Path | Any] = (),
        *,
        user_attachments: Sequence[Attachment | str | Path | Any] | None = None,
        **kw: Any,
    ) -> Example:
        """A single-turn example. Attachments go on the user turn: Attachment objects, file paths, URLs, or any
        object with `data` (bytes) and `mime_type` (the seed library's RactoFile). `user_attachments=` is the
        seed library's name for `attachments=`."""
        if user_attachments is not None:
            if attachments:
                raise TypeError("pass attachments= or user_attachments= (the same thing), not both")
            attachments = user_attachments
        msgs = []
        if system:
            msgs.append(Message("system", system))
        msgs.append(Message("user", user, attachments=tuple(_as_attachment(a) for a in attachments)))
        msgs.append(Message("assistant", assistant))
        return cls(messages=tuple(msgs), **kw)

    @classmethod
    def from_turns(cls, turns: Iterable[tuple[str, str] | Message], system: str | None = None, **kw: Any) -> Example:
        """A conversation from (role, content) pairs or Message objects."""
        msgs = [Message("system", system)] if system else []
        for t in turns:
            msgs.append(t if isinstance(t, Message) else message(t[0], t[1]))
        return cls(messages=tuple(msgs), **kw)

    @classmethod
    def from_conversation(cls, turns: Iterable[tuple[str, str] | Message], **kw: Any) -> Example:
        """The seed library's name for from_turns: `[("system", ...), ("user", ...), ("assistant", ...)]`."""
        return cls.from_turns(turns, **kw)

    @classmethod
    def preference(
        cls, prompt: Iterable[tuple[str, str] | Message] | str, chosen: str | Message, rejected: str | Message,
        system: str | None = None, **kw: Any,
    ) -> Example:
        """A DPO example: the prompt conversation plus a preferred and a rejected assistant reply."""
        turns = [("user", prompt)] if isinstance(prompt, str) else prompt
        base = cls.from_turns(turns, system=system)
        return cls(
            messages=base.messages,
            chosen=chosen if isinstance(chosen, Message) else Message("assistant", chosen),
            rejected=rejected if isinstance(rejected, Message) else Message("assistant", rejected),
            **kw,
        )


def _as_attachment(a: Attachment | str | Path | Any) -> Attachment:
    if isinstance(a, Attachment):
        return a
    data, mime = getattr(a, "data", None), getattr(a, "mime_type", None)
    if isinstance(data, bytes) and (mime is None or isinstance(mime, str)):  # a file object such as RactoFile
        return Attachment.from_bytes(data, mime)
    if not isinstance(a, str | Path):
        raise RecordError(f"cannot use a {type(a).__name__} as an attachment; pass an Attachment, a file path, a URL "
                          "or an object with data (bytes) and mime_type", "attachments")
    s = str(a)
    if "://" in s or s.startswith("data:"):
        return Attachment.from_uri(s)
    return Attachment.from_path(s)


# -- Arrow / row form ---------------------------------------------------------------------------
# The row form is what parquet holds and what record batches yield via to_pylist(). Attachment bytes
# live in their own `blobs` column (sha256 -> bytes) so readers that only need text never load them.

def arrow_schema():  # -> pa.Schema (pyarrow imported lazily: keeps `import ftlib.records` cheap)
    import pyarrow as pa

    attachment = pa.struct([
        ("mime_type", pa.string()), ("sha256", pa.string()), ("uri", pa.string()), ("detail", pa.string()),
    ])
    tool_call = pa.struct([("id", pa.string()), ("name", pa.string()), ("arguments", pa.string())])
    msg = pa.struct([
        ("role", pa.string()),
        ("content", pa.string()),
        ("attachments", pa.list_(attachment)),
        ("tool_calls", pa.list_(tool_call)),
        ("tool_call_id", pa.string()),
        ("name", pa.string()),
        ("weight", pa.int8()),
        ("thinking", pa.string()),
    ])
    return pa.schema([
        ("id", pa.string()),
        ("kind", pa.string()),
        ("messages", pa.list_(msg)),
        ("tools", pa.string()),  # canonical JSON list, null when none
        ("parallel_tool_calls", pa.bool_()),
        ("chosen", msg),
        ("rejected", msg),
        ("metadata", pa.string()),  # canonical JSON object, null when empty
        ("group", pa.string()),
        ("source", pa.string()),
        ("blobs", pa.list_(pa.struct([("sha256", pa.string()), ("data", pa.binary())]))),
    ])


def _msg_row(m: Message) -> dict[str, Any]:
    return {
        "role": m.role,
        "content": m.content,
        "attachments": [
            {"mime_type": a.mime_type, "sha256": a.sha256, "uri": a.uri, "detail": a.detail} for a in m.attachments
        ],
        "tool_calls": [{"id": t.id, "name": t.name, "arguments": t.arguments} for t in m.tool_calls],
        "tool_call_id": m.tool_call_id,
        "name": m.name,
        "weight": m.weight,
        "thinking": m.thinking,
    }


def to_row(ex: Example, example_id: str | None = None) -> dict[str, Any]:
    """The Arrow row for an example (pass a precomputed id to avoid hashing twice)."""
    blobs: dict[str, bytes] = {}
    for a in ex.attachments():
        if a.data is not None:
            blobs[a.sha256] = a.data
    return {
        "id": example_id or ex.id,
        "kind": ex.kind,
        "messages": [_msg_row(m) for m in ex.messages],
        "tools": canonical_json(list(ex.tools)).decode() if ex.tools else None,
        "parallel_tool_calls": ex.parallel_tool_calls,
        "chosen": _msg_row(ex.chosen) if ex.chosen else None,
        "rejected": _msg_row(ex.rejected) if ex.rejected else None,
        "metadata": canonical_json(ex.metadata).decode() if ex.metadata else None,
        "group": ex.group,
        "source": ex.source,
        "blobs": [{"sha256": k, "data": v} for k, v in sorted(blobs.items())],
    }


def _msg_from_row(r: Mapping[str, Any], blobs: Mapping[str, bytes]) -> Message:
    return Message(
        role=r["role"],
        content=r["content"] or "",
        attachments=tuple(
            Attachment(
                mime_type=a["mime_type"], sha256=a["sha256"], data=blobs.get(a["sha256"]), uri=a["uri"],
                detail=a["detail"],
            )
            for a in r["attachments"] or ()
        ),
        tool_calls=tuple(ToolCall(t["id"], t["name"], t["arguments"]) for t in r["tool_calls"] or ()),
        tool_call_id=r["tool_call_id"],
        name=r["name"],
        weight=r["weight"],
        thinking=r["thinking"],
    )


def from_row(row: Mapping[str, Any]) -> Example:
    """Inverse of to_row. A row read without the `blobs` column yields attachments without bytes."""
    blobs = {b["sha256"]: b["data"] for b in row.get("blobs") or ()}
    return Example(
        messages=tuple(_msg_from_row(m, blobs) for m in row["messages"]),
        tools=tuple(orjson.loads(row["tools"])) if row.get("tools") else (),
        parallel_tool_calls=row.get("parallel_tool_calls"),
        chosen=_msg_from_row(row["chosen"], blobs) if row.get("chosen") else None,
        rejected=_msg_from_row(row["rejected"], blobs) if row.get("rejected") else None,
        metadata=orjson.loads(row["metadata"]) if row.get("metadata") else {},
        group=row.get("group"),
        source=row.get("source"),
    )
