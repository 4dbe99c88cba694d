"""Rules every target shares: the example's basic sanity, likely secrets, tool-call links. Pure functions.

Messages never quote training text: a secret or private data must not leak into a report.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from ftlib.issues import Issue, Severity
from ftlib.limits import ImageLimits
from ftlib.records import ROLES, Attachment, Example, Message, sniff_mime
from ftlib.secret_scan import SECRET_NAMES, find_secrets, redact

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Sink:
    """Collects issues for one example with its id and source filled in (the id is hashed only once an issue is
    found: nearly every example has none)."""

    __slots__ = ("_ex", "_ex_id", "issues", "source")

    def __init__(self, ex: Example) -> None:
        self._ex = ex
        self._ex_id: str | None = None
        self.source = ex.source
        self.issues: list[Issue] = []

    @property
    def ex_id(self) -> str:
        if self._ex_id is None:
            self._ex_id = self._ex.id
        return self._ex_id

    def add(self, code: str, severity: Severity, fld: str | None, message: str) -> None:
        self.issues.append(Issue(code, severity, message, self.ex_id, self.source, fld))

    def error(self, code: str, fld: str | None, message: str) -> None:
        self.add(code, "error", fld, message)

    def warn(self, code: str, fld: str | None, message: str) -> None:
        self.add(code, "warning", fld, message)


_PATHS = tuple(f"messages[{i}]" for i in range(64))  # the rules ask for these ~40 times per example


def fields(ex: Example) -> Iterator[tuple[str, Message]]:
    """Every message with the dotted path exporters and users see."""
    for i, m in enumerate(ex.messages):
        yield _PATHS[i] if i < 64 else f"messages[{i}]", m
    if ex.chosen is not None:
        yield "chosen", ex.chosen
    if ex.rejected is not None:
        yield "rejected", ex.rejected


def dedupe(issues: list[Issue]) -> list[Issue]:
    seen: set[tuple[str, str | None]] = set()
    out = []
    for i in issues:
        key = (i.code, i.field)
        if key not in seen:
            seen.add(key)
            out.append(i)
    return out


# -- provider-neutral rules --------------------------------------------------------------------------
_SECRET_FIX = ("secrets must never be uploaded: remove it or replace it with a placeholder such as <REDACTED>, and "
               "rotate the credential")


def _leaves(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(dotted path, text) of every string in a JSON value, dict keys included; iterative, so nesting depth
    cannot blow the stack."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        at, v = stack.pop()
        if isinstance(v, str):
            yield at, v
        elif isinstance(v, Mapping):
            for k, item in v.items():
                key = str(k)
                yield f"{at}.<key>", key
                stack.append((f"{at}.{key}" if key.isidentifier() else f"{at}[{key!r}]", item))
        elif isinstance(v, list | tuple):
            stack.extend((f"{at}[{i}]", item) for i, item in enumerate(v))


def _text_attachment(a: Attachment) -> str | None:
    if a.data is not None and (a.mime_type.startswith("text/") or a.mime_type.endswith(("json", "xml", "yaml"))):
        return a.data.decode("utf-8", "replace")
    return None


def secret_fields(ex: Example) -> Iterator[tuple[str, str]]:
    """(field path, text) of every string an example carries: what training or an upload could ever contain."""
    for path, m in fields(ex):
        yield f"{path}.content", m.content
        if m.thinking:
            yield f"{path}.thinking", m.thinking
        if m.name:
            yield f"{path}.name", m.name
        if m.tool_call_id:
            yield f"{path}.tool_call_id", m.tool_call_id
        for j, t in enumerate(m.tool_calls):
            yield f"{path}.tool_calls[{j}].id", t.id
            yield f"{path}.tool_calls[{j}].name", t.name
            yield f"{path}.tool_calls[{j}].arguments", t.arguments
        for j, a in enumerate(m.attachments):
            if a.uri:
                yield f"{path}.attachments[{j}].uri", a.uri
            text = _text_attachment(a)
            if text:
                yield f"{path}.attachments[{j}].data", text
    for i, tool in enumerate(ex.tools):
        yield from _leaves(tool, f"tools[{i}]")
    if ex.metadata:
        yield from _leaves(ex.metadata, "metadata")
    if ex.group:
        yield "group", ex.group


def _all_text(ex: Example) -> str:
    """Every string of the example joined: the one scan nearly every (clean) example gets."""
    parts: list[str] = []
    add = parts.append
    for m in ex.all_messages():
        add(m.content)
        if m.thinking:
            add(m.thinking)
        if m.name:
            add(m.name)
        if m.tool_call_id:
            add(m.tool_call_id)
        for t in m.tool_calls:
            add(t.id)
            add(t.name)
            add(t.arguments)
        for a in m.attachments:
            if a.uri:
                add(a.uri)
            text = _text_attachment(a)
            if text:
                add(text)
    if ex.tools or ex.metadata:
        parts.extend(t for _, t in _leaves([ex.tools, ex.metadata], ""))
    if ex.group:
        add(ex.group)
    return "\n".join(parts)


def check_secrets(ex: Example, s: Sink) -> None:
    """Likely secrets in any string of the example: content, names, ids, tool definitions, metadata, group."""
    if not find_secrets(_all_text(ex)):  # nearly always: one scan, no field paths built
        return
    for fld, text in secret_fields(ex):
        for kind in find_secrets(text):
            s.error("likely_secret", redact(fld),
                    f"{redact(fld)} contains what looks like {SECRET_NAMES[kind]} ({kind}); {_SECRET_FIX}")


# -- free-form JSON (metadata, tool definitions): what parquet and JSON writers can keep exactly -----------
MAX_JSON_DEPTH = 200  # orjson reads 1024 levels but writes at most ~254: leave room for the record around it
_U64 = 2**64


def json_value_issues(ex: Example) -> list[Issue]:
    """metadata and tools must survive the trip to parquet and back unchanged: not nested deeper than
    MAX_JSON_DEPTH, and no whole number too big for 64 bits (the JSON reader made it an approximate float).
    Checked by the readers before anything hashes or stores the example (both would fail or change it)."""
    out: list[Issue] = []
    for name, value in (("metadata", ex.metadata), ("tools", list(ex.tools))):
        if not value:
            continue
        stack: list[tuple[str, Any, int]] = [(name, value, 1)]
        while stack:
            at, v, depth = stack.pop()
            if depth > MAX_JSON_DEPTH:
                out.append(Issue("too_deeply_nested", "error",
                                 f"{name} is nested more than {MAX_JSON_DEPTH} levels deep, which JSON writers and "
                                 "parquet cannot store; flatten it (or store it as one JSON string)",
                                 None, ex.source, redact(at)))
                break
            if isinstance(v, float) and v.is_integer() and abs(v) >= _U64:
                out.append(Issue("number_too_big", "error",
                                 f"{at} holds a whole number beyond 64 bits, which the JSON reader can only keep as "
                                 "an approximate float (its last digits would change); write it as a string",
                                 None, ex.source, redact(at)))
            elif isinstance(v, Mapping):
                stack.extend((f"{at}.{k}" if str(k).isidentifier() else f"{at}[{str(k)!r}]", item, depth + 1)
                             for k, item in v.items())
            elif isinstance(v, list | tuple):
                stack.extend((f"{at}[{i}]", item, depth + 1) for i, item in enumerate(v))
    return out


# -- attachments ------------------------------------------------------------------------------------
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_MIME_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png",
                 "audio/mp3": "audio/mpeg", "audio/x-wav": "audio/wav", "audio/wave": "audio/wav"}
_BINARY_KINDS = ("image/", "audio/", "video/", "application/pdf")


def is_local_reference(uri: str) -> bool:
    """A reference to a file on some machine: a file: URL or a path (/etc/passwd, ../x.png, C:\\x, \\\\host\\x,
    images/a.png). Remote URLs (https:, gs:, s3:, data:) are not; "C:" is a drive letter, not a scheme."""
    u = uri.strip()
    if not u:
        return False
    if u[:5].lower() == "file:":
        return True
    scheme = _SCHEME.match(u)
    return not (scheme and len(scheme.group(0)) > 2)


def _declared(mime: str) -> str:
    m = mime.split(";")[0].strip().lower()
    return _MIME_ALIASES.get(m, m)


def has_attachments(ex: Example) -> bool:
    """Whether any message carries an attachment: most examples are text only, and the attachment rules, run for
    every example and target, then return at once."""
    return (any(m.attachments for m in ex.messages) or (ex.chosen is not None and bool(ex.chosen.attachments))
            or (ex.rejected is not None and bool(ex.rejected.attachments)))


def check_local_references(ex: Example, s: Sink) -> None:
    """No attachment may point at a local file: a trainer or uploader would read this machine's files."""
    if not has_attachments(ex):
        return
    for path, m in fields(ex):
        for j, a in enumerate(m.attachments):
            if a.uri and is_local_reference(a.uri):
                s.error("local_attachment_path", f"{path}.attachments[{j}].uri",
                        "the attachment points at a local file (a path or file: URL); ftlib never reads local "
                        "files into an export and a trainer must not either: inline the bytes (a data: URL, or "
                        "Attachment.from_path) or upload the file and use its https:// or gs:// URL")


