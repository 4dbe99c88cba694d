"""Provider rules for training data. Pure functions that return every problem, never stopping at the first.

Three layers: check_basic (provider-neutral sanity, used by ingest), check_example (one provider's rules for
one example, plus the official JSON schema of the exported OpenAI line), check_dataset / validate_dataset
(streamed once, adds dataset-level rules: example counts, one kind per file, retired base models, tokens).
Messages never quote training text: a secret or private data must not leak into a report.

Severity choices: an OpenAI example over the per-example token limit is a warning (OpenAI truncates it and the
job runs; the message says the reply is usually what gets cut), while Bedrock and Vertex limits are errors
(their validators reject the record). Retired base models are errors, deprecated ones warnings.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import orjson

from ftlib import limits, tokens
from ftlib.issues import Issue, Severity
from ftlib.limits import ModelSpec
from ftlib.records import ROLES, Example, Message
from ftlib.schema import schema_errors
from ftlib.secret_scan import SECRET_NAMES, find_secrets
from ftlib.tokens import TokenStats

PROVIDERS = ("openai", "anthropic", "gemini", "huggingface")
OPENAI_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
OPENAI_MAX_IMAGE_BYTES = 10 * 1024 * 1024
OPENAI_MAX_IMAGES = 10
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
BEDROCK_RESERVED = ("\nHuman:", "\nAssistant:")  # Claude's legacy prompt markers; Bedrock rejects them in records

# -- helpers -----------------------------------------------------------------------------------------
class _Sink:
    """Collects issues for one example with its id and source filled in."""

    __slots__ = ("ex_id", "issues", "source")

    def __init__(self, ex: Example) -> None:
        self.ex_id = ex.id
        self.source = ex.source
        self.issues: list[Issue] = []

    def add(self, code: str, severity: Severity, fld: str | None, message: str) -> None:
        self.issues.append(Issue(code, severity, message, self.ex_id, self.source, fld))

    def error(self, code: str, fld: str | None, message: str) -> None:
        self.add(code, "error", fld, message)

    def warn(self, code: str, fld: str | None, message: str) -> None:
        self.add(code, "warning", fld, message)


def _fields(ex: Example) -> Iterator[tuple[str, Message]]:
    """Every message with the dotted path exporters and users see."""
    for i, m in enumerate(ex.messages):
        yield f"messages[{i}]", m
    if ex.chosen is not None:
        yield "chosen", ex.chosen
    if ex.rejected is not None:
        yield "rejected", ex.rejected


def _dedupe(issues: list[Issue]) -> list[Issue]:
    seen: set[tuple[str, str | None]] = set()
    out = []
    for i in issues:
        key = (i.code, i.field)
        if key not in seen:
            seen.add(key)
            out.append(i)
    return out


# -- provider-neutral rules --------------------------------------------------------------------------
def _check_secrets(ex: Example, s: _Sink) -> None:
    def scan(fld: str, text: str | None) -> None:
        for kind in find_secrets(text or ""):
            s.error("likely_secret", fld,
                    f"{fld} contains what looks like {SECRET_NAMES[kind]} ({kind}); secrets must never be uploaded: "
                    "remove it or replace it with a placeholder such as <REDACTED>, and rotate the credential")

    texts: list[tuple[str, str | None]] = []
    for path, m in _fields(ex):
        texts.append((f"{path}.content", m.content))
        texts.append((f"{path}.thinking", m.thinking))
        texts.extend((f"{path}.tool_calls[{j}].arguments", t.arguments) for j, t in enumerate(m.tool_calls))
        texts.extend((f"{path}.attachments[{j}].uri", a.uri) for j, a in enumerate(m.attachments))
    if ex.tools:
        texts.append(("tools", orjson.dumps(list(ex.tools)).decode()))
    # One scan of the whole example (nearly always clean); only a hit pays for finding the fields.
    if find_secrets("\n".join(t for _, t in texts if t)):
        for fld, text in texts:
            scan(fld, text)


def check_basic(ex: Example) -> list[Issue]:
    """Provider-neutral sanity used by ingest to reject broken lines before they reach the dataset."""
    s = _Sink(ex)
    _basic(ex, s)
    _exportable_everywhere(ex, s)
    return s.issues


def _exportable_everywhere(ex: Example, s: _Sink) -> None:
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


def _basic(ex: Example, s: _Sink) -> None:
    if not ex.messages:
        s.error("missing_messages_list", "messages",
                "the example has no messages; add the conversation (at least a user and an assistant message)")
    for path, m in _fields(ex):
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
    _check_secrets(ex, s)


def _check_tools(ex: Example, s: _Sink, unanswered: Severity | None) -> None:
    """Tool definitions, tool-call JSON and call/result links (OpenAI and Vertex share these)."""
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
    for path, m in _fields(ex):
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


# -- OpenAI ------------------------------------------------------------------------------------------
def _check_openai(ex: Example, s: _Sink) -> None:
    images = 0
    for path, m in _fields(ex):
        if m.role == "developer":
            s.error("developer_role_not_allowed", f"{path}.role",
                    "OpenAI fine-tuning does not accept the developer role; use role 'system'")
        if m.weight is not None:
            if m.role != "assistant":
                s.error("weight_not_on_assistant", f"{path}.weight",
                        "weight is only allowed on assistant messages; remove it")
            elif m.weight not in (0, 1):
                s.error("invalid_weight", f"{path}.weight", "weight must be 0 (skip) or 1 (train); fix the value")
        for j, a in enumerate(m.attachments):
            fld = f"{path}.attachments[{j}]"
            if ex.kind == "preference":
                s.error("preference_not_text_only", fld, "OpenAI DPO examples are text only; remove the attachment")
                continue
            if not a.is_image:
                s.error("unsupported_attachment", fld,
                        f"OpenAI fine-tuning accepts images only, not {a.mime_type}; extract the text instead")
                continue
            images += 1
            if m.role == "assistant":
                s.error("image_in_assistant_message", fld,
                        "images are not allowed in assistant messages; move the image to a user message")
            elif m.role != "user":
                s.error("image_not_in_user_message", fld, "images are only allowed in user messages; move it")
            if a.mime_type not in OPENAI_IMAGE_TYPES:
                s.error("unsupported_image_type", fld,
                        f"{a.mime_type} is not accepted; convert the image to JPEG, PNG or WEBP")
            if a.data is not None and len(a.data) > OPENAI_MAX_IMAGE_BYTES:
                s.error("image_too_large", fld,
                        f"the image is {len(a.data) / 1048576:.1f} MB, over the 10 MB limit; downscale or compress it")
        if ex.kind == "preference" and m.tool_calls:
            s.error("preference_not_text_only", f"{path}.tool_calls",
                    "OpenAI DPO examples are text only; remove tool calls")
    if images > OPENAI_MAX_IMAGES:
        s.error("too_many_images", "messages",
                f"the example has {images} images, OpenAI allows at most {OPENAI_MAX_IMAGES}; split the example")
    if ex.kind == "sft" and any(m.role == "assistant" for m in ex.messages) and all(
            m.weight == 0 for m in ex.messages if m.role == "assistant"):
        s.warn("no_trained_assistant_message", "messages",
               "every assistant message has weight 0, so the example trains nothing; set weight 1 on one reply")
    _check_tools(ex, s, unanswered="warning")


_SFT_LINE_KEYS = frozenset({"messages", "tools", "parallel_tool_calls", "functions"})
_DPO_LINE_KEYS = frozenset({"input", "preferred_output", "non_preferred_output"})
_MESSAGE_KEYS = frozenset({"role", "content", "name", "function_call", "weight", "tool_calls", "tool_call_id",
                           "refusal"})
_LINE_ROLES = frozenset({"system", "user", "assistant", "tool", "function"})
_PART_TYPES = {"user": {"text", "image_url"}, "assistant": {"text", "refusal"}, "system": {"text"},
               "tool": {"text"}}


def _check_openai_messages(msgs: Any, base: str, s: _Sink, text_only: bool) -> None:
    """The cookbook's format checks on the raw line, plus order and content-part types the schema misses."""
    if not isinstance(msgs, list) or not msgs:
        s.error("missing_messages_list", base, f"the line needs a non-empty {base!r} list of messages; add it")
        return
    for i, m in enumerate(msgs):
        p = f"{base}[{i}]"
        if not isinstance(m, dict):
            s.error("data_type", p, "each message must be a JSON object with role and content; fix the message")
            continue
        for key in ("role", "content"):
            if key not in m and not (key == "content" and ("tool_calls" in m or "function_call" in m)):
                s.error("message_missing_key", f"{p}.{key}", f"the message has no {key!r} key; add it")
        for key in sorted(set(m) - _MESSAGE_KEYS):
            s.error("message_unrecognized_key", f"{p}.{key}",
                    f"{key!r} is not a recognised message key; remove it")
        role = m.get("role")
        if not isinstance(role, str):
            role = None
        if "role" in m and role not in _LINE_ROLES:
            s.error("unrecognized_role", f"{p}.role",
                    f"role {role!r} is not accepted; use system, user, assistant or tool")
        content = m.get("content")
        if "content" in m and not content and not m.get("tool_calls") and not m.get("function_call"):
            s.error("missing_content", f"{p}.content", "the message content is empty; write it or remove the message")
        if isinstance(content, list):
            allowed = {"text"} if text_only else _PART_TYPES.get(role, {"text"})
            for j, part in enumerate(content):
                kind = part.get("type") if isinstance(part, dict) else None
                kind = kind if isinstance(kind, str) else None
                if kind not in allowed:
                    what = {"input_audio": "audio", "file": "file"}.get(kind, repr(kind))
                    s.error("unsupported_content_part", f"{p}.content[{j}]",
                            f"{what} content parts are not accepted in {role} messages here; use "
                            f"{' or '.join(sorted(allowed))} parts")


