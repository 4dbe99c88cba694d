"""Format plug-ins: round trips, one id across formats, detection, pointed decode errors, unsupported content."""

from __future__ import annotations

import base64
import random
import string
from dataclasses import replace

import orjson
import pytest

from ftlib import targets
from ftlib.formats import FORMATS, FormatError, detect, get, inputs
from ftlib.records import Attachment, Example, Message, ToolCall

SFT = ("openai-chat", "bedrock-claude", "vertex-sft", "hf-messages")
PREF = ("openai-dpo", "vertex-preference", "trl-preference")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
WEATHER = {"type": "function", "function": {
    "name": "weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def roundtrip(name: str, ex: Example) -> Example:
    """Encode, go through JSON text like a real file, decode; the line must also auto-detect as a compatible format."""
    fmt = FORMATS[name]
    line = orjson.loads(orjson.dumps(fmt.encode(ex)))
    back = fmt.decode(line, source="t.jsonl:1")
    detected = detect(line)
    assert detected is not None and detected.kind == fmt.kind
    assert detected.decode(line).id == back.id
    return back


def test_registry_has_every_format_with_its_protocol():
    assert set(FORMATS) == set(SFT) | set(PREF) | inputs.NAMES  # target formats + the core input-only shapes
    for name, fmt in FORMATS.items():
        assert fmt.name == name and fmt.kind in ("sft", "preference")
        assert all(callable(getattr(fmt, m)) for m in ("detect", "decode", "encode", "losses"))
    for target in targets.all_targets():
        assert all(f is None or FORMATS[f.name] is f for f in target.formats.values())
    with pytest.raises(KeyError, match="known"):
        get("nope")


# -- one conversation, one id ---------------------------------------------------------------------

PLAIN_SFT_LINES = {
    "openai-chat": {"messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."}, {"role": "user", "content": "And Chile?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Santiago."}]}]},
    "bedrock-claude": {"system": "Be brief.", "messages": [
        {"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And Chile?"}, {"role": "assistant", "content": "Santiago."}]},
    "vertex-sft": {"systemInstruction": {"role": "system", "parts": [{"text": "Be brief."}]}, "contents": [
        {"role": "user", "parts": [{"text": "Capital of France?"}]}, {"role": "model", "parts": [{"text": "Paris."}]},
        {"role": "user", "parts": [{"text": "And Chile?"}]}, {"role": "model", "parts": [{"text": "Santiago."}]}]},
    "hf-messages": {"messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."}, {"role": "user", "content": "And Chile?"},
        {"role": "assistant", "content": "Santiago."}]},
}


def test_plain_conversation_has_one_id_in_every_sft_format():
    expected = Example.from_turns([("user", "Capital of France?"), ("assistant", "Paris."), ("user", "And Chile?"),
                                   ("assistant", "Santiago.")], system="Be brief.")
    ids = {name: FORMATS[name].decode(line).id for name, line in PLAIN_SFT_LINES.items()}
    assert set(ids.values()) == {expected.id}
    for name in SFT:  # and re-encoding into any other format keeps it
        for other in SFT:
            assert FORMATS[other].decode(FORMATS[other].encode(FORMATS[name].decode(PLAIN_SFT_LINES[name]))).id \
                == expected.id


def test_plain_preference_has_one_id_in_every_preference_format():
    expected = Example.preference("Sky color?", "Blue.", "Green.", system="Short answers.")
    lines = {
        "openai-dpo": {"input": {"messages": [{"role": "system", "content": "Short answers."},
                                              {"role": "user", "content": "Sky color?"}]},
                       "preferred_output": [{"role": "assistant", "content": "Blue."}],
                       "non_preferred_output": [{"role": "assistant", "content": "Green."}]},
        "vertex-preference": {
            "systemInstruction": {"parts": [{"text": "Short answers."}]},
            "contents": [{"role": "user", "parts": [{"text": "Sky color?"}]}],
            "completions": [{"score": 0, "completion": {"role": "model", "parts": [{"text": "Green."}]}},
                            {"score": 0.9, "completion": {"role": "model", "parts": [{"text": "Blue."}]}}]},
        "trl-preference": {"prompt": [{"role": "system", "content": "Short answers."},
                                      {"role": "user", "content": "Sky color?"}],
                           "chosen": [{"role": "assistant", "content": "Blue."}],
                           "rejected": [{"role": "assistant", "content": "Green."}]},
    }
    for name, line in lines.items():
        assert detect(line).name == name
        assert FORMATS[name].decode(line).id == expected.id, name
    for a in PREF:
        for b in PREF:
            assert FORMATS[b].decode(FORMATS[b].encode(FORMATS[a].decode(lines[a]))).id == expected.id


