"""Claude on Bedrock: text only, supervised only, strict user/assistant alternation (AWS's data validator)."""

from __future__ import annotations

from itertools import pairwise

from ftlib.checks import Sink, fields
from ftlib.records import Example

BEDROCK_RESERVED = ("\nHuman:", "\nAssistant:")  # Claude's legacy prompt markers; Bedrock rejects them in records


def check_example(ex: Example, s: Sink) -> None:
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
    for path, m in fields(ex):
        if m.role == "system" and path.startswith("messages[") and int(path[9:-1]) >= i:
            s.error("system_not_leading", f"{path}.role", "a system message is only allowed first; move or merge it")
        if m.role == "tool" or m.tool_calls:
            s.error("tools_not_supported", f"{path}", "Bedrock Claude fine-tuning is text only; remove tool use")
        if m.attachments:
            s.error("attachment_not_supported", f"{path}.attachments",
                    "Bedrock Claude fine-tuning is text only; remove images and documents")
        if m.weight == 0:
            s.warn("weight_ignored", f"{path}.weight", "Bedrock trains on every assistant message; weight 0 is lost")
        if "\n" in m.content and any(k in m.content for k in BEDROCK_RESERVED):  # both start with a newline
            s.error("reserved_keyword", f"{path}.content",
                    'the text contains "\\nHuman:" or "\\nAssistant:", which Bedrock rejects; reword those lines')