def _check_openai_line(line: Any, kind: str, s: _Sink) -> None:
    if not isinstance(line, dict):
        s.error("data_type", None, "each line must be one JSON object; rewrite the line as {...}")
        return
    if not line:
        s.error("empty_line", None, "the line is an empty object {}; write the example or delete the line")
        return
    if kind == "sft":
        _check_openai_messages(line.get("messages"), "messages", s, text_only=False)
        msgs = line.get("messages") if isinstance(line.get("messages"), list) else []
        if msgs and not any(isinstance(m, dict) and m.get("role") == "assistant" for m in msgs):
            s.error("example_missing_assistant_message", "messages",
                    "the line has no assistant message to train on; add the reply")
        extra = set(line) - _SFT_LINE_KEYS
    else:
        inp = line.get("input")
        if not isinstance(inp, dict):
            s.error("missing_messages_list", "input", 'a DPO line needs "input": {"messages": [...]}; add it')
        else:
            _check_openai_messages(inp.get("messages"), "input.messages", s, text_only=True)
        for key in ("preferred_output", "non_preferred_output"):
            out = line.get(key)
            if not isinstance(out, list) or len(out) != 1:
                s.error("preference_output_count", key,
                        f"{key} must be a list with exactly one assistant message; fix the line")
            elif not isinstance(out[0], dict) or out[0].get("role") != "assistant":
                s.error("preference_output_not_assistant", f"{key}[0].role", f"{key}[0] must have role 'assistant'")
            else:
                _check_openai_messages(out, key, s, text_only=True)
        extra = set(line) - _DPO_LINE_KEYS
    for key in sorted(extra):
        s.warn("unrecognized_key", key, f"{key!r} is not part of an OpenAI {kind} line; remove it")
    for path, message in schema_errors(line, kind):
        s.error("schema_violation", path or None, message)


