"""Input shapes no target writes: the line shapes most open fine-tuning data comes in.

- `sharegpt`: `{"conversations": [{"from": "human"|"gpt"|"system", "value"}], "system"?, "tools"?}`; LLaMA-Factory's
  tool turns (`function_call` holding `{"name", "arguments"}` JSON, `observation` holding the result) and per-turn
  `weight` (0/1, OpenHermes) are read too. `sharegpt-preference` adds `"chosen"`/`"rejected"` turns.
- `chat-conversations`: role/content messages under `conversations` (Kiln's Hugging Face chat-template export and
  many HF datasets), optionally with a top-level `system`.
- `alpaca`: `{"instruction", "input"?, "output", "system"?, "history"?: [[user, assistant], ...]}`; the prompt is
  instruction and input joined by a line break (LLaMA-Factory's rule). `alpaca-preference` has `chosen`/`rejected`.
- `prompt-completion`: `{"prompt", "completion"}` as strings (OpenAI legacy, Together, TRL) or as message lists
  (TRL conversational; `tools` allowed). Unpaired preference rows (`label`, KTO) are refused with the reason.
- `text-input-output`: the legacy Gemini tuning pair `{"text_input", "output"}` (also written by the seed library's
  Gemini export) and PaLM's `{"input_text", "output_text"}`.

Every shape decodes to the same canonical Example as the chat formats, so one conversation gets one content id
whichever shape it came in. Role/content message lists are decoded by whichever registered chat format reads
`{"messages": [...]}` (the same rules for tool-call ids, image parts and reasoning), with field paths renamed back
to this shape's keys. Encoders exist for round-trip tests and for exporting by format name; they refuse (code
"unsupported") what a shape cannot hold, and losses() names what they leave out. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from ftlib.formats.base import Format, FormatError
from ftlib.formats.common import (
    CallLinker,
    assigned_ids_differ,
    extensions,
    fail,
    need_dict,
    need_list,
    need_str,
    opt_str,
    require_kind,
    require_replies,
    type_name,
    unsupported,
)
from ftlib.records import Example, Message, ToolCall

_CALL, _RESULT = "function_call", "observation"
_SPEAKERS = {
    "human": "user", "user": "user",
    "gpt": "assistant", "assistant": "assistant", "model": "assistant",
    "system": "system",
    "function_call": _CALL,
    "observation": _RESULT, "tool": _RESULT,
}
_SPEAKER_FIX = "use human, gpt or system (function_call and observation for tool use)"
_MSG_FIELD = re.compile(r"messages\[(\d+)\](.*)", re.S)


# -- shared helpers -------------------------------------------------------------------------------

def _chat_format(line: Mapping[str, Any]) -> Format:
    """The registered chat format that reads this {"messages": [...]} line (never one of the shapes here)."""
    from ftlib import formats

    for fmt in formats.all_formats().values():
        if fmt.kind == "sft" and fmt.name not in NAMES and fmt.detect(line):
            return fmt
    fail('no installed format reads role/content message lists ({"messages": [...]}); reinstall ftlib', None)


def _renamer(parts: list[tuple[str, int]]) -> Callable[[str | None], str | None]:
    """Map "messages[i]..." field paths of a joined message list back to the input line's keys. `parts` holds
    (key, message count) per slice in join order; a key ending in "." (e.g. "system.") names a single value."""
    def rename(field: str | None) -> str | None:
        m = _MSG_FIELD.fullmatch(field or "")
        if m is None:
            return field
        i = int(m.group(1))
        for key, n in parts:
            if i < n:
                return key[:-1] if key.endswith(".") else f"{key}[{i}]{m.group(2)}"
            i -= n
        return field
    return rename


def _decode_chat(obj: Mapping[str, Any], parts: list[tuple[str, list[Any]]], source: str | None) -> Example:
    """Decode role/content message lists (from several keys, joined in order) with the registered chat rules."""
    messages: list[Any] = []
    for _, msgs in parts:
        messages.extend(msgs)
    line: dict[str, Any] = {"messages": messages}
    for key in ("tools", "parallel_tool_calls", "metadata", "group"):
        if obj.get(key) is not None:
            line[key] = obj[key]
    rename = _renamer([(key, len(msgs)) for key, msgs in parts])
    try:
        return _chat_format(line).decode(line, source)
    except FormatError as e:
        raise FormatError(str(e), rename(e.field), e.code) from None


def _system_part(obj: Mapping[str, Any]) -> list[tuple[str, list[Any]]]:
    system = opt_str(obj, "system", "system")
    return [("system.", [{"role": "system", "content": system}])] if system else []


def _args_text(value: Any, field: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    fail(f"expected an object or JSON text, got {type_name(value)}; give the arguments as a JSON object", field)


def _args_value(arguments: str) -> Any:
    """Arguments as an object when they are exactly its compact JSON, else the text as given."""
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    return value if isinstance(value, dict) and orjson.dumps(value).decode() == arguments else arguments


def _weight(turn: Mapping[str, Any], field: str) -> int | None:
    w = turn.get("weight")
    if w is None:
        return None
    if isinstance(w, bool) or w not in (0, 1):
        fail(f"weight must be 0 or 1, got {w!r}; use 0 to skip training on this reply, 1 to train on it", field)
    return int(w)


def _plain_message(m: Message, fmt: str, path: str) -> dict[str, Any]:
    """An OpenAI-style message dict (string arguments, ids), for the role/content shapes. Text only."""
    if m.attachments:
        unsupported(fmt, "images or documents", "export to a chat format with image support", f"{path}.content")
    d: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.name:
        d["name"] = m.name
    if m.tool_calls:
        d["tool_calls"] = [{"id": tc.id, "type": "function", "function": {"name": tc.name, "arguments": tc.arguments}}
                           for tc in m.tool_calls]
    if m.tool_call_id:
        d["tool_call_id"] = m.tool_call_id
    if m.weight is not None:
        d["weight"] = m.weight
    return d


def _text_only(fmt: str, ex: Example, what: str) -> None:
    if ex.tools:
        unsupported(fmt, "tool definitions", f"{what}; export to a chat format", "tools")
    for i, m in enumerate(ex.all_messages()):
        if m.attachments or m.tool_calls or m.role == "tool":
            unsupported(fmt, "images, tool calls or tool results", f"{what}; export to a chat format",
                        f"messages[{i}]")


def _common_losses(ex: Example, *, weight: bool, names: bool) -> list[str]:
    out = []
    msgs = list(ex.all_messages())
    if any(m.thinking for m in msgs):
        out.append("thinking")
    if not weight and any(m.weight == 0 for m in msgs):
        out.append("weight")
    if not names and any(m.name for m in msgs):
        out.append("message name")
    if ex.parallel_tool_calls is not None:
        out.append("parallel_tool_calls")
    return out


# -- ShareGPT (from/value) ------------------------------------------------------------------------

def _sharegpt_tools(value: Any) -> tuple[dict[str, Any], ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as e:
            fail(f"tools is not valid JSON ({e}); write the function definitions as a JSON list", "tools")
    out = []
    for i, t in enumerate(need_list(value, "tools", "write tools as a list of function definitions")):
        t = need_dict(t, f"tools[{i}]", 'write {"name", "description", "parameters"}')
        out.append(dict(t) if t.get("type") == "function" and isinstance(t.get("function"), dict)
                   else {"type": "function", "function": dict(t)})
    return tuple(out)


def _sharegpt_calls(value: str, path: str, linker: CallLinker) -> tuple[ToolCall, ...]:
    """A function_call turn: JSON {"name", "arguments"} (or a list of them for parallel calls)."""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as e:
        fail(f'a function_call turn holds JSON {{"name", "arguments"}}, got invalid JSON ({e}); fix the JSON', path)
    calls = []
    for c in obj if isinstance(obj, list) else [obj]:
        c = need_dict(c, path, 'write the call as {"name": ..., "arguments": {...}}')
        name = need_str(c.get("name"), path, "give the function call a name")
        calls.append(ToolCall(linker.call(name), name, _args_text(c.get("arguments", {}), path)))
    return tuple(calls)


def _sharegpt_turn(t: Any, path: str, linker: CallLinker) -> Message:
    t = need_dict(t, path, 'write each turn as {"from": "human"|"gpt"|"system", "value": "..."}')
    who = t.get("from")
    role = _SPEAKERS.get(who.lower()) if isinstance(who, str) else None
    if role is None:
        fail(f"unknown speaker {who!r}; {_SPEAKER_FIX}", f"{path}.from")
    value = t.get("value")
    value = "" if value is None else need_str(value, f"{path}.value", "write the turn's text as a string")
    if role == _CALL:
        return Message("assistant", "", tool_calls=_sharegpt_calls(value, f"{path}.value", linker),
                       weight=_weight(t, f"{path}.weight"))
    if role == _RESULT:
        if not linker.pending:
            fail("an observation turn with no function_call before it; put the function_call turn first",
                 f"{path}.from")
        call_id, name = linker.pending.pop(0)
        return Message("tool", value, tool_call_id=call_id, name=name)
    weight = _weight(t, f"{path}.weight") if role == "assistant" else None
    return Message(role, value, weight=weight)


def _sharegpt_prompt(obj: Mapping[str, Any], linker: CallLinker) -> list[Message]:
    turns = need_list(obj.get("conversations"), "conversations",
                      'write "conversations" as a list of {"from", "value"} turns')
    system = opt_str(obj, "system", "system")
    messages = [Message("system", system)] if system else []
    messages.extend(_sharegpt_turn(t, f"conversations[{i}]", linker) for i, t in enumerate(turns))
    return messages


def _speaker_key(obj: Mapping[str, Any]) -> str | None:
    """"from" or "role": which convention a `conversations` list uses (its first turn decides)."""
    turns = obj.get("conversations")
    if not isinstance(turns, list):
        return None
    first = next((t for t in turns if isinstance(t, dict)), None)
    if first is None:
        return "from"
    return "role" if "role" in first and "from" not in first else "from"


def _encode_turn(fmt: str, m: Message, path: str) -> dict[str, Any]:
    if m.attachments:
        unsupported(fmt, "images or documents", "export to a chat format with image support", f"{path}.content")
    if m.role == "assistant" and m.tool_calls:
        if m.content:
            unsupported(fmt, "assistant text and tool calls in one turn", "split them into two assistant messages",
                        path)
        calls = [{"name": tc.name, "arguments": _args_value(tc.arguments)} for tc in m.tool_calls]
        turn: dict[str, Any] = {"from": _CALL, "value": orjson.dumps(calls[0] if len(calls) == 1 else calls).decode()}
    else:
        who = {"system": "system", "user": "human", "assistant": "gpt", "tool": _RESULT}[m.role]
        turn = {"from": who, "value": m.content}
    if m.role == "assistant" and m.weight is not None:
        turn["weight"] = m.weight
    return turn


def _sharegpt_tools_out(ex: Example) -> str:
    fns = [t["function"] if set(t) == {"type", "function"} and t.get("type") == "function" else t for t in ex.tools]
    return orjson.dumps(fns).decode()


def _sharegpt_losses(ex: Example) -> list[str]:
    out = _common_losses(ex, weight=True, names=True)
    if any(m.name for m in ex.all_messages() if m.role != "tool"):
        out.append("message name")
    if any(t.get("type") != "function" or set(t) - {"type", "function"} for t in ex.tools):
        out.append("tool fields other than the function definition")
    if _links_change(ex):
        out.append("tool call ids and result names (ShareGPT has none: calls are numbered call_<n> and each result "
                   "answers the earliest open call)")
    return out


def _links_change(ex: Example) -> bool:
    msgs = list(ex.all_messages())
    if not any(m.tool_calls or m.role == "tool" for m in msgs):
        return False
    if assigned_ids_differ(ex):
        return True
    pending: list[tuple[str, str]] = []
    for m in msgs:
        pending.extend((tc.id, tc.name) for tc in m.tool_calls)
        if m.role == "tool" and (not pending or pending.pop(0) != (m.tool_call_id, m.name)):
            return True
    return False


class ShareGPT:
    name = "sharegpt"
    kind = "sft"
    priority = 65

    def detect(self, obj: Mapping[str, Any]) -> bool:
        return _speaker_key(obj) == "from" and "chosen" not in obj and "rejected" not in obj

    def decode(self, obj: Mapping[str, Any], source: str | None = None) -> Example:
        obj = need_dict(obj, None, "write one JSON object per line")
        messages = _sharegpt_prompt(obj, CallLinker())
        meta, group = extensions(obj)
        return Example(messages=tuple(messages), tools=_sharegpt_tools(obj.get("tools")), metadata=meta, group=group,
                       source=source)

    def encode(self, ex: Example) -> dict[str, Any]:
        require_kind(self.name, ex, "sft")
        out: dict[str, Any] = {"conversations": [_encode_turn(self.name, m, f"messages[{i}]")
                                                 for i, m in enumerate(ex.messages)]}
        if ex.tools:
            out["tools"] = _sharegpt_tools_out(ex)
        return out

    def losses(self, ex: Example) -> list[str]:
        return _sharegpt_losses(ex)


class ShareGPTPreference:
    """LLaMA-Factory's ShareGPT preference lines: the prompt turns plus one `chosen` and one `rejected` turn."""

    name = "sharegpt-preference"
    kind = "preference"
    priority = 6

    def detect(self, obj: Mapping[str, Any]) -> bool:
        return _speaker_key(obj) == "from" and ("chosen" in obj or "rejected" in obj)

    def decode(self, obj: Mapping[str, Any], source: str | None = None) -> Example:
        obj = need_dict(obj, None, "write one JSON object per line")
        linker = CallLinker()
        messages = _sharegpt_prompt(obj, linker)
        replies = []
        for key in ("chosen", "rejected"):
            reply = _sharegpt_turn(obj.get(key), key, linker)
            if reply.role != "assistant":
                fail(f"the {key} turn must come from gpt, got {obj[key].get('from')!r}; set \"from\": \"gpt\"",
                     f"{key}.from")
            replies.append(reply)
        meta, group = extensions(obj)
        return Example(messages=tuple(messages), tools=_sharegpt_tools(obj.get("tools")), chosen=replies[0],
                       rejected=replies[1], metadata=meta, group=group, source=source)

    def encode(self, ex: Example) -> dict[str, Any]:
        require_replies(self.name, ex)
        out: dict[str, Any] = {
            "conversations": [_encode_turn(self.name, m, f"messages[{i}]") for i, m in enumerate(ex.messages)],
            "chosen": _encode_turn(self.name, ex.chosen, "chosen"),
            "rejected": _encode_turn(self.name, ex.rejected, "rejected"),
        }
        if ex.tools:
            out["tools"] = _sharegpt_tools_out(ex)
        return out

    def losses(self, ex: Example) -> list[str]:
        return _sharegpt_losses(ex)


