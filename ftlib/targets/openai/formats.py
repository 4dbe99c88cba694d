"""OpenAI fine-tuning lines: chat SFT ("openai-chat") and DPO ("openai-dpo").

The canonical record was modelled on this format, so almost everything maps one to one. What it cannot hold:
reasoning text (`thinking`, reported by losses), non-image attachments and images outside user messages
(encode raises "unsupported": OpenAI accepts images in user messages only). Tool messages are written with the keys
OpenAI's tool message defines (role, content, tool_call_id): a result's function name is implied by its call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftlib.formats.common import (
    extensions,
    fail,
    need_dict,
    need_list,
    need_str,
    opt_str,
    require_kind,
    require_replies,
    tool_call_name_map,
    type_name,
    unsupported,
)
from ftlib.records import ROLES, Attachment, Example, Message, RecordError, ToolCall

_ROLE_FIX = "use one of system, user, assistant, tool"
_ROLE_HINTS = {
    "developer": "OpenAI fine-tuning has no 'developer' role; use 'system'",
    "function": "the legacy 'function' role is not supported; use 'tool' with a tool_call_id",
}


# -- decode --------------------------------------------------------------------------------------

def decode_parts(parts: list[Any], path: str) -> tuple[str, tuple[Attachment, ...]]:
    """Content parts -> (text, attachments). Text parts are concatenated as the model sees them."""
    texts: list[str] = []
    atts: list[Attachment] = []
    for j, part in enumerate(parts):
        ppath = f"{path}[{j}]"
        part = need_dict(part, ppath, "write each content part as an object with a 'type'")
        kind = part.get("type")
        if kind == "text":
            texts.append(need_str(part.get("text"), f"{ppath}.text", "give text parts a string 'text'"))
        elif kind == "image_url":
            img = need_dict(part.get("image_url"), f"{ppath}.image_url", 'write {"url": "https://..." or a data URL}')
            url = need_str(img.get("url"), f"{ppath}.image_url.url", "give the image an https or data: URL")
            try:
                atts.append(Attachment.from_uri(url, detail=opt_str(img, "detail", f"{ppath}.image_url.detail")))
            except RecordError as e:
                fail(f"{e}; fix or re-encode the image data URL", f"{ppath}.image_url.url")
        else:
            fail(f"unsupported content part type {kind!r}; OpenAI fine-tuning accepts 'text' and 'image_url' parts",
                 f"{ppath}.type")
    return "".join(texts), tuple(atts)


def decode_tool_calls(calls: Any, path: str) -> tuple[ToolCall, ...]:
    out = []
    for j, tc in enumerate(need_list(calls, path)):
        tpath = f"{path}[{j}]"
        tc = need_dict(tc, tpath, 'write {"id", "type": "function", "function": {"name", "arguments"}}')
        if tc.get("type", "function") != "function":
            fail(f"unsupported tool call type {tc.get('type')!r}; use 'function'", f"{tpath}.type")
        fn = need_dict(tc.get("function"), f"{tpath}.function", 'write {"name": ..., "arguments": "<JSON text>"}')
        args = fn.get("arguments", "{}")
        if not isinstance(args, str):
            fail(f"expected a string, got {type_name(args)}; OpenAI wants arguments as JSON text (json.dumps them)",
                 f"{tpath}.function.arguments")
        out.append(ToolCall(
            id=need_str(tc.get("id"), f"{tpath}.id", "give each call an id and reference it from the tool message"),
            name=need_str(fn.get("name"), f"{tpath}.function.name", "give the function a name"),
            arguments=args,
        ))
    return tuple(out)


def decode_message(m: Any, msgs_path: str, i: int) -> Message:
    """One message; field paths are only built on the error path (this runs once per message of 1M lines)."""
    if type(m) is not dict:
        need_dict(m, f"{msgs_path}[{i}]", 'write each message as {"role": ..., "content": ...}')
    get = m.get
    role = get("role")
    if role not in ROLES:
        hint = _ROLE_HINTS.get(role, _ROLE_FIX) if isinstance(role, str) else _ROLE_FIX
        fail(f"unknown role {role!r}; {hint}", f"{msgs_path}[{i}].role")
    content = get("content")
    atts: tuple[Attachment, ...] = ()
    if type(content) is not str:
        if content is None:
            content = ""
        elif isinstance(content, list):
            content, atts = decode_parts(content, f"{msgs_path}[{i}].content")
        else:
            fail(f"expected a string or a list of content parts, got {type_name(content)}; write the text as a "
                 "string", f"{msgs_path}[{i}].content")
    weight = get("weight")
    if weight is not None and (type(weight) is not int or weight not in (0, 1)):
        fail(f"weight must be 0 or 1, got {weight!r}; use 0 to skip training on this message, 1 to train on it",
             f"{msgs_path}[{i}].weight")
    calls = get("tool_calls")
    call_id = get("tool_call_id")
    name = get("name")
    if call_id is not None and type(call_id) is not str:
        opt_str(m, "tool_call_id", f"{msgs_path}[{i}].tool_call_id")
    if name is not None and type(name) is not str:
        opt_str(m, "name", f"{msgs_path}[{i}].name")
    return Message(
        role, content, atts,
        decode_tool_calls(calls, f"{msgs_path}[{i}].tool_calls") if calls else (),
        call_id, name, weight,
    )


def decode_messages(msgs: Any, path: str) -> tuple[Message, ...]:
    if type(msgs) is not list:
        need_list(msgs, path, 'write "messages" as a list of {"role", "content"} objects')
    return tuple([decode_message(m, path, i) for i, m in enumerate(msgs)])


def decode_tools(obj: Mapping[str, Any], path: str) -> tuple[tuple[dict[str, Any], ...], bool | None]:
    tools = obj.get("tools")
    if tools is None:
        tools = []
    for i, t in enumerate(need_list(tools, path + "tools", "write tools as a list of function definitions")):
        need_dict(t, f"{path}tools[{i}]", 'write {"type": "function", "function": {"name", "parameters"}}')
    ptc = obj.get("parallel_tool_calls")
    if ptc is not None and not isinstance(ptc, bool):
        fail(f"expected true or false, got {type_name(ptc)}; write a JSON boolean", path + "parallel_tool_calls")
    return tuple(tools), ptc


def _single_output(obj: Mapping[str, Any], key: str) -> Message:
    out = need_list(obj.get(key), key, f'write "{key}" as a list holding one assistant message')
    if len(out) != 1:
        fail(f"expected exactly one message, got {len(out)}; keep one assistant message in {key!r}", key)
    return decode_message(out[0], key, 0)


# -- encode --------------------------------------------------------------------------------------

def encode_message(m: Message, fmt: str, path: str) -> dict[str, Any]:
    d: dict[str, Any] = {"role": m.role}
    if m.attachments:
        if m.role != "user":
            unsupported(fmt, f"attachments in {m.role} messages", "OpenAI accepts images in user messages only",
                        f"{path}.content")
        parts: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
        for a in m.attachments:
            url = a.data_url()
            # A URL without a telling extension has an unknown type: let it through, the provider checks it.
            image = a.is_image or (a.data is None and a.mime_type == "application/octet-stream")
            if not image or not (a.data is not None or url.startswith("https://")):
                unsupported(fmt, f"attachment {a.mime_type} {url[:60]!r}",
                            "OpenAI accepts images as https or data URLs only", f"{path}.content")
            img: dict[str, Any] = {"url": url}
            if a.detail:
                img["detail"] = a.detail
            parts.append({"type": "image_url", "image_url": img})
        d["content"] = parts
    elif m.content or not m.tool_calls:
        d["content"] = m.content
    if m.name and m.role != "tool":  # OpenAI's tool message has role, content and tool_call_id only
        d["name"] = m.name
    if m.tool_calls:
        d["tool_calls"] = [
            {"id": tc.id, "type": "function", "function": {"name": tc.name, "arguments": tc.arguments}}
            for tc in m.tool_calls
        ]
    if m.tool_call_id:
        d["tool_call_id"] = m.tool_call_id
    if m.weight is not None:
        d["weight"] = m.weight
    return d


def _thinking_losses(ex: Example) -> list[str]:
    out = ["thinking"] if any(m.thinking for m in ex.all_messages()) else []
    called = tool_call_name_map(list(ex.all_messages()))
    if any(m.role == "tool" and m.name and m.name != called.get(m.tool_call_id or "") for m in ex.all_messages()):
        out.append("a tool result name that differs from the call it answers (the tool message has no name)")
    return out


def _tools_into(d: dict[str, Any], ex: Example) -> dict[str, Any]:
    if ex.tools:
        d["tools"] = list(ex.tools)
    if ex.parallel_tool_calls is not None:
        d["parallel_tool_calls"] = ex.parallel_tool_calls
    return d


# -- the formats ---------------------------------------------------------------------------------

class OpenAIChat:
    name = "openai-chat"
    kind = "sft"
    priority = 90

    def detect(self, obj: Mapping[str, Any]) -> bool:
        return isinstance(obj.get("messages"), list)

    def decode(self, obj: Mapping[str, Any], source: str | None = None) -> Example:
        obj = need_dict(obj, None, "write one JSON object per line")
        messages = decode_messages(obj.get("messages"), "messages")
        tools, ptc = decode_tools(obj, "")
        meta, group = extensions(obj)
        return Example(messages=messages, tools=tools, parallel_tool_calls=ptc, metadata=meta, group=group,
                       source=source)

    def encode(self, ex: Example) -> dict[str, Any]:
        require_kind(self.name, ex, "sft")
        return _tools_into({"messages": [encode_message(m, self.name, f"messages[{i}]")
                                         for i, m in enumerate(ex.messages)]}, ex)

    def losses(self, ex: Example) -> list[str]:
        return _thinking_losses(ex)


class OpenAIDPO:
    name = "openai-dpo"
    kind = "preference"
    priority = 10

    def detect(self, obj: Mapping[str, Any]) -> bool:
        return "preferred_output" in obj and isinstance(obj.get("input"), dict)

    def decode(self, obj: Mapping[str, Any], source: str | None = None) -> Example:
        obj = need_dict(obj, None, "write one JSON object per line")
        inp = need_dict(obj.get("input"), "input", 'write "input" as {"messages": [...]}')
        messages = decode_messages(inp.get("messages"), "input.messages")
        tools, ptc = decode_tools(inp, "input.")
        meta, group = extensions(obj)
        return Example(
            messages=messages, tools=tools, parallel_tool_calls=ptc,
            chosen=_single_output(obj, "preferred_output"), rejected=_single_output(obj, "non_preferred_output"),
            metadata=meta, group=group, source=source,
        )

    def encode(self, ex: Example) -> dict[str, Any]:
        require_replies(self.name, ex)
        inp = _tools_into({"messages": [encode_message(m, self.name, f"input.messages[{i}]")
                                        for i, m in enumerate(ex.messages)]}, ex)
        return {
            "input": inp,
            "preferred_output": [encode_message(ex.chosen, self.name, "preferred_output[0]")],
            "non_preferred_output": [encode_message(ex.rejected, self.name, "non_preferred_output[0]")],
        }

    def losses(self, ex: Example) -> list[str]:
        return _thinking_losses(ex)


OPENAI_CHAT = OpenAIChat()
OPENAI_DPO = OpenAIDPO()