def test_trl_string_and_implicit_prompt_forms():
    trl = FORMATS["trl-preference"]
    standard = trl.decode({"prompt": "The sky is", "chosen": " blue.", "rejected": " green."})
    assert standard.id == Example.preference("The sky is", " blue.", " green.").id
    implicit = trl.decode({"chosen": "The sky is blue.", "rejected": "The sky is green."})
    assert implicit.id == standard.id  # TRL's rule: the shared prefix, minus a trailing space, is the prompt
    conv = trl.decode({"chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
                       "rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "B"}]})
    assert conv.id == Example.preference("Q", "A", "B").id
    with pytest.raises(FormatError) as e:
        trl.decode({"chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
                    "rejected": [{"role": "user", "content": "other"}, {"role": "assistant", "content": "B"}]})
    assert "prompt" in str(e.value)


# -- rich round trips per format ------------------------------------------------------------------

def tool_conversation(ids=("call_0", "call_1"), args='{"city":"Paris"}') -> list[Message]:
    return [
        Message("system", "You call tools."),
        Message("user", "Weather in Paris and Lima?"),
        Message("assistant", "", tool_calls=(ToolCall(ids[0], "weather", args),
                                             ToolCall(ids[1], "weather", '{"city":"Lima"}'))),
        Message("tool", '{"temp":21}', tool_call_id=ids[0], name="weather"),
        Message("tool", "cloudy, 15 C", tool_call_id=ids[1], name="weather"),
        Message("assistant", "Paris 21, Lima 15 and cloudy."),
    ]


def test_openai_chat_round_trip_with_tools_images_weights_names():
    ex = Example(
        messages=(
            Message("system", "Describe images."),
            Message("user", "What is this?", attachments=(Attachment.from_uri(PNG_URL, detail="low"),
                                                          Attachment.from_uri("https://example.com/cat.jpg"))),
            Message("assistant", "A cat.", weight=0, name="bot"),
            *tool_conversation(ids=("call_a1", "abc"), args='{"city": "Paris"}')[1:],
        ),
        tools=(WEATHER,), parallel_tool_calls=False,
    )
    line = FORMATS["openai-chat"].encode(ex)
    parts = line["messages"][1]["content"]
    assert parts[1]["image_url"] == {"url": PNG_URL, "detail": "low"}
    assert "content" not in line["messages"][4] and line["messages"][4]["tool_calls"][0]["id"] == "call_a1"
    back = roundtrip("openai-chat", ex)
    assert back.canonical() == openai_view(ex).canonical() and back.id == openai_view(ex).id
    assert back.messages[1].attachments[0].data == PNG and back.source == "t.jsonl:1"
    assert FORMATS["openai-chat"].losses(ex) == []
    thinking = Example(messages=(Message("user", "q"), Message("assistant", "a", thinking="hmm")))
    assert FORMATS["openai-chat"].losses(thinking) == ["thinking"]


def test_openai_dpo_round_trip_with_tools():
    ex = Example(messages=(Message("system", "s"), Message("user", "q")), tools=(WEATHER,),
                 chosen=Message("assistant", "good"), rejected=Message("assistant", "bad"))
    line = FORMATS["openai-dpo"].encode(ex)
    assert line["input"]["tools"] == [WEATHER] and len(line["preferred_output"]) == 1
    assert roundtrip("openai-dpo", ex).id == ex.id


def test_bedrock_round_trip_and_unsupported_content():
    fmt = FORMATS["bedrock-claude"]
    ex = Example.from_turns([("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "d")], system="sys")
    assert fmt.encode(ex) == {"system": "sys", "messages": [{"role": "user", "content": "a"}, {
        "role": "assistant", "content": "b"}, {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}
    assert roundtrip("bedrock-claude", ex).id == ex.id
    no_system = Example.from_turns([("user", "a"), ("assistant", "b")])
    assert "system" not in fmt.encode(no_system) and roundtrip("bedrock-claude", no_system).id == no_system.id
    bad = {
        "image": Example.from_pair("look", "ok", attachments=[PNG_URL]),
        "tools": Example(messages=no_system.messages, tools=(WEATHER,)),
        "tool calls": Example(messages=tuple(tool_conversation()[1:])),
        "preference": Example.preference("q", "a", "b"),
        "late system": Example.from_turns([("user", "a"), ("system", "x"), ("assistant", "b")]),
        "two systems": Example.from_turns([("system", "x"), ("system", "y"), ("user", "a"), ("assistant", "b")]),
    }
    for what, example in bad.items():
        with pytest.raises(FormatError) as e:
            fmt.encode(example)
        assert e.value.code == "unsupported", what
    lossy = Example(messages=(Message("user", "q", name="ann"), Message("assistant", "a", weight=0, thinking="t")))
    assert fmt.losses(lossy) == ["weight", "thinking", "message name"]


def test_vertex_round_trip_with_tools_thinking_images():
    ex = Example(
        messages=(
            *tool_conversation()[:2],
            Message("assistant", "Let me check.", thinking="Two cities, two calls.",
                    tool_calls=tool_conversation()[2].tool_calls),
            *tool_conversation()[3:],
            Message("user", "And these?", attachments=(Attachment.from_bytes(PNG, "image/png"),
                                                       Attachment.from_uri("gs://bucket/doc.pdf", "application/pdf"))),
            Message("assistant", "A PNG and a PDF."),
        ),
        tools=(WEATHER,),
    )
    fmt = FORMATS["vertex-sft"]
    line = fmt.encode(ex)
    assert line["tools"] == [{"functionDeclarations": [WEATHER["function"]]}]
    model = line["contents"][1]
    assert model["parts"][0] == {"text": "Two cities, two calls.", "thought": True}
    assert model["parts"][2] == {"functionCall": {"name": "weather", "args": {"city": "Paris"}}}
    results = line["contents"][2]  # both tool results travel in one user turn
    assert results["role"] == "user" and [p["functionResponse"]["response"] for p in results["parts"]] == [
        {"temp": 21}, {"output": "cloudy, 15 C"}]
    assert line["contents"][4]["parts"][1] == {"inlineData": {"mimeType": "image/png",
                                                              "data": base64.b64encode(PNG).decode()}}
    assert line["contents"][4]["parts"][2] == {"fileData": {"mimeType": "application/pdf",
                                                            "fileUri": "gs://bucket/doc.pdf"}}
    assert roundtrip("vertex-sft", ex).canonical() == ex.canonical()
    assert fmt.losses(ex) == []


def test_vertex_assigns_call_ids_and_links_results_by_name():
    line = {"contents": [
        {"role": "user", "parts": [{"text": "go"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "a", "args": {}}},
                                    {"functionCall": {"name": "b", "args": {"x": 1}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "b", "response": {"ok": True}}},
                                   {"functionResponse": {"name": "a", "response": {"output": "done"}}},
                                   {"text": "thanks"}]},
        {"role": "model", "parts": [{"text": "ok"}]}]}
    ex = FORMATS["vertex-sft"].decode(line)
    assert [tc.id for tc in ex.messages[1].tool_calls] == ["call_0", "call_1"]
    assert [(m.role, m.tool_call_id, m.name, m.content) for m in ex.messages[2:5]] == [
        ("tool", "call_1", "b", '{"ok":true}'), ("tool", "call_0", "a", "done"), ("user", None, None, "thanks")]
    # the same conversation written for TRL without ids gets the same ids, hence the same example id
    hf = {"messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "a", "arguments": {}}},
            {"type": "function", "function": {"name": "b", "arguments": {"x": 1}}}]},
        {"role": "tool", "name": "b", "content": '{"ok":true}'},
        {"role": "tool", "name": "a", "content": "done"},
        {"role": "user", "content": "thanks"}, {"role": "assistant", "content": "ok"}]}
    assert detect(hf).name == "hf-messages"
    assert FORMATS["hf-messages"].decode(hf).id == ex.id


def test_vertex_losses_and_unsupported():
    fmt = FORMATS["vertex-sft"]
    openai_style = Example(messages=tuple(tool_conversation(ids=("x", "y"), args='{"city": "Paris"}')),
                           parallel_tool_calls=True)
    losses = fmt.losses(openai_style)
    assert any("ids" in x for x in losses) and any("formatting" in x for x in losses)
    assert "parallel_tool_calls" in losses
    assert fmt.losses(Example(messages=(Message("user", "q"), Message("assistant", "a", weight=0)))) == ["weight"]
    for bad in (
        Example.from_turns([("user", "a"), ("system", "late"), ("assistant", "b")]),
        Example(messages=(Message("user", "q"), Message("assistant", "", tool_calls=(ToolCall("c", "f", "[1]"),)))),
        Example(messages=(Message("user", "q"), Message("tool", "r", tool_call_id="missing"))),
        Example.preference("q", "a", "b"),
    ):
        with pytest.raises(FormatError) as e:
            fmt.encode(bad)
        assert e.value.code == "unsupported"


def test_vertex_preference_round_trip_and_scores():
    ex = Example(messages=(Message("system", "s"), Message("user", "q")), chosen=Message("assistant", "good",
                 thinking="because"), rejected=Message("assistant", "bad"))
    line = FORMATS["vertex-preference"].encode(ex)
    assert [c["score"] for c in line["completions"]] == [1.0, 0.0]
    assert roundtrip("vertex-preference", ex).canonical() == ex.canonical()
    line["completions"][1]["score"] = 1.0
    with pytest.raises(FormatError, match="higher score"):
        FORMATS["vertex-preference"].decode(line)


def test_hf_round_trip_with_tools_reasoning_images():
    ex = Example(
        messages=(
            Message("user", "Pictures:", attachments=(Attachment.from_uri(PNG_URL),
                                                      Attachment.from_uri("https://example.com/a.png"))),
            Message("assistant", "Two images.", thinking="I see a PNG."),
            *tool_conversation(ids=("id-1", "id-2"))[1:],
        ),
        tools=(WEATHER,),
    )
    fmt = FORMATS["hf-messages"]
    line = fmt.encode(ex)
    assert line["messages"][0]["content"][1] == {"type": "image", "url": PNG_URL}
    assert line["messages"][1]["reasoning_content"] == "I see a PNG."
    call = line["messages"][3]["tool_calls"][0]
    assert call["function"] == {"name": "weather", "arguments": {"city": "Paris"}} and call["id"] == "id-1"
    assert line["messages"][4] == {"role": "tool", "content": '{"temp":21}', "tool_call_id": "id-1", "name": "weather"}
    back = roundtrip("hf-messages", ex)
    assert back.canonical() == ex.canonical()
    assert fmt.losses(ex) == []
    assert fmt.losses(Example(messages=(Message("assistant", "a", weight=0),))) == ["weight"]
    # gpt-oss style "thinking" is read too
    assert fmt.decode({"messages": [{"role": "assistant", "content": "a", "thinking": "t"}]}).messages[0].thinking \
        == "t"


def test_trl_preference_round_trip_with_tools():
    ex = Example(messages=tuple(tool_conversation()[:-1]), tools=(WEATHER,),
                 chosen=Message("assistant", "Sunny."), rejected=Message("assistant", "No idea."))
    assert roundtrip("trl-preference", ex).canonical() == ex.canonical()


def test_kind_mismatch_is_unsupported():
    sft, pref = Example.from_pair("q", "a"), Example.preference("q", "a", "b")
    for name, fmt in FORMATS.items():
        with pytest.raises(FormatError) as e:
            fmt.encode(pref if fmt.kind == "sft" else sft)
        assert e.value.code == "unsupported", name


def test_openai_refuses_what_it_cannot_hold():
    fmt = FORMATS["openai-chat"]
    pdf = Attachment.from_bytes(b"%PDF-1.4 tiny", "application/pdf")
    for bad in (
        Example(messages=(Message("user", "doc", attachments=(pdf,)), Message("assistant", "ok"))),
        Example(messages=(Message("user", "q"), Message("assistant", "img", attachments=(
            Attachment.from_uri(PNG_URL),)))),
        Example(messages=(Message("user", "q", attachments=(Attachment.from_uri("gs://b/x.png"),)),)),
    ):
        with pytest.raises(FormatError) as e:
            fmt.encode(bad)
        assert e.value.code == "unsupported"


# -- decoding: extension keys, errors -------------------------------------------------------------

def test_extension_keys_decode_but_never_encode():
    for name, line in PLAIN_SFT_LINES.items():
        ex = FORMATS[name].decode({**line, "metadata": {"origin": "crm"}, "group": "ticket-7"}, source="f:3")
        assert (ex.metadata, ex.group, ex.source) == ({"origin": "crm"}, "ticket-7", "f:3")
        assert ex.id == FORMATS[name].decode(line).id
        encoded = FORMATS[name].encode(ex)
        assert "metadata" not in encoded and "group" not in encoded


@pytest.mark.parametrize(("name", "line", "field", "needle"), [
    ("openai-chat", {"messages": {"role": "user"}}, "messages", "list"),
    ("openai-chat", {"messages": [{"role": "user", "content": "q"}, {"role": "bot", "content": "a"}]},
     "messages[1].role", "use one of"),
    ("openai-chat", {"messages": [{"role": "developer", "content": "x"}]}, "messages[0].role", "'system'"),
    ("openai-chat", {"messages": [{"role": "user", "content": 5}]}, "messages[0].content", "string"),
    ("openai-chat", {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,!!notb64"}}]}]},
     "messages[0].content[0].image_url.url", "base64"),
    ("openai-chat", {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
     "messages[0].content[0].type", "image_url"),
    ("openai-chat", {"messages": [{"role": "assistant", "weight": 2, "content": "a"}]}, "messages[0].weight", "0 or 1"),
    ("openai-chat", {"messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}]},
     "messages[0].tool_calls[0].function.arguments", "json.dumps"),
    ("openai-chat", {"messages": [], "metadata": [1]}, "metadata", "object"),
    ("openai-chat", {"messages": [], "group": 3}, "group", "string"),
    ("openai-dpo", {"input": {"messages": []}, "preferred_output": [], "non_preferred_output": []},
     "preferred_output", "exactly one"),
    ("bedrock-claude", {"system": "s", "messages": [{"role": "system", "content": "x"}]}, "messages[0].role",
     "top-level"),
    ("bedrock-claude", {"system": "s", "messages": [{"role": "user", "content": [{"type": "text"}]}]},
     "messages[0].content", "text"),
    ("bedrock-claude", {"system": "s", "messages": [], "tools": []}, "tools", "OpenAI format"),
    ("bedrock-claude", {"system": "s", "messages": [{"role": "assistant", "content": "a", "weight": 0}]},
     "messages[0].weight", "only role and content"),
    ("vertex-sft", {"contents": [{"role": "user", "parts": [{"text": "a"}, {"inlineData": {
        "mimeType": "image/png", "data": "@@@"}}]}]}, "contents[0].parts[1].inlineData.data", "base64"),
    ("vertex-sft", {"contents": [{"role": "assistant", "parts": []}]}, "contents[0].role", "model"),
    ("vertex-sft", {"contents": [{"role": "user", "parts": [{"video": 1}]}]}, "contents[0].parts[0]", "inlineData"),
    ("vertex-sft", {"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": "x"}}]}]},
     "contents[0].parts[0].functionCall.args", "object"),
    ("hf-messages", {"messages": [{"role": "user", "content": [{"type": "image"}]}]}, "messages[0].content[0].url",
     "url"),
    ("trl-preference", {"prompt": "q", "chosen": [{"role": "assistant", "content": "a"}], "rejected": "b"},
     "rejected", "all be strings"),
    ("trl-preference", {"prompt": [], "chosen": [{"role": "assistant", "content": "a"}, {"role": "assistant"}],
                        "rejected": [{"role": "assistant", "content": "b"}]}, "chosen", "single assistant reply"),
])
def test_decode_errors_name_the_field_and_the_fix(name, line, field, needle):
    with pytest.raises(FormatError) as e:
        FORMATS[name].decode(line)
    assert e.value.field == field
    assert needle in str(e.value)
    assert e.value.code == "bad_record"


def test_semantic_problems_are_left_to_validation():
    # empty content, no assistant turn, odd order: all decode fine (ftlib.validate reports them)
    for line in ({"messages": [{"role": "assistant", "content": ""}, {"role": "user", "content": ""}]},
                 {"system": "", "messages": []}, {"contents": []}):
        fmt = detect(line)
        assert fmt is not None
        fmt.decode(line)


def test_detection_picks_the_most_specific_format():
    cases = {
        "bedrock-claude": {"system": "s", "messages": []},
        "hf-messages": {"messages": [{"role": "assistant", "content": "", "reasoning_content": "r"}]},
        "openai-chat": {"messages": [{"role": "assistant", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}]},
        "vertex-sft": {"contents": []},
        "vertex-preference": {"contents": [], "completions": []},
        "openai-dpo": {"input": {"messages": []}, "preferred_output": [], "non_preferred_output": []},
        "trl-preference": {"prompt": "p", "chosen": "a", "rejected": "b"},
    }
    for name, line in cases.items():
        assert detect(line).name == name
    assert detect({"text": "raw"}) is None


# -- property-style: many random examples round trip in every format that can hold them ----------

def _text(rng: random.Random) -> str:
    alphabet = string.ascii_letters + string.digits + " \n\t\"'\\{}[]:,.é漢🙂"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))