def local_reference_issues(ex: Example) -> list[Issue]:
    """check_local_references as a list (the exporters refuse such examples whatever the target)."""
    s = Sink(ex)
    check_local_references(ex, s)
    return s.issues


def check_attachments(ex: Example, s: Sink) -> None:
    """Every target: no local file references, and inline bytes are what their declared type says (HTML labelled
    image/png is not an image)."""
    if not has_attachments(ex):
        return
    check_local_references(ex, s)
    for path, m in fields(ex):
        for j, a in enumerate(m.attachments):
            fld = f"{path}.attachments[{j}]"
            if a.data is None:
                continue
            declared = _declared(a.mime_type)
            sniffed = sniff_mime(a.data)
            if sniffed is None and declared.startswith(_BINARY_KINDS):
                s.error("attachment_type_mismatch", f"{fld}.mime_type",
                        f"the attachment is declared {declared} but its bytes are not a recognised {declared} file "
                        "(e.g. an HTML page or a truncated download); replace it with the real file")
            elif sniffed is not None and _declared(sniffed) != declared:
                s.error("attachment_type_mismatch", f"{fld}.mime_type",
                        f"the attachment is declared {declared} but its bytes are {sniffed}; fix the declared type "
                        "or convert the file")


def check_image_limits(ex: Example, s: Sink, limits: ImageLimits, target: str) -> None:
    """Inline images against one target's limits (ImageLimits in the target's models.py); URLs are not fetched."""
    if not has_attachments(ex):
        return
    from ftlib.tokens import image_size

    for path, m in fields(ex):
        for j, a in enumerate(m.attachments):
            if a.data is None or not a.is_image:
                continue
            fld = f"{path}.attachments[{j}]"
            if limits.max_bytes is not None and len(a.data) > limits.max_bytes:
                s.error("image_too_large", fld,
                        f"the image is {len(a.data) / 1048576:.1f} MB, over {target}'s "
                        f"{limits.max_bytes / 1048576:g} MB limit ({limits.source}); downscale or compress it")
            size = image_size(a.data)
            if size is None:
                continue
            w, h = size
            if (limits.max_side is not None and max(w, h) > limits.max_side) or (
                    limits.max_pixels is not None and w * h > limits.max_pixels):
                bound = (f"{limits.max_side:,} px per side" if limits.max_side is not None else "") + (
                    " and " if limits.max_side is not None and limits.max_pixels is not None else "") + (
                    f"{limits.max_pixels:,} pixels" if limits.max_pixels is not None else "")
                s.error("image_dimensions_too_large", fld,
                        f"the image is {w:,} x {h:,} pixels, over {target}'s limit of {bound} ({limits.source}); "
                        "downscale it")