# -- role/content under "conversations" -----------------------------------------------------------

class ChatConversations:
    name = "chat-conversations"
    kind = "sft"
    priority = 66

    def detect(self, obj: Mapping[str, Any]) -> bool:
        return _speaker_key(obj) == "role"

    def decode(self, obj: Mapping[str, Any], source: str | None = None) -> Example:
        obj = need_dict(obj, None, "write one JSON object per line")
        turns = need_list(obj.get("conversations"), "conversations",
                          'write "conversations" as a list of {"role", "content"} messages')
        return _decode_chat(obj, [*_system_part(obj), ("conversations", turns)], source)

    def encode(self, ex: Example) -> dict[str, Any]:
        require_kind(self.name, ex, "sft")
        out: dict[str, Any] = {"conversations": [_plain_message(m, self.name, f"messages[{i}]")
                                                 for i, m in enumerate(ex.messages)]}
        if ex.tools:
            out["tools"] = list(ex.tools)
        if ex.parallel_tool_calls is not None:
            out["parallel_tool_calls"] = ex.parallel_tool_calls
        return out

    def losses(self, ex: Example) -> list[str]:
        return ["thinking"] if any(m.thinking for m in ex.all_messages()) else []


# -- Alpaca ---------------------------------------------------------------------------------------

def _alpaca_prompt(obj: Mapping[str, Any]) -> list[Message]:
    system = opt_str(obj, "system", "system")
    messages = [Message("system", system)] if system else []
    history = obj.get("history")
    for j, pair in enumerate(need_list(history, "history", "write history as [[user, assistant], ...]")
                             if history is not None else ()):
        path = f"history[{j}]"
        pair = need_list(pair, path, "write each history entry as [user text, assistant text]")
        if len(pair) != 2:
            fail(f"expected [user, assistant], got {len(pair)} item(s); give each earlier turn as a pair", path)
        messages.append(Message("user", need_str(pair[0], f"{path}[0]")))
        messages.append(Message("assistant", need_str(pair[1], f"{path}[1]")))
    instruction = opt_str(obj, "instruction", "instruction") or ""
    extra = opt_str(obj, "input", "input") or ""
    prompt = "\n".join(p for p in (instruction, extra) if p)
    if not prompt.strip():
        fail("instruction and input are both empty; write the prompt in 'instruction'", "instruction")
    messages.append(Message("user", prompt))
    return messages