def openai_view(ex: Example) -> Example:
    """What an OpenAI line holds: its tool message has no name (the call it answers names the function)."""
    def strip(m: Message | None) -> Message | None:
        return replace(m, name=None) if m is not None and m.role == "tool" else m
    return replace(ex, messages=tuple(strip(m) for m in ex.messages), chosen=strip(ex.chosen),
                   rejected=strip(ex.rejected))


def _random_example(rng: random.Random, name: str) -> Example:
    """A random example using only what `name` can hold, in its own id convention."""
    rich = name not in ("bedrock-claude", "vertex-preference")  # both text only
    free_ids = name in ("openai-chat", "openai-dpo", "hf-messages", "trl-preference")
    msgs: list[Message] = []
    if rng.random() < 0.5:
        msgs.append(Message("system", _text(rng)))
    n_calls = 0
    for _ in range(rng.randint(1, 4)):
        atts = ()
        if rich and rng.random() < 0.3:
            atts = (Attachment.from_uri(rng.choice([PNG_URL, "https://example.com/p.png",
                                                    "https://example.com/q.jpg"])),)
            if name.startswith("vertex") and atts[0].data is None:
                atts = (Attachment.from_uri("gs://bucket/p.png"),)
        msgs.append(Message("user", _text(rng), attachments=atts))
        calls = ()
        if rich and rng.random() < 0.4:
            k = rng.randint(1, 2)
            calls = tuple(ToolCall(f"id{rng.randint(0, 999)}_{n_calls + i}" if free_ids else f"call_{n_calls + i}",
                                   rng.choice(["f", "g"]), orjson.dumps({"a": _text(rng)}).decode())
                          for i in range(k))
            n_calls += k
        reasons = name.startswith("vertex") or name in ("hf-messages", "trl-preference")
        thinking = (_text(rng) or None) if reasons and rng.random() < 0.3 else None
        weight = rng.choice([None, 0, 1]) if name == "openai-chat" else None
        msgs.append(Message("assistant", _text(rng) if not calls or rng.random() < 0.5 else "", tool_calls=calls,
                            thinking=thinking, weight=weight))
        for tc in calls:
            msgs.append(Message("tool", _text(rng), tool_call_id=tc.id, name=tc.name))
        if calls:
            msgs.append(Message("assistant", _text(rng)))
    tools = (WEATHER,) if rich and rng.random() < 0.3 else ()
    if FORMATS[name].kind == "preference":
        last = msgs.pop()
        return Example(messages=tuple(msgs), tools=tools, chosen=last,
                       rejected=Message("assistant", _text(rng) + "x"))
    return Example(messages=tuple(msgs), tools=tools)


@pytest.mark.parametrize("name", SFT + PREF)
def test_random_examples_round_trip(name):
    rng = random.Random(f"ftlib-{name}")
    for _ in range(300):
        ex = _random_example(rng, name)
        assert FORMATS[name].losses(ex) == []
        back = roundtrip(name, ex)
        expected = openai_view(ex) if name.startswith("openai") else ex
        assert back.canonical() == expected.canonical()
        assert back.id == expected.id