# -- Claude on Bedrock -------------------------------------------------------------------------------
def _check_anthropic(ex: Example, s: _Sink) -> None:
    if ex.kind == "preference":
        s.error("preference_not_supported", None,
                "Claude fine-tuning on Bedrock is supervised only; export preference data for OpenAI or Vertex")
    if ex.tools:
        s.error("tools_not_supported", "tools", "Bedrock Claude fine-tuning is text only; remove tool definitions")
    i = 0
    while i < len(ex.messages) and ex.messages[i].role == "system":
        i += 1
    if i > 1:
        s.warn("multiple_system_messages", "messages", "several leading system messages will be joined into one")
    convo = list(enumerate(ex.messages))[i:]
    if len(convo) < 2:
        s.error("too_few_messages", "messages",
                "Bedrock needs at least a user and an assistant message after the optional system; add them")
    if convo and convo[0][1].role != "user":
        s.error("first_message_not_user", f"messages[{convo[0][0]}].role",
                "the conversation must start with a user message after the optional system; reorder or add one")
    for (k, prev), (j, m) in pairwise(convo):
        if m.role == prev.role and m.role in ("user", "assistant"):
            s.error("roles_not_alternating", f"messages[{j}].role",
                    f"messages[{k}] and messages[{j}] are both {m.role}; merge them so user and assistant alternate")
    for path, m in _fields(ex):
        if m.role == "system" and path.startswith("messages[") and int(path[9:-1]) >= i:
            s.error("system_not_leading", f"{path}.role", "a system message is only allowed first; move or merge it")
        if m.role == "tool" or m.tool_calls:
            s.error("tools_not_supported", f"{path}", "Bedrock Claude fine-tuning is text only; remove tool use")
        if m.attachments:
            s.error("attachment_not_supported", f"{path}.attachments",
                    "Bedrock Claude fine-tuning is text only; remove images and documents")
        if m.weight == 0:
            s.warn("weight_ignored", f"{path}.weight", "Bedrock trains on every assistant message; weight 0 is lost")
        if any(k in m.content for k in BEDROCK_RESERVED):
            s.error("reserved_keyword", f"{path}.content",
                    'the text contains "\\nHuman:" or "\\nAssistant:", which Bedrock rejects; reword those lines')


