"""Gemini tuning lines for Vertex AI: SFT ("vertex-sft") and preference tuning ("vertex-preference").

Mapping choices, all made so decode(encode(x)) is x:
- `systemInstruction` is the canonical leading system message (only one, only first: otherwise "unsupported").
- Assistant turns are role "model"; reasoning is a text part with `"thought": true` (Message.thinking).
- Vertex tool calls have no ids: decode numbers them "call_<n>" in example order and links each
  `functionResponse` (sent in a "user" turn; "function" is accepted too) to the earliest unanswered call of the
  same name. Consecutive tool results are encoded as one user turn.
- A tool result's text becomes `response` when it is exactly the compact JSON of an object, else
  `{"output": text}` (the SDK's documented key for function output); decode reverses both.
- Tool definitions: canonical tools are OpenAI-style; Vertex holds them as one `functionDeclarations` list.
- Preference lines are text only, as Google documents them: encode refuses tools, tool calls and results, images
  and files in a preference example (one Issue per example at export); rules.py flags them in `validate`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import orjson

from ftlib.formats.common import (
    CallLinker,
    args_object,
    args_text,
    assigned_ids_differ,
    extensions,
    fail,
    need_dict,
    need_list,
    need_str,
    opt_str,
    parse_object,
    require_kind,
    tool_call_name_map,
    type_name,
    unsupported,
)
from ftlib.records import Attachment, Example, Message, RecordError, ToolCall

_DECL_KEYS = frozenset(("name", "description", "parameters", "parametersJsonSchema", "response",
                        "responseJsonSchema", "behavior"))
_PART_KEYS = "text, inlineData, fileData, functionCall or functionResponse"


# -- decode --------------------------------------------------------------------------------------

def _response_text(resp: Mapping[str, Any]) -> str:
    if len(resp) == 1 and isinstance(resp.get("output"), str):
        return resp["output"]
    return orjson.dumps(resp).decode()


def _response_object(content: str) -> dict[str, Any]:
    obj = args_object(content)
    if obj is not None and not (len(obj) == 1 and isinstance(obj.get("output"), str)):
        return obj
    return {"output": content}


def _decode_turn(c: Any, path: str, linker: CallLinker) -> list[Message]:
    c = need_dict(c, path, 'write each turn as {"role": "user"|"model", "parts": [...]}')
    role = c.get("role")
    if role not in ("user", "model", "function"):
        fail(f"unknown role {role!r}; use 'user' or 'model' (system text goes in systemInstruction)", f"{path}.role")
    texts: list[str] = []
    thoughts: list[str] = []
    atts: list[Attachment] = []
    calls: list[ToolCall] = []
    results: list[Message] = []
    for j, p in enumerate(need_list(c.get("parts"), f"{path}.parts", "write parts as a list of objects")):
        pp = f"{path}.parts[{j}]"
        p = need_dict(p, pp, f"write each part as an object with one of {_PART_KEYS}")
        if "text" in p:
            text = need_str(p["text"], f"{pp}.text")
            (thoughts if p.get("thought") is True else texts).append(text)
        elif "inlineData" in p:
            d = need_dict(p["inlineData"], f"{pp}.inlineData", 'write {"mimeType": ..., "data": "<base64>"}')
            mime = need_str(d.get("mimeType"), f"{pp}.inlineData.mimeType", "give the MIME type, e.g. image/png")
            try:
                raw = base64.b64decode(need_str(d.get("data"), f"{pp}.inlineData.data"), validate=True)
            except (binascii.Error, ValueError) as e:
                fail(f"data is not valid base64 ({e}); re-encode the file with standard base64",
                     f"{pp}.inlineData.data")
            try:
                atts.append(Attachment.from_bytes(raw, mime))
            except RecordError as e:
                fail(f"{e}; set inlineData.mimeType (e.g. image/png)", f"{pp}.inlineData.mimeType")
        elif "fileData" in p:
            d = need_dict(p["fileData"], f"{pp}.fileData", 'write {"mimeType": ..., "fileUri": "gs://..."}')
            uri = need_str(d.get("fileUri"), f"{pp}.fileData.fileUri", "give the file's gs:// or https URI")
            try:
                atts.append(Attachment.from_uri(uri, opt_str(d, "mimeType", f"{pp}.fileData.mimeType")))
            except RecordError as e:
                fail(f"{e}; fix the file URI", f"{pp}.fileData.fileUri")
        elif "functionCall" in p:
            if role != "model":
                fail("functionCall parts belong in model turns; move the call to the model's turn", pp)
            fc = need_dict(p["functionCall"], f"{pp}.functionCall", 'write {"name": ..., "args": {...}}')
            name = need_str(fc.get("name"), f"{pp}.functionCall.name", "give the function a name")
            args = args_text(fc.get("args", {}), f"{pp}.functionCall.args")
            calls.append(ToolCall(linker.call(name), name, args))
        elif "functionResponse" in p:
            if role == "model":
                fail("functionResponse parts belong in user turns; move the result to a user turn", pp)
            fr = need_dict(p["functionResponse"], f"{pp}.functionResponse", 'write {"name": ..., "response": {...}}')
            name = need_str(fr.get("name"), f"{pp}.functionResponse.name", "name the function that answered")
            resp = need_dict(fr.get("response"), f"{pp}.functionResponse.response", "give the result as an object")
            results.append(Message("tool", _response_text(resp), tool_call_id=linker.answer(name), name=name))
        else:
            fail(f"unknown part with keys {sorted(p)}; use one of {_PART_KEYS}", pp)
    if role == "model":
        return [Message("assistant", "".join(texts), tuple(atts), tuple(calls), thinking="".join(thoughts) or None)]
    if thoughts:
        fail("thought parts belong in model turns; remove 'thought' from user text", f"{path}.parts")
    if texts or atts or not results:
        results.append(Message("user", "".join(texts), tuple(atts)))
    return results


def _decode_system(obj: Mapping[str, Any]) -> list[Message]:
    si = obj.get("systemInstruction")
    if si is None:
        return []
    si = need_dict(si, "systemInstruction", 'write {"role": "system", "parts": [{"text": ...}]}')
    texts = []
    for j, p in enumerate(need_list(si.get("parts"), "systemInstruction.parts")):
        p = need_dict(p, f"systemInstruction.parts[{j}]", 'write {"text": ...}')
        texts.append(need_str(p.get("text"), f"systemInstruction.parts[{j}].text", "system parts hold text only"))
    return [Message("system", "".join(texts))]


def _decode_tools(obj: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    tools = obj.get("tools")
    if tools is None:
        return ()
    out = []
    for i, t in enumerate(need_list(tools, "tools", 'write [{"functionDeclarations": [...]}]')):
        t = need_dict(t, f"tools[{i}]", 'write {"functionDeclarations": [...]}')
        if "functionDeclarations" not in t:
            fail(f"only functionDeclarations tools can be read, got keys {sorted(t)}; remove this tool", f"tools[{i}]")
        for j, decl in enumerate(need_list(t["functionDeclarations"], f"tools[{i}].functionDeclarations")):
            decl = need_dict(decl, f"tools[{i}].functionDeclarations[{j}]", 'write {"name", "parameters"}')
            out.append({"type": "function", "function": dict(decl)})
    return tuple(out)


def _decode_prompt(obj: Mapping[str, Any], linker: CallLinker) -> list[Message]:
    messages = _decode_system(obj)
    turns = need_list(obj.get("contents"), "contents", 'write "contents" as a list of {"role", "parts"} turns')
    for i, c in enumerate(turns):
        messages.extend(_decode_turn(c, f"contents[{i}]", linker))
    return messages


# -- encode --------------------------------------------------------------------------------------

def _encode_turn(fmt: str, m: Message, path: str) -> dict[str, Any]:
    model = m.role == "assistant"
    parts: list[dict[str, Any]] = []
    if m.thinking and model:
        parts.append({"text": m.thinking, "thought": True})
    if m.content or not (parts or m.attachments or m.tool_calls):
        parts.append({"text": m.content})
    for a in m.attachments:
        if a.data is not None:
            parts.append({"inlineData": {"mimeType": a.mime_type, "data": base64.b64encode(a.data).decode()}})
        else:
            parts.append({"fileData": {"mimeType": a.mime_type, "fileUri": a.uri}})
    for j, tc in enumerate(m.tool_calls):
        args = parse_object(tc.arguments)  # any formatting; losses() reports when it is not compact JSON
        if args is None:
            unsupported(fmt, "tool call arguments that are not a JSON object", "fix the arguments JSON",
                        f"{path}.tool_calls[{j}].arguments")
        parts.append({"functionCall": {"name": tc.name, "args": args}})
    return {"role": "model" if model else "user", "parts": parts}


def _encode_prompt(fmt: str, ex: Example) -> dict[str, Any]:
    out: dict[str, Any] = {}
    msgs = ex.messages
    start = 0
    if msgs and msgs[0].role == "system":
        if msgs[0].attachments:
            unsupported(fmt, "attachments in the system instruction", "move them to a user turn", "messages[0]")
        out["systemInstruction"] = {"role": "system", "parts": [{"text": msgs[0].content}]}
        start = 1
    names = tool_call_name_map(list(ex.all_messages()))
    contents: list[dict[str, Any]] = []
    tool_turn: dict[str, Any] | None = None
    for i in range(start, len(msgs)):
        m = msgs[i]
        path = f"messages[{i}]"
        if m.role == "system":
            unsupported(fmt, "a system message after the first turn", "keep one system message, first", path)
        if m.role != "tool":
            tool_turn = None
            contents.append(_encode_turn(fmt, m, path))
            continue
        if m.attachments:
            unsupported(fmt, "attachments in tool results", "put the result text in the content", path)
        name = m.name or names.get(m.tool_call_id or "")
        if not name:
            unsupported(fmt, "a tool result without a function name", "set name or a tool_call_id that matches a call",
                        path)
        part = {"functionResponse": {"name": name, "response": _response_object(m.content)}}
        if tool_turn is None:
            tool_turn = {"role": "user", "parts": []}
            contents.append(tool_turn)
        tool_turn["parts"].append(part)
    out["contents"] = contents
    if ex.tools:
        decls = []
        for i, t in enumerate(ex.tools):
            fn = t.get("function") if t.get("type") == "function" else None
            if not isinstance(fn, dict):
                unsupported(fmt, "tools that are not functions", "define tools as function declarations", f"tools[{i}]")
            decls.append({k: v for k, v in fn.items() if k in _DECL_KEYS})
        out["tools"] = [{"functionDeclarations": decls}]
    return out


def _losses(ex: Example) -> list[str]:
    out = []
    msgs = list(ex.all_messages())
    if any(m.weight == 0 for m in msgs):
        out.append("weight")
    if any(m.thinking and m.role != "assistant" for m in msgs):
        out.append("thinking outside assistant messages")
    if any(m.name for m in msgs if m.role != "tool"):
        out.append("message name")
    if any(a.detail for m in msgs for a in m.attachments):
        out.append("image detail")
    if ex.parallel_tool_calls is not None:
        out.append("parallel_tool_calls")
    if any(set(t) - {"type", "function"} or set(t.get("function") or ()) - _DECL_KEYS for t in ex.tools):
        out.append("tool fields Vertex does not define (e.g. strict)")
    if any(tc.arguments and args_object(tc.arguments) is None for m in msgs for tc in m.tool_calls):
        out.append("tool call argument formatting (re-serialized as compact JSON)")
    if _ids_change(ex, msgs):
        out.append("tool call ids (Vertex has none: renumbered call_<n>, results linked by function name)")
    return out


def _ids_change(ex: Example, msgs: list[Message]) -> bool:
    if not any(m.tool_calls or m.role == "tool" for m in msgs):
        return False
    if assigned_ids_differ(ex):
        return True
    linker = CallLinker()
    for m in msgs:
        for tc in m.tool_calls:
            linker.call(tc.name, tc.id)
        if m.role == "tool" and (not m.name or linker.answer(m.name) != m.tool_call_id):
            return True
    return False


def preference_not_text(ex: Example) -> tuple[str, str] | None:
    """(field, what) of the first thing Vertex preference tuning cannot take (it documents text-only data:
    no tools, tool calls or results, no images or files), or None."""
    if ex.tools:
        return "tools", "tool definitions"
    for i, m in enumerate(ex.messages):
        if m.tool_calls or m.role == "tool":
            return f"messages[{i}]", "tool calls or tool results"
        if m.attachments:
            return f"messages[{i}].content", "images or files"
    for key, m in (("chosen", ex.chosen), ("rejected", ex.rejected)):
        if m is not None and (m.tool_calls or m.attachments):
            return key, "tool calls" if m.tool_calls else "images or files"
    return None


def text_only(fmt: str, ex: Example) -> None:
    found = preference_not_text(ex)
    if found:
        unsupported(fmt, f"{found[1]} in a preference example", "Vertex preference tuning takes text only: drop this "
                    "example from the preference data, or train on it with supervised tuning", found[0])


# -- the formats ---------------------------------------------------------------------------------

class VertexSFT:
    name = "vertex-sft"
    kind = "sft"
    priority = 30

    def detect(self, obj: Mapping[str, Any]) -> bool:
        return isinstance(obj.get("contents"), list)

    def decode(self, obj: Mapping[str, Any], source: str | None = None) -> Example:
        obj = need_dict(obj, None, "write one JSON object per line")
        messages = _decode_prompt(obj, CallLinker())
        meta, group = extensions(obj)
        return Example(messages=tuple(messages), tools=_decode_tools(obj), metadata=meta, group=group, source=source)

    def encode(self, ex: Example) -> dict[str, Any]:
        require_kind(self.name, ex, "sft")
        return _encode_prompt(self.name, ex)

    def losses(self, ex: Example) -> list[str]:
        return _losses(ex)


def _score(item: Any, path: str) -> float:
    item = need_dict(item, path, 'write {"score": 1.0, "completion": {"role": "model", "parts": [...]}}')
    score = item.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float):
        fail(f"expected a number, got {type_name(score)}; score the preferred completion higher",
             f"{path}.score")
    return float(score)


def _completion(item: Mapping[str, Any], path: str, linker: CallLinker) -> Message:
    turn = need_dict(item.get("completion"), f"{path}.completion", 'write {"role": "model", "parts": [...]}')
    if turn.get("role") != "model":
        fail(f"completion role must be 'model', got {turn.get('role')!r}; set role to model", f"{path}.completion.role")
    return _decode_turn(turn, f"{path}.completion", linker)[0]


class VertexPreference:
    name = "vertex-preference"
    kind = "preference"
    priority = 20

    def detect(self, obj: Mapping[str, Any]) -> bool:
        return "completions" in obj and "contents" in obj

    def decode(self, obj: Mapping[str, Any], source: str | None = None) -> Example:
        obj = need_dict(obj, None, "write one JSON object per line")
        linker = CallLinker()
        messages = _decode_prompt(obj, linker)
        items = need_list(obj.get("completions"), "completions", "write a list of scored completions")
        if len(items) < 2:
            fail(f"expected at least two completions, got {len(items)}; add the rejected completion", "completions")
        scores = [_score(it, f"completions[{i}]") for i, it in enumerate(items)]
        best = scores.index(max(scores))
        worst = scores.index(min(scores))
        if scores[best] == scores[worst]:
            fail("all completions have the same score; give the preferred completion the higher score", "completions")
        chosen = _completion(items[best], f"completions[{best}]", linker)
        rejected = _completion(items[worst], f"completions[{worst}]", linker)
        meta, group = extensions(obj)
        return Example(messages=tuple(messages), tools=_decode_tools(obj), chosen=chosen, rejected=rejected,
                       metadata=meta, group=group, source=source)

    def encode(self, ex: Example) -> dict[str, Any]:
        require_kind(self.name, ex, "preference")
        text_only(self.name, ex)
        out = _encode_prompt(self.name, ex)
        replies = []
        for key, msg, score in (("chosen", ex.chosen, 1.0), ("rejected", ex.rejected, 0.0)):
            if msg is None or msg.role != "assistant":
                unsupported(self.name, f"a {key} reply that is not an assistant message", "give an assistant reply",
                            key)
            replies.append({"score": score, "completion": _encode_turn(self.name, msg, key)})
        out["completions"] = replies
        return out

    def losses(self, ex: Example) -> list[str]:
        return _losses(ex)


VERTEX_SFT = VertexSFT()
VERTEX_PREFERENCE = VertexPreference()