def check_basic(ex: Example) -> list[Issue]:
    """Provider-neutral sanity used by ingest to reject broken lines before they reach the dataset."""
    s = Sink(ex)
    basic(ex, s)
    exportable_everywhere(ex, s)
    return s.issues


def exportable_everywhere(ex: Example, s: Sink) -> None:
    """Ingest-only structure rules: the canonical dataset must export to every provider, so lines that some
    provider rejects outright (OpenAI would accept an assistant-first chat; Bedrock and Vertex do not) are
    rejected at the door, where the user sees file:line, rather than failing one provider's validation later."""
    turns = [m for m in ex.messages if m.role != "system"]
    if turns and turns[0].role != "user":
        s.error("first_message_not_user", f"messages[{ex.messages.index(turns[0])}].role",
                "the conversation must start with a user message (after an optional system message); "
                "drop the leading assistant turn or put the user's message first")
    for i, m in enumerate(ex.messages):
        if m.role == "tool" and not m.tool_call_id:
            s.error("tool_message_missing_tool_call_id", f"messages[{i}].tool_call_id",
                    "a tool message needs tool_call_id naming the assistant tool call it answers; add it")


def basic(ex: Example, s: Sink) -> None:
    if not ex.messages:
        s.error("missing_messages_list", "messages",
                "the example has no messages; add the conversation (at least a user and an assistant message)")
    for path, m in fields(ex):
        if m.role not in ROLES:
            hint = " (use 'system' for developer instructions)" if m.role == "developer" else ""
            s.error("unrecognized_role", f"{path}.role",
                    f"role {m.role!r} is not one of {', '.join(ROLES)}; change the role{hint}")
        if (m.role in ("user", "assistant") and not m.content.strip() and not m.tool_calls
                and not m.attachments):
            s.error("missing_content", f"{path}.content",
                    f"the {m.role} message is empty; write its text or remove the message")
    if ex.kind == "sft":
        if ex.messages and not any(m.role == "assistant" for m in ex.messages):
            s.error("example_missing_assistant_message", "messages",
                    "the conversation has no assistant message, so there is nothing to train on; add the reply")
        elif ex.messages and ex.messages[-1].role != "assistant":
            s.error("last_message_not_assistant", f"messages[{len(ex.messages) - 1}]",
                    "the conversation must end with the assistant reply to train on; drop the trailing "
                    f"{ex.messages[-1].role} message or add the reply")
    else:
        for name, m in (("chosen", ex.chosen), ("rejected", ex.rejected)):
            if m is None:
                s.error("incomplete_preference", name,
                        f"the preference example has no {name} reply; add both a chosen and a rejected reply")
            elif m.role != "assistant":
                s.error("preference_reply_not_assistant", f"{name}.role",
                        f"the {name} reply must be an assistant message, not {m.role!r}")
        if ex.messages and ex.messages[-1].role == "assistant":
            s.warn("prompt_ends_with_assistant", f"messages[{len(ex.messages) - 1}]",
                   "the preference prompt ends with an assistant message; end it with the user turn being answered")
    check_secrets(ex, s)
    check_attachments(ex, s)