# -- Gemini on Vertex --------------------------------------------------------------------------------
def _check_gemini(ex: Example, s: _Sink) -> None:
    convo = [(i, m) for i, m in enumerate(ex.messages) if m.role != "system"]
    for i, m in enumerate(ex.messages):
        if m.role == "system" and any(j < i for j, _ in convo):
            s.error("system_not_leading", f"messages[{i}].role",
                    "Vertex takes one systemInstruction before the conversation; move this system text first")
    if convo and convo[0][1].role != "user":
        s.error("first_message_not_user", f"messages[{convo[0][0]}].role",
                "Vertex conversations must start with a user turn; add or move the user message first")
    if ex.kind == "sft" and convo and convo[-1][1].role != "assistant":
        s.error("last_message_not_model", f"messages[{convo[-1][0]}].role",
                "Vertex conversations must end with a model (assistant) turn; add the reply")
    for path, m in _fields(ex):
        for j, a in enumerate(m.attachments):
            if a.data is not None or not (a.uri or "").startswith("gs://"):
                s.warn("attachment_not_in_gcs", f"{path}.attachments[{j}]",
                       "Vertex tuning reads files from Cloud Storage (fileData.fileUri gs://...); upload it first")
        if m.role == "tool" and not m.name and not m.tool_call_id:
            s.error("function_response_unnamed", f"{path}.name",
                    "a Vertex functionResponse needs the function name; set name or tool_call_id")
    _check_tools(ex, s, unanswered="error")