def _alpaca_out(fmt: str, ex: Example) -> dict[str, Any]:
    _text_only(fmt, ex, "Alpaca lines hold text turns only")
    msgs = list(ex.messages)
    out: dict[str, Any] = {}
    if msgs and msgs[0].role == "system":
        out["system"] = msgs.pop(0).content
    if ex.kind == "sft":
        if not msgs or msgs[-1].role != "assistant":
            unsupported(fmt, "a conversation that does not end with the assistant reply", "end it with the reply",
                        "messages")
        reply = msgs.pop()
    turns = [m.role for m in msgs]
    if turns != ["user", "assistant"] * (len(msgs) // 2) + ["user"]:
        unsupported(fmt, "turns other than alternating user and assistant messages (one system prompt first)",
                    "export to a chat format", "messages")
    out["history"] = [[msgs[i].content, msgs[i + 1].content] for i in range(0, len(msgs) - 1, 2)]
    if not out["history"]:
        del out["history"]
    out["instruction"] = msgs[-1].content
    if ex.kind == "sft":
        out["output"] = reply.content
    return out


class Alpaca:
    name = "alpaca"
    kind = "sft"
    priority = 70

    def detect(self, obj: Mapping[str, Any]) -> bool:
        return "output" in obj and ("instruction" in obj or isinstance(obj.get("input"), str))

    def decode(self, obj: Mapping[str, Any], source: str | None = None) -> Example:
        obj = need_dict(obj, None, "write one JSON object per line")
        output = obj.get("output")
        if isinstance(output, list):
            fail("output is a list (a ranking line); write the preferred reply as 'chosen' and the other as "
                 "'rejected'", "output")
        output = need_str(output, "output", "write the reply as a string")
        messages = _alpaca_prompt(obj)
        meta, group = extensions(obj)
        return Example(messages=(*messages, Message("assistant", output)), metadata=meta, group=group, source=source)

    def encode(self, ex: Example) -> dict[str, Any]:
        require_kind(self.name, ex, "sft")
        return _alpaca_out(self.name, ex)

    def losses(self, ex: Example) -> list[str]:
        return _common_losses(ex, weight=False, names=False)


class AlpacaPreference:
    name = "alpaca-preference"
    kind = "preference"
    priority = 5

    def detect(self, obj: Mapping[str, Any]) -> bool:
        return "instruction" in obj and ("chosen" in obj or "rejected" in obj)

    def decode(self, obj: Mapping[str, Any], source: str | None = None) -> Example:
        obj = need_dict(obj, None, "write one JSON object per line")
        messages = _alpaca_prompt(obj)
        replies = [Message("assistant", need_str(obj.get(k), k, "write the reply as a string"))
                   for k in ("chosen", "rejected")]
        meta, group = extensions(obj)
        return Example(messages=tuple(messages), chosen=replies[0], rejected=replies[1], metadata=meta, group=group,
                       source=source)

    def encode(self, ex: Example) -> dict[str, Any]:
        require_replies(self.name, ex)
        out = _alpaca_out(self.name, ex)
        out["chosen"], out["rejected"] = ex.chosen.content, ex.rejected.content
        return out

    def losses(self, ex: Example) -> list[str]:
        return _common_losses(ex, weight=False, names=False)


# -- prompt/completion ----------------------------------------------------------------------------

class PromptCompletion:
    name = "prompt-completion"
    kind = "sft"
    priority = 45

    def detect(self, obj: Mapping[str, Any]) -> bool:
        return "prompt" in obj and "completion" in obj

    def decode(self, obj: Mapping[str, Any], source: str | None = None) -> Example:
        obj = need_dict(obj, None, "write one JSON object per line")
        if "label" in obj:
            fail("a prompt/completion line with a label is unpaired preference (KTO) data, not a supervised example; "
                 "drop 'label' from the rows to train on (label true) and remove the others, or pair replies as "
                 "prompt/chosen/rejected", "label")
        prompt, completion = obj.get("prompt"), obj.get("completion")
        if isinstance(prompt, str) and isinstance(completion, str):
            meta, group = extensions(obj)
            return Example(messages=(Message("user", prompt), Message("assistant", completion)), metadata=meta,
                           group=group, source=source)
        if isinstance(prompt, str) or isinstance(completion, str):
            fail("mixed forms: prompt and completion must both be strings or both be lists of messages; write them "
                 "in one form", "completion" if isinstance(prompt, str) else "prompt")
        prompt = need_list(prompt, "prompt", "write the prompt as a string or a list of messages")
        completion = need_list(completion, "completion", "write the completion as a string or a list of messages")
        if not completion:
            fail("the completion is empty; give the assistant reply", "completion")
        return _decode_chat(obj, [("prompt", prompt), ("completion", completion)], source)

    def encode(self, ex: Example) -> dict[str, Any]:
        require_kind(self.name, ex, "sft")
        msgs = ex.messages
        if not msgs or msgs[-1].role != "assistant":
            unsupported(self.name, "a conversation that does not end with the assistant reply", "end it with the reply",
                        "messages")
        plain = (len(msgs) == 2 and msgs[0].role == "user" and not ex.tools and ex.parallel_tool_calls is None
                 and not any(m.attachments or m.tool_calls or m.tool_call_id or m.name or m.weight is not None
                             for m in msgs))
        if plain:
            return {"prompt": msgs[0].content, "completion": msgs[1].content}
        out: dict[str, Any] = {
            "prompt": [_plain_message(m, self.name, f"messages[{i}]") for i, m in enumerate(msgs[:-1])],
            "completion": [_plain_message(msgs[-1], self.name, f"messages[{len(msgs) - 1}]")],
        }
        if ex.tools:
            out["tools"] = list(ex.tools)
        if ex.parallel_tool_calls is not None:
            out["parallel_tool_calls"] = ex.parallel_tool_calls
        return out

    def losses(self, ex: Example) -> list[str]:
        return ["thinking"] if any(m.thinking for m in ex.all_messages()) else []


# -- the legacy Gemini text pair ------------------------------------------------------------------

_TEXT_KEYS = (("text_input", "output"), ("input_text", "output_text"))


class TextInputOutput:
    name = "text-input-output"
    kind = "sft"
    priority = 35

    def detect(self, obj: Mapping[str, Any]) -> bool:
        return any(a in obj and b in obj for a, b in _TEXT_KEYS)

    def decode(self, obj: Mapping[str, Any], source: str | None = None) -> Example:
        obj = need_dict(obj, None, "write one JSON object per line")
        a, b = next(keys for keys in _TEXT_KEYS if keys[0] in obj)
        user = need_str(obj.get(a), a, "write the prompt as a string")
        reply = need_str(obj.get(b), b, "write the reply as a string")
        meta, group = extensions(obj)
        return Example(messages=(Message("user", user), Message("assistant", reply)), metadata=meta, group=group,
                       source=source)

    def encode(self, ex: Example) -> dict[str, Any]:
        require_kind(self.name, ex, "sft")
        _text_only(self.name, ex, "the text pair holds one prompt and one reply")
        roles = [m.role for m in ex.messages]
        if roles != ["user", "assistant"]:
            unsupported(self.name, "a system prompt or more than one turn",
                        "the text pair holds one user prompt and one reply; export to a chat format", "messages")
        return {"text_input": ex.messages[0].content, "output": ex.messages[1].content}

    def losses(self, ex: Example) -> list[str]:
        return _common_losses(ex, weight=False, names=False)


SHAREGPT = ShareGPT()
SHAREGPT_PREFERENCE = ShareGPTPreference()
CHAT_CONVERSATIONS = ChatConversations()
ALPACA = Alpaca()
ALPACA_PREFERENCE = AlpacaPreference()
PROMPT_COMPLETION = PromptCompletion()
TEXT_INPUT_OUTPUT = TextInputOutput()

FORMATS: tuple[Format, ...] = (SHAREGPT, SHAREGPT_PREFERENCE, CHAT_CONVERSATIONS, ALPACA, ALPACA_PREFERENCE,
                               PROMPT_COMPLETION, TEXT_INPUT_OUTPUT)
NAMES = frozenset(f.name for f in FORMATS)

__all__ = ["FORMATS", "NAMES", "FormatError"]