def _uses_tools(ex: Example) -> bool:
    return any(m.tool_calls or m.role == "tool" for m in ex.all_messages())


def check_tools(ex: Example, s: Sink, unanswered: Severity | None) -> None:
    """Tool definitions, tool-call JSON and call/result links (OpenAI and Vertex share these)."""
    if not ex.tools and not _uses_tools(ex):  # a plain chat, as most are: no rule below can apply
        return
    names: set[str] = set()
    for i, t in enumerate(ex.tools):
        fn = t.get("function") if isinstance(t, Mapping) else None
        name = fn.get("name") if isinstance(fn, Mapping) else None
        if not isinstance(name, str) or not name:
            s.error("tool_missing_name", f"tools[{i}].function.name",
                    'each tool needs {"type": "function", "function": {"name": ...}}; add the function name')
        elif not TOOL_NAME.match(name):
            s.error("invalid_tool_name", f"tools[{i}].function.name",
                    "function names may use only a-z, A-Z, 0-9, _ and -, at most 64 characters; rename the function")
        else:
            names.add(name)
    calls: dict[str, tuple[int, str, str]] = {}  # id -> (message index, function name, path)
    answered: set[str] = set()
    for path, m in fields(ex):
        for j, t in enumerate(m.tool_calls):
            fld = f"{path}.tool_calls[{j}]"
            if m.role != "assistant":
                s.error("tool_call_not_assistant", fld, "only assistant messages can call tools; move the call")
            if not t.name:
                s.error("tool_call_missing_name", f"{fld}.name", "the tool call has no function name; add it")
            elif names and t.name not in names:
                s.warn("tool_call_unknown_function", f"{fld}.name",
                       "the called function is not among the example's tools; add its definition to tools")
            try:
                args = orjson.loads(t.arguments)
            except orjson.JSONDecodeError:
                s.error("invalid_tool_arguments", f"{fld}.arguments",
                        "tool call arguments must be valid JSON text (an object); fix the JSON")
            else:
                if not isinstance(args, dict):
                    s.error("invalid_tool_arguments", f"{fld}.arguments",
                            "tool call arguments must be a JSON object; wrap the values in {...}")
            if not t.id:
                s.error("tool_call_missing_id", f"{fld}.id", "the tool call has no id; give each call a unique id")
            elif t.id in calls:
                s.error("duplicate_tool_call_id", f"{fld}.id", "two tool calls share this id; make ids unique")
            elif path.startswith("messages["):
                calls[t.id] = (int(path[9:-1]), t.name, fld)
        if m.role == "tool":
            if not m.tool_call_id:
                s.error("tool_message_missing_tool_call_id", f"{path}.tool_call_id",
                        "a tool message needs tool_call_id naming the assistant tool call it answers; add it")
            elif m.tool_call_id not in calls:
                s.error("tool_call_id_unknown", f"{path}.tool_call_id",
                        "tool_call_id does not match any earlier assistant tool call; fix the id or the order")
            else:
                answered.add(m.tool_call_id)
                if m.name and m.name != calls[m.tool_call_id][1]:
                    s.warn("tool_result_name_mismatch", f"{path}.name",
                           "the tool result names a different function than the call it answers; fix name")
    if unanswered is None:
        return
    last = len(ex.messages) - 1
    for cid, (mi, _name, fld) in calls.items():
        if cid not in answered and mi != last:  # a final call teaches the model to call; earlier ones need results
            s.add("tool_call_unanswered", unanswered, fld,
                  "this tool call has no tool message with its result; add the result after the call or drop the call")


