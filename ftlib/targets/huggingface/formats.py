"""Hugging Face conversational lines as TRL reads them: SFT ("hf-messages") and preference ("trl-preference").

Conventions (what transformers chat templates and TRL's trainers consume):
- Tool calls: `{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name", "arguments": {...}}}]}`
  with arguments as an object (templates render it with `tojson`); results `{"role": "tool", "name", "content"}`.
  ftlib also writes each call's `id` and the result's `tool_call_id` (templates that need them, e.g. Mistral's,
  read them; others ignore them), so no link is lost. Lines without ids get "call_<n>" ids on decode and each
  result is linked to the earliest unanswered call of the same name, exactly like Vertex, so one conversation
  has one id whichever of the two it was read from.
- Images: content parts `{"type": "image", "url": ...}` (inline bytes as a data URL), text parts
  `{"type": "text", "text": ...}`; content stays a plain string when a message has no image. Decode also accepts
  `"image"` and `"path"` instead of `"url"`.
- Reasoning: `reasoning_content`, the key the Qwen3, SmolLM3 and DeepSeek-R1 style chat templates read.
  Decode also accepts `thinking` (gpt-oss templates).
- Weights, image detail and parallel_tool_calls have no place here: losses() reports them.
- Loading these files with `datasets.load_dataset("json", ...)` needs datasets>=4.8 (the `train` extra asks for
  it): 3.6-4.6 refuse a file whose `content` is a string in some rows and a list of parts in others, and 4.7 fills
  tool-call argument keys a row lacks with nulls, so the arguments a model trains on change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftlib.formats.common import (
    CallLinker,
    args_object,
    args_text,
    extensions,
    fail,
    need_dict,
    need_list,
    need_str,
    opt_str,
    parse_object,
    require_kind,
    require_replies,
    type_name,
    unsupported,
)
from ftlib.records import ROLES, Attachment, Example, Message, RecordError, ToolCall

_IMAGE_KEYS = ("url", "image", "path")
_PLAIN_KEYS = frozenset(("role", "content", "name", "weight"))


# -- decode --------------------------------------------------------------------------------------

def _decode_parts(parts: list[Any], path: str) -> tuple[str, tuple[Attachment, ...]]:
    texts: list[str] = []
    atts: list[Attachment] = []
    for j, part in enumerate(parts):
        pp = f"{path}[{j}]"
        part = need_dict(part, pp, "write each content part as an object with a 'type'")
        kind = part.get("type")
        if kind == "text":
            texts.append(need_str(part.get("text"), f"{pp}.text", "give text parts a string 'text'"))
        elif kind == "image":
            key = next((k for k in _IMAGE_KEYS if isinstance(part.get(k), str)), None)
            if key is None:
                fail("image part without a URL; give it a string 'url' (https or data URL)", f"{pp}.url")
            try:
                atts.append(Attachment.from_uri(part[key]))
            except RecordError as e:
                fail(f"{e}; fix or re-encode the image data URL", f"{pp}.{key}")
        else:
            fail(f"unsupported content part type {kind!r}; use 'text' or 'image' parts", f"{pp}.type")
    return "".join(texts), tuple(atts)


def _decode_tool_calls(calls: Any, path: str, linker: CallLinker) -> tuple[ToolCall, ...]:
    out = []
    for j, tc in enumerate(need_list(calls, path)):
        tp = f"{path}[{j}]"
        tc = need_dict(tc, tp, 'write {"type": "function", "function": {"name", "arguments": {...}}}')
        if tc.get("type", "function") != "function":
            fail(f"unsupported tool call type {tc.get('type')!r}; use 'function'", f"{tp}.type")
        fn = need_dict(tc.get("function"), f"{tp}.function", 'write {"name": ..., "arguments": {...}}')
        name = need_str(fn.get("name"), f"{tp}.function.name", "give the function a name")
        args = fn.get("arguments", {})
        args = args if isinstance(args, str) else args_text(args, f"{tp}.function.arguments")
        out.append(ToolCall(linker.call(name, opt_str(tc, "id", f"{tp}.id")), name, args))
    return tuple(out)


def _decode_message(m: Any, path: str, linker: CallLinker) -> Message:
    m = need_dict(m, path, 'write each message as {"role": ..., "content": ...}')
    role = m.get("role")
    if role not in ROLES:
        fail(f"unknown role {role!r}; use one of system, user, assistant, tool", f"{path}.role")
    content = m.get("content")
    atts: tuple[Attachment, ...] = ()
    if content is None:
        content = ""
    elif isinstance(content, list):
        content, atts = _decode_parts(content, f"{path}.content")
    elif not isinstance(content, str):
        fail(f"expected a string or a list of content parts, got {type_name(content)}; write the text as a string",
             f"{path}.content")
    thinking = opt_str(m, "reasoning_content", f"{path}.reasoning_content") or opt_str(
        m, "thinking", f"{path}.thinking")
    calls = m.get("tool_calls")
    name = opt_str(m, "name", f"{path}.name")
    call_id = opt_str(m, "tool_call_id", f"{path}.tool_call_id")
    if role == "tool":
        call_id = linker.answer(name, call_id)
    return Message(
        role=role, content=content, attachments=atts,
        tool_calls=_decode_tool_calls(calls, f"{path}.tool_calls", linker) if calls else (),
        tool_call_id=call_id, name=name, thinking=thinking or None,
    )


def _decode_list(msgs: Any, path: str, linker: CallLinker) -> list[Message]:
    msgs = need_list(msgs, path, f'write "{path}" as a list of {{"role", "content"}} objects')
    return [_decode_message(m, f"{path}[{i}]", linker) for i, m in enumerate(msgs)]


def _decode_tools(obj: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    tools = obj.get("tools")
    if tools is None:
        return ()
    for i, t in enumerate(need_list(tools, "tools", "write tools as a list of function definitions")):
        need_dict(t, f"tools[{i}]", 'write {"type": "function", "function": {"name", "parameters"}}')
    return tuple(tools)


def _looks_hf(m: Any) -> bool:
    """Markers only the HF conversational shape has (OpenAI lines never carry them)."""
    if type(m) is not dict:
        return False
    if m.keys() <= _PLAIN_KEYS and m.get("role") != "tool" and type(m.get("content")) is not list:
        return False  # the common case, decided without looking further
    if "reasoning_content" in m or "thinking" in m:
        return True
    calls = m.get("tool_calls")
    if isinstance(calls, list):
        for tc in calls:
            fn = tc.get("function") if isinstance(tc, dict) else None
            if isinstance(fn, dict) and not isinstance(fn.get("arguments"), str):
                return True
            if isinstance(tc, dict) and "id" not in tc:
                return True
    if m.get("role") == "tool" and "tool_call_id" not in m:
        return True
    content = m.get("content")
    if isinstance(content, list):
        return any(isinstance(p, dict) and p.get("type") == "image" for p in content)
    return False


# -- encode --------------------------------------------------------------------------------------

def _encode_message(fmt: str, m: Message, path: str) -> dict[str, Any]:
    d: dict[str, Any] = {"role": m.role}
    if m.attachments:
        parts: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
        for a in m.attachments:
            if not a.is_image and not (a.data is None and a.mime_type == "application/octet-stream"):
                unsupported(fmt, f"a {a.mime_type} attachment", "keep images only", f"{path}.content")
            parts.append({"type": "image", "url": a.data_url()})
        d["content"] = parts
    else:
        d["content"] = m.content
    if m.thinking:
        d["reasoning_content"] = m.thinking
    if m.tool_calls:
        calls = []
        for tc in m.tool_calls:
            args = args_object(tc.arguments)
            if args is None:
                args = parse_object(tc.arguments)
            calls.append({"id": tc.id, "type": "function",
                          "function": {"name": tc.name, "arguments": tc.arguments if args is None else args}})
        d["tool_calls"] = calls
    if m.tool_call_id:
        d["tool_call_id"] = m.tool_call_id
    if m.name:
        d["name"] = m.name
    return d


def _losses(ex: Example) -> list[str]:
    out = []
    msgs = list(ex.all_messages())
    if any(m.weight == 0 for m in msgs):
        out.append("weight")
    if any(a.detail for m in msgs for a in m.attachments):
        out.append("image detail")
    if ex.parallel_tool_calls is not None:
        out.append("parallel_tool_calls")
    if any(args_object(tc.arguments) is None and parse_object(tc.arguments) is not None
           for m in msgs for tc in m.tool_calls):
        out.append("tool call argument formatting (re-serialized as a JSON object)")
    return out


# -- the formats ---------------------------------------------------------------------------------

class HFMessages:
    name = "hf-messages"
    kind = "sft"
    priority = 60

    def detect(self, obj: Mapping[str, Any]) -> bool:
        msgs = obj.get("messages")
        return isinstance(msgs, list) and any(_looks_hf(m) for m in msgs)

    def decode(self, obj: Mapping[str, Any], source: str | None = None) -> Example:
        obj = need_dict(obj, None, "write one JSON object per line")
        messages = _decode_list(obj.get("messages"), "messages", CallLinker())
        meta, group = extensions(obj)
        return Example(messages=tuple(messages), tools=_decode_tools(obj), metadata=meta, group=group, source=source)

    def encode(self, ex: Example) -> dict[str, Any]:
        require_kind(self.name, ex, "sft")
        out: dict[str, Any] = {"messages": [_encode_message(self.name, m, f"messages[{i}]")
                                            for i, m in enumerate(ex.messages)]}
        if ex.tools:
            out["tools"] = list(ex.tools)
        return out

    def losses(self, ex: Example) -> list[str]:
        return _losses(ex)


def _implicit_prompt(chosen: str, rejected: str) -> int:
    """Where the shared prompt ends in TRL's implicit-prompt string form (TRL's extract_prompt rule)."""
    n = min(len(chosen), len(rejected))
    for i in range(n):
        if chosen[i] != rejected[i]:
            return i - 1 if i > 0 and chosen[i - 1] == " " else i
    return n


class TRLPreference:
    name = "trl-preference"
    kind = "preference"
    priority = 40

    def detect(self, obj: Mapping[str, Any]) -> bool:
        return "chosen" in obj and "rejected" in obj

    def decode(self, obj: Mapping[str, Any], source: str | None = None) -> Example:
        obj = need_dict(obj, None, "write one JSON object per line")
        prompt, chosen, rejected = obj.get("prompt"), obj.get("chosen"), obj.get("rejected")
        meta, group = extensions(obj)
        if isinstance(chosen, str) and isinstance(rejected, str):
            if prompt is None:
                cut = _implicit_prompt(chosen, rejected)
                prompt, chosen, rejected = chosen[:cut], chosen[cut:], rejected[cut:]
            prompt = need_str(prompt, "prompt", "with string chosen/rejected the prompt must be a string too")
            return Example(messages=(Message("user", prompt),), chosen=Message("assistant", chosen),
                           rejected=Message("assistant", rejected), metadata=meta, group=group, source=source)
        if isinstance(chosen, str) or isinstance(rejected, str) or isinstance(prompt, str):
            fail("mixed forms: prompt, chosen and rejected must all be strings or all be lists of messages; "
                 "write them in one form", "chosen" if isinstance(chosen, str) else "rejected")
        chosen = need_list(chosen, "chosen", "write chosen as a list holding one assistant message (or a string)")
        rejected = need_list(rejected, "rejected", "write rejected like chosen: a list of messages (or a string)")
        if prompt is None:  # implicit prompt: both conversations share everything but their last message
            if not chosen or not rejected or chosen[:-1] != rejected[:-1]:
                fail("chosen and rejected must share every message but the last when there is no prompt; "
                     "add a 'prompt' list", "chosen")
            prompt, chosen, rejected = chosen[:-1], chosen[-1:], rejected[-1:]
        linker = CallLinker()
        messages = _decode_list(prompt, "prompt", linker)
        replies = []
        for key, value in (("chosen", chosen), ("rejected", rejected)):
            if len(value) != 1:
                fail(f"expected one message, got {len(value)}; keep a single assistant reply in {key!r}", key)
            replies.append(_decode_message(value[0], f"{key}[0]", linker))
        return Example(messages=tuple(messages), tools=_decode_tools(obj), chosen=replies[0], rejected=replies[1],
                       metadata=meta, group=group, source=source)

    def encode(self, ex: Example) -> dict[str, Any]:
        require_replies(self.name, ex)
        out: dict[str, Any] = {
            "prompt": [_encode_message(self.name, m, f"messages[{i}]") for i, m in enumerate(ex.messages)],
            "chosen": [_encode_message(self.name, ex.chosen, "chosen")],
            "rejected": [_encode_message(self.name, ex.rejected, "rejected")],
        }
        if ex.tools:
            out["tools"] = list(ex.tools)
        return out

    def losses(self, ex: Example) -> list[str]:
        return _losses(ex)


HF_MESSAGES = HFMessages()
TRL_PREFERENCE = TRLPreference()
