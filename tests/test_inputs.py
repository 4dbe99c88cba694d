"""The input-only shapes (ftlib/formats/inputs.py): one id for one conversation in every shape, the peers' real
line shapes (Kiln, LLaMA-Factory, TRL, OpenAI legacy, the seed library's Gemini export), pointed errors, and
property-based decode -> encode -> decode round trips."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftlib import formats
from ftlib.formats import FormatError, detect, get
from ftlib.formats.inputs import NAMES
from ftlib.records import Example, Message, ToolCall

SYSTEM, Q1, A1, Q2, A2 = "Be brief.", "Capital of France?", "Paris.", "And Chile?", "Santiago."
CHAT = Example.from_turns([("user", Q1), ("assistant", A1), ("user", Q2), ("assistant", A2)], system=SYSTEM)
PAIR = Example.from_pair(Q1, A1, system=SYSTEM)
BARE_PAIR = Example.from_pair(Q1, A1)  # for shapes without a system prompt


def read(line: dict) -> Example:
    """As a file would: through JSON text, auto-detected."""
    obj = orjson.loads(orjson.dumps(line))
    fmt = detect(obj)
    assert fmt is not None, f"not detected: {line}"
    return fmt.decode(obj, "t.jsonl:1")


# -- one conversation, one id, from every shape ---------------------------------------------------

CHAT_LINES = {
    "sharegpt (system turn)": {"conversations": [
        {"from": "system", "value": SYSTEM}, {"from": "human", "value": Q1}, {"from": "gpt", "value": A1},
        {"from": "human", "value": Q2}, {"from": "gpt", "value": A2}]},
    "sharegpt (LLaMA-Factory system key)": {"system": SYSTEM, "conversations": [
        {"from": "human", "value": Q1}, {"from": "gpt", "value": A1},
        {"from": "human", "value": Q2}, {"from": "gpt", "value": A2}]},
    "chat-conversations (Kiln HF chat template)": {"conversations": [
        {"role": "system", "content": SYSTEM}, {"role": "user", "content": Q1}, {"role": "assistant", "content": A1},
        {"role": "user", "content": Q2}, {"role": "assistant", "content": A2}]},
    "alpaca with system and history": {"system": SYSTEM, "history": [[Q1, A1]], "instruction": Q2, "input": "",
                                       "output": A2},
    "prompt-completion (TRL conversational)": {
        "prompt": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": Q1},
                   {"role": "assistant", "content": A1}, {"role": "user", "content": Q2}],
        "completion": [{"role": "assistant", "content": A2}]},
}
BARE_LINES = {
    "prompt-completion (strings)": {"prompt": Q1, "completion": A1},
    "text-input-output (seed library / Gemini API)": {"text_input": Q1, "output": A1},
    "text-input-output (PaLM)": {"input_text": Q1, "output_text": A1},
    "alpaca input/output only": {"input": Q1, "output": A1},
}


@pytest.mark.parametrize("shape", sorted(CHAT_LINES))
def test_every_chat_shape_gives_the_chat_formats_id(shape):
    assert read(CHAT_LINES[shape]).id == CHAT.id
    for name in ("openai-chat", "bedrock-claude", "vertex-sft", "hf-messages"):
        assert read(get(name).encode(CHAT)).id == CHAT.id


@pytest.mark.parametrize("shape", sorted(BARE_LINES))
def test_system_less_shapes_give_the_same_id(shape):
    assert read(BARE_LINES[shape]).id == BARE_PAIR.id


def test_empty_system_prompt_is_no_system_prompt():
    """`"system": ""` (a Bedrock line, an Alpaca line) is the same example as no system key."""
    assert read({"system": "", "messages": [{"role": "user", "content": Q1},
                                            {"role": "assistant", "content": A1}]}).id == BARE_PAIR.id
    assert read({"system": " ", "instruction": Q1, "output": A1}).id == BARE_PAIR.id
    assert read({"conversations": [{"from": "system", "value": ""}, {"from": "human", "value": Q1},
                                   {"from": "gpt", "value": A1}]}).id == BARE_PAIR.id


def test_each_shape_is_detected_as_itself():
    cases = {
        "sharegpt": CHAT_LINES["sharegpt (system turn)"],
        "chat-conversations": CHAT_LINES["chat-conversations (Kiln HF chat template)"],
        "alpaca": CHAT_LINES["alpaca with system and history"],
        "prompt-completion": BARE_LINES["prompt-completion (strings)"],
        "text-input-output": BARE_LINES["text-input-output (PaLM)"],
        "sharegpt-preference": {"conversations": [{"from": "human", "value": "q"}],
                                "chosen": {"from": "gpt", "value": "a"}, "rejected": {"from": "gpt", "value": "b"}},
        "alpaca-preference": {"instruction": "q", "chosen": "a", "rejected": "b"},
    }
    assert set(cases) == NAMES
    for name, line in cases.items():
        assert detect(line).name == name
    # the plain {"text": ...} of language-model pretraining data is still nobody's
    assert detect({"text": "plain pretraining text"}) is None


# -- the peers' real shapes ------------------------------------------------------------------------

def test_kiln_tool_call_export_reads_like_the_hf_line():
    """Kiln's huggingface_chat_template_toolcall_jsonl: the reply is a task_response call with object arguments and
    the id inside `function`; a role/content list under `conversations` reads exactly as under `messages`."""
    convo = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": Q1},
             {"role": "assistant", "tool_calls": [{"type": "function", "function": {
                 "name": "task_response", "id": "a1b2c3d4e", "arguments": {"answer": "Paris"}}}]}]
    ex = read({"conversations": convo})
    assert ex.id == read({"messages": convo}).id
    (call,) = ex.messages[-1].tool_calls
    assert (call.name, call.arguments) == ("task_response", '{"answer":"Paris"}')


def test_llama_factory_tool_turns_match_hf_and_vertex():
    tools = [{"name": "weather", "description": "Weather for a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    sharegpt = {"system": "You call tools.", "tools": orjson.dumps(tools).decode(), "conversations": [
        {"from": "human", "value": "Weather in Paris?"},
        {"from": "function_call", "value": '{"name": "weather", "arguments": {"city": "Paris"}}'},
        {"from": "observation", "value": '{"temp":21}'},
        {"from": "gpt", "value": "21 C."}]}
    hf = {"tools": [{"type": "function", "function": t} for t in tools], "messages": [
        {"role": "system", "content": "You call tools."}, {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "tool_calls": [{"type": "function",
                                             "function": {"name": "weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "name": "weather", "content": '{"temp":21}'},
        {"role": "assistant", "content": "21 C."}]}
    ex = read(sharegpt)
    assert ex.id == read(hf).id == read(get("vertex-sft").encode(read(hf))).id
    assert ex.messages[3] == Message("tool", '{"temp":21}', tool_call_id="call_0", name="weather")
    parallel = read({"conversations": [
        {"from": "human", "value": "Paris and Lima?"},
        {"from": "function_call", "value": '[{"name": "weather", "arguments": {"city": "Paris"}}, '
                                           '{"name": "weather", "arguments": {"city": "Lima"}}]'},
        {"from": "observation", "value": "21"}, {"from": "observation", "value": "15"},
        {"from": "gpt", "value": "21 and 15."}]})
    assert [m.tool_call_id for m in parallel.messages if m.role == "tool"] == ["call_0", "call_1"]


def test_sharegpt_weights_and_preference_forms():
    ex = read({"conversations": [{"from": "human", "value": "q", "weight": None},
                                 {"from": "gpt", "value": "a", "weight": 0}, {"from": "human", "value": "q2"},
                                 {"from": "gpt", "value": "a2", "weight": 1.0}]})
    assert [m.weight for m in ex.messages] == [None, 0, None, 1]
    pref = read({"conversations": [{"from": "human", "value": Q1}], "chosen": {"from": "gpt", "value": A1},
                 "rejected": {"from": "gpt", "value": "Lyon."}})
    assert pref.id == Example.preference(Q1, A1, "Lyon.").id
    alpaca = read({"instruction": Q1, "chosen": A1, "rejected": "Lyon."})
    assert alpaca.id == pref.id


def test_alpaca_joins_instruction_and_input_like_llama_factory():
    ex = read({"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"})
    assert ex.messages[0].content == "Translate to French.\nGood morning"


@pytest.mark.parametrize(("line", "field", "words"), [
    ({"conversations": [{"from": "narrator", "value": "x"}]}, "conversations[0].from", "human, gpt or system"),
    ({"conversations": [{"from": "human", "value": 3}]}, "conversations[0].value", "string"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "observation", "value": "r"}]},
     "conversations[1].from", "function_call turn first"),
    ({"conversations": [{"from": "function_call", "value": "{nope"}]}, "conversations[0].value", "invalid JSON"),
    ({"conversations": [{"from": "gpt", "value": "a", "weight": 2}]}, "conversations[0].weight", "0 or 1"),
    ({"conversations": [{"role": "user", "content": "q"}, {"role": "robot", "content": "a"}]},
     "conversations[1].role", "use one of"),
    ({"system": "s", "conversations": [{"role": "user", "content": 5}]}, "conversations[0].content", "string"),
    ({"instruction": "", "input": "", "output": "a"}, "instruction", "both empty"),
    ({"instruction": "q", "output": ["good", "bad"]}, "output", "chosen"),
    ({"instruction": "q", "output": "a", "history": [["only one"]]}, "history[0]", "[user, assistant]"),
    ({"prompt": "q", "completion": "a", "label": True}, "label", "KTO"),
    ({"prompt": "q", "completion": [{"role": "assistant", "content": "a"}]}, "completion", "mixed forms"),
    ({"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "assistant", "content": 1}]},
     "completion[0].content", "string"),
    ({"prompt": [{"role": "user", "content": "q"}], "completion": []}, "completion", "empty"),
    ({"text_input": "q", "output": None}, "output", "string"),
    ({"conversations": [{"from": "human", "value": "q"}], "chosen": {"from": "human", "value": "a"},
      "rejected": {"from": "gpt", "value": "b"}}, "chosen.from", "gpt"),
])
def test_bad_lines_name_the_field_and_the_fix(line, field, words):
    with pytest.raises(FormatError) as e:
        detect(line).decode(line)
    assert e.value.field == field and words in str(e.value)


def test_encoders_refuse_what_a_shape_cannot_hold():
    img = Example.from_pair("What is this?", "A cat.", attachments=["https://example.com/cat.png"])
    for name in ("sharegpt", "chat-conversations", "alpaca", "prompt-completion", "text-input-output"):
        with pytest.raises(FormatError) as e:
            get(name).encode(img)
        assert e.value.code == "unsupported"
    with pytest.raises(FormatError, match="system prompt or more than one turn"):
        get("text-input-output").encode(PAIR)
    assistant_first = Example(messages=(Message("user", "q"), Message("assistant", "a"), Message("assistant", "b")))
    with pytest.raises(FormatError, match="alternating"):
        get("alpaca").encode(assistant_first)
    mixed = Example(messages=(Message("user", "q"), Message("assistant", "Let me look.",
                                                            tool_calls=(ToolCall("call_0", "f", "{}"),)),
                              Message("tool", "r", tool_call_id="call_0", name="f"), Message("assistant", "done")))
    with pytest.raises(FormatError, match="one turn"):
        get("sharegpt").encode(mixed)
    thinking = Example(messages=(Message("user", "q"), Message("assistant", "a", thinking="hmm")))
    assert all("thinking" in get(name).losses(thinking) for name in NAMES - {"alpaca-preference",
                                                                            "sharegpt-preference"})


def test_input_shapes_are_exportable_by_format_name(tmp_path):
    """No target writes them, but a format name is a valid export destination (e.g. to hand data to LLaMA-Factory)."""
    from ftlib.dataset import Dataset

    out = tmp_path / "sharegpt.jsonl"
    Dataset([CHAT, Example.preference("q", "a", "b")]).export_jsonl(out, "sharegpt")
    (line,) = out.read_bytes().splitlines()
    assert read(orjson.loads(line)).id == CHAT.id


# -- property-based: decode -> encode -> decode is stable for every input shape ---------------------

text = st.text(max_size=12)
some_text = st.text(min_size=1, max_size=12).filter(str.strip)
args = st.dictionaries(st.sampled_from(["city", "n", "q"]), st.one_of(text, st.integers(-5, 5)), max_size=2)


@st.composite
def sharegpt_turns(draw, tools: bool = True) -> list[dict]:
    turns = []
    if draw(st.booleans()):
        turns.append({"from": "system", "value": draw(text)})
    for _ in range(draw(st.integers(1, 3))):
        turns.append({"from": draw(st.sampled_from(["human", "user"])), "value": draw(text)})
        if tools and draw(st.booleans()):
            calls = [{"name": draw(st.sampled_from(["f", "g"])), "arguments": draw(args)}
                     for _ in range(draw(st.integers(1, 2)))]
            value = calls[0] if len(calls) == 1 and draw(st.booleans()) else calls
            turns.append({"from": "function_call", "value": orjson.dumps(value).decode()})
            turns.extend({"from": "observation", "value": draw(text)} for _ in calls)
        turn = {"from": draw(st.sampled_from(["gpt", "assistant"])), "value": draw(text)}
        weight = draw(st.sampled_from([None, 0, 1, "absent"]))
        if weight != "absent":
            turn["weight"] = weight
        turns.append(turn)
    return turns


@st.composite
def role_messages(draw, n: int) -> list[dict]:
    msgs = [{"role": "user" if i % 2 == 0 else "assistant", "content": draw(text)} for i in range(n)]
    if draw(st.booleans()):
        msgs.insert(0, {"role": "system", "content": draw(text)})
    return msgs


def _maybe(draw, key: str, strategy) -> dict:
    return {key: draw(strategy)} if draw(st.booleans()) else {}


@st.composite
def lines(draw) -> tuple[str, dict]:
    name = draw(st.sampled_from(sorted(NAMES)))
    system = _maybe(draw, "system", text)
    history = _maybe(draw, "history", st.lists(st.tuples(text, text).map(list), max_size=2))
    if name == "sharegpt":
        line = {"conversations": draw(sharegpt_turns()), **system}
        if draw(st.booleans()):
            line["tools"] = orjson.dumps([{"name": "f", "parameters": {"type": "object"}}]).decode()
    elif name == "sharegpt-preference":
        line = {"conversations": draw(sharegpt_turns(tools=False))[:-1] or [{"from": "human", "value": "q"}],
                "chosen": {"from": "gpt", "value": draw(text)}, "rejected": {"from": "gpt", "value": draw(text)},
                **system}
    elif name == "chat-conversations":
        line = {"conversations": draw(role_messages(draw(st.integers(2, 5)))), **system}
    elif name == "alpaca":
        line = {"instruction": draw(some_text), **_maybe(draw, "input", text), "output": draw(text), **system,
                **history}
    elif name == "alpaca-preference":
        line = {"instruction": draw(some_text), "chosen": draw(text), "rejected": draw(text), **system, **history}
    elif name == "prompt-completion":
        if draw(st.booleans()):
            line = {"prompt": draw(text), "completion": draw(text)}
        else:
            prompt = draw(role_messages(draw(st.sampled_from([1, 3]))))
            line = {"prompt": prompt, "completion": [{"role": "assistant", "content": draw(text)}]}
    else:
        keys = draw(st.sampled_from([("text_input", "output"), ("input_text", "output_text")]))
        line = {keys[0]: draw(text), keys[1]: draw(text)}
    if draw(st.booleans()):
        line["group"] = draw(some_text)
    return name, line


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines())
def test_decode_encode_decode_is_stable(case):
    name, line = case
    fmt = get(name)
    assert detect(line) is fmt
    first = fmt.decode(orjson.loads(orjson.dumps(line)), "a.jsonl:1")
    again = orjson.loads(orjson.dumps(fmt.encode(first)))
    assert detect(again) is fmt, again
    second = fmt.decode(again, "a.jsonl:1")
    assert second.canonical() == first.canonical() and second.id == first.id
    assert fmt.losses(first) == []  # nothing these shapes read is lost when written back


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.tuples(some_text, some_text), min_size=1, max_size=3), st.one_of(st.none(), some_text))
def test_text_conversations_keep_their_id_in_every_shape_that_holds_them(pairs, system):
    turns = [t for q, a in pairs for t in (("user", q), ("assistant", a))]
    ex = Example.from_turns(turns, system=system)
    holders = ["sharegpt", "chat-conversations", "alpaca", "prompt-completion"]
    if len(pairs) == 1 and system is None:
        holders.append("text-input-output")
    for name in holders:
        line = orjson.loads(orjson.dumps(get(name).encode(ex)))
        assert detect(line).name == name and read(line).id == ex.id, name


def test_registry_lists_input_shapes_before_the_catch_all():
    order = list(formats.all_formats())
    assert order.index("prompt-completion") < order.index("openai-chat")
    assert order.index("alpaca-preference") < order.index("trl-preference")  # chosen/rejected with instruction
    assert order.index("sharegpt-preference") < order.index("trl-preference")
