"""Claude fine-tuning lines for Amazon Bedrock ("bedrock-claude"): `{"system"?, "messages": [...]}`, text only.

Bedrock's Claude customization takes plain text turns and nothing else, so encode refuses (code "unsupported")
images, tools and preference examples instead of silently flattening them; weights, reasoning and participant
names are dropped and reported by losses(). The top-level `system` string is the canonical leading system message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftlib.formats.common import extensions, fail, need_dict, need_list, require_kind, type_name, unsupported
from ftlib.records import Example, Message

NAME = "bedrock-claude"
_LINE_KEYS = frozenset(("system", "messages", "metadata", "group"))
_TEXT_FIX = "Bedrock Claude fine-tuning takes plain text content; write the content as a string"


def _decode_message(m: Any, path: str) -> Message:
    m = need_dict(m, path, 'write each message as {"role": "user"|"assistant", "content": "..."}')
    role = m.get("role")
    if role not in ("user", "assistant"):
        hint = "put the system prompt in the top-level 'system' field" if role == "system" else "use user or assistant"
        fail(f"unknown role {role!r}; {hint}", f"{path}.role")
    if len(m) > 2:
        extra = sorted(set(m) - {"role", "content"})
        if extra:
            fail(f"unexpected key(s) {', '.join(extra)}; Bedrock Claude messages hold only role and content "
                 "(use the OpenAI format for weights, names or tools)", f"{path}.{extra[0]}")
    content = m.get("content")
    if not isinstance(content, str):
        fail(f"expected a string, got {type_name(content)}; {_TEXT_FIX}", f"{path}.content")
    return Message(role=role, content=content)


class BedrockClaude:
    name = NAME
    kind = "sft"
    priority = 50

    def detect(self, obj: Mapping[str, Any]) -> bool:
        return isinstance(obj.get("system"), str) and isinstance(obj.get("messages"), list)

    def decode(self, obj: Mapping[str, Any], source: str | None = None) -> Example:
        obj = need_dict(obj, None, "write one JSON object per line")
        msgs = need_list(obj.get("messages"), "messages", 'write "messages" as a list of {"role", "content"} objects')
        messages = [_decode_message(m, f"messages[{i}]") for i, m in enumerate(msgs)]
        extra = sorted(set(obj) - _LINE_KEYS)
        if extra:
            fail(f"unexpected key(s) {', '.join(extra)}; a Bedrock Claude line holds only system and messages "
                 "(use the OpenAI format for tools)", extra[0])
        system = obj.get("system")
        if system is not None:
            if not isinstance(system, str):
                fail(f"expected a string, got {type_name(system)}; write the system prompt as a string", "system")
            messages.insert(0, Message(role="system", content=system))
        meta, group = extensions(obj)
        return Example(messages=tuple(messages), metadata=meta, group=group, source=source)

    def encode(self, ex: Example) -> dict[str, Any]:
        require_kind(NAME, ex, "sft")
        if ex.tools:
            unsupported(NAME, "tool definitions", "remove tools or export to a format that supports them", "tools")
        out: dict[str, Any] = {}
        msgs: list[dict[str, str]] = []
        for i, m in enumerate(ex.messages):
            path = f"messages[{i}]"
            if m.role == "system":
                if i != 0:
                    unsupported(NAME, "a system message after the first turn", "keep one system message, first", path)
                out["system"] = m.content
                continue
            if m.role == "tool" or m.tool_calls:
                unsupported(NAME, "tool calls or tool results", "export to a format with tool support", path)
            if m.attachments:
                unsupported(NAME, "images or documents", "remove the attachments (Bedrock Claude tuning is text only)",
                            f"{path}.content")
            msgs.append({"role": m.role, "content": m.content})
        out["messages"] = msgs
        return out

    def losses(self, ex: Example) -> list[str]:
        out = []
        msgs = ex.messages
        if any(m.weight == 0 for m in msgs):
            out.append("weight")
        if any(m.thinking for m in msgs):
            out.append("thinking")
        if any(m.name for m in msgs):
            out.append("message name")
        if ex.parallel_tool_calls is not None:
            out.append("parallel_tool_calls")
        return out


BEDROCK_CLAUDE = BedrockClaude()