# -- entry points ------------------------------------------------------------------------------------
def _token_issue(ex: Example, n: int, spec: ModelSpec, s: _Sink) -> None:
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


def _check(ex: Example, provider: str, spec: ModelSpec | None, line: Any, with_line: bool) -> tuple[list[Issue], int]:
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; use one of {', '.join(PROVIDERS)}")
    s = _Sink(ex)
    _basic(ex, s)
    if provider == "openai":
        _check_openai(ex, s)
        if with_line:
            _check_openai_line(line, ex.kind, s)
    elif provider == "anthropic":
        _check_anthropic(ex, s)
    elif provider == "gemini":
        _check_gemini(ex, s)
    else:
        _check_tools(ex, s, unanswered="warning")
    count_spec = spec or tokens.spec_for(provider, None)
    n = tokens.count_with_spec(ex, count_spec)
    _token_issue(ex, n, count_spec, s)
    return _dedupe(s.issues), n


def check_example(
    ex: Example, provider: str, base_model: str | None = None, line: dict[str, Any] | None = None,
) -> list[Issue]:
    """All problems of one example for one provider (roles/order, empty content, images, tool links,
    token limit for base_model, likely secrets). `line` is the exported JSON line, checked against the
    official OpenAI line schema when provider == "openai"."""
    spec = tokens.spec_for(provider, base_model)
    return _check(ex, provider, spec, line, line is not None)[0]


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
        report = cls(provider, base_model or limits.DEFAULT_MODEL.get(provider), split)
        report.exact_tokens = tokens.spec_for(provider, base_model).exact
        return report

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


def validate_dataset(
    examples: Iterable[Example], provider: str, base_model: str | None = None, split: str = "train",
    lines: Iterable[dict[str, Any]] | None = None, dataset_rules: bool = True,
) -> ValidationReport:
    """Stream examples once (optionally zipped with their exported lines) into a ValidationReport.

    dataset_rules=False checks examples only: for one chunk of a file whose reports are merged afterwards
    (ValidationReport.merge), with finish_dataset() applied once to the total.
    """
    spec = limits.model_spec(provider, base_model)
    report = ValidationReport.empty(provider, base_model, split)
    line_iter = iter(lines) if lines is not None else None
    for ex in examples:
        line = next(line_iter, None) if line_iter is not None else None
        found, n = _check(ex, provider, spec or tokens.spec_for(provider, None), line, line_iter is not None)
        report.issues.extend(found)
        report.examples += 1
        report.kinds[ex.kind] += 1
        report.tokens.add(n)
    if dataset_rules:
        finish_dataset(report, base_model)
    return report


def finish_dataset(report: ValidationReport, base_model: str | None) -> None:
    """Add the dataset-level rules (example counts, one kind per file, base model status) to a full report."""
    spec = limits.model_spec(report.provider, base_model)
    report.issues.extend(_dataset_issues(report, report.provider, base_model, spec, report.split))


def check_dataset(
    examples: Iterable[Example], provider: str, base_model: str | None = None, split: str = "train",
) -> list[Issue]:
    """check_example for each example plus dataset-level rules (minimum example counts, ...)."""
    return validate_dataset(examples, provider, base_model, split).issues


def _dataset_issues(
    r: ValidationReport, provider: str, base_model: str | None, spec: ModelSpec | None, split: str,
) -> list[Issue]:
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
    lim = limits.DATASET_LIMITS[provider].get(split, limits.DATASET_LIMITS[provider]["train"])
    if n == 0:
        add("empty_dataset", "error", f"the {split} split has no examples; check the input files and filters")
    elif lim.min_error is not None and n < lim.min_error:
        add("too_few_examples", "error",
            f"the {split} split has {n} examples, {provider} needs at least {lim.min_error} ({lim.source}); add more")
    elif lim.min_recommended is not None and n < lim.min_recommended:
        rec = "50-100" if provider == "openai" else f"at least {lim.min_recommended}"
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
