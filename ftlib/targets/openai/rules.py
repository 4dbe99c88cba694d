"""OpenAI's rules for training data: the cookbook's format checks, images, weights, and the exported line itself."""

from __future__ import annotations

from typing import Any

from ftlib.checks import Sink, check_image_limits, check_tools, fields
from ftlib.records import Example
from ftlib.targets.openai.models import IMAGE_LIMITS
from ftlib.targets.openai.schema import schema_errors

OPENAI_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
OPENAI_MAX_IMAGES = 10


def check_example(ex: Example, s: Sink) -> None:
    images = 0
    for path, m in fields(ex):
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
    if ex.kind == "sft":
        check_image_limits(ex, s, IMAGE_LIMITS, "OpenAI")
    check_tools(ex, s, unanswered="warning")


_SFT_LINE_KEYS = frozenset({"messages", "tools", "parallel_tool_calls", "functions"})
_DPO_LINE_KEYS = frozenset({"input", "preferred_output", "non_preferred_output"})
_MESSAGE_KEYS = frozenset({"role", "content", "name", "function_call", "weight", "tool_calls", "tool_call_id",
                           "refusal"})
_LINE_ROLES = frozenset({"system", "user", "assistant", "tool", "function"})
_PART_TYPES = {"user": {"text", "image_url"}, "assistant": {"text", "refusal"}, "system": {"text"},
               "tool": {"text"}}


def _check_openai_messages(msgs: Any, base: str, s: Sink, text_only: bool) -> None:
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


def check_line(line: Any, kind: str, s: Sink) -> None:
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

