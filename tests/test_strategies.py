"""Training strategies per target, checked against each provider's published line format: the OpenAI line schema,
Bedrock's rules (role alternation, text only), the google-genai Content model for Vertex lines, and TRL's own
conversational data helpers for the Hugging Face files. Bad rows are Issues with file:line; defaults change no byte."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from ftlib import formats, pipeline, strategies, validate
from ftlib.dataset import Dataset
from ftlib.issues import Issue
from ftlib.records import Example, Message, ToolCall
from ftlib.strategies import Strategy, from_params
from ftlib.targets.openai.schema import schema_errors

TARGETS = ("openai", "anthropic", "gemini", "huggingface")
THINK = "Two plus two is four; the user wants JSON."
ANSWER = '{"answer": 4,   "unit": "apples"}'
COMPACT = '{"answer":4,"unit":"apples"}'
SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"}, "unit": {"type": "string"}},
          "required": ["answer"], "additionalProperties": False}


def single(source: str = "data/a.jsonl:1", **kw: Any) -> Example:
    return Example(messages=(Message("system", "You count apples."), Message("user", "2 + 2 apples?"),
                             Message("assistant", ANSWER, thinking=THINK)), source=source, **kw)


def multi(source: str = "data/a.jsonl:2") -> Example:
    return Example(messages=(
        Message("user", "1 + 1 apples?"), Message("assistant", '{"answer": 2}', thinking="One and one."),
        Message("user", "and 2 + 2?"), Message("assistant", ANSWER, thinking=THINK)), source=source)


def preference(chosen_thinking: str | None = None) -> Example:
    return Example(messages=(Message("user", "2 + 2 apples?"),),
                   chosen=Message("assistant", ANSWER, thinking=chosen_thinking),
                   rejected=Message("assistant", "four, I think"), source="data/p.jsonl:1")


def shaped(ex: Example, strategy: Strategy, target: str) -> Example | Issue:
    return strategies.apply(ex, strategy, formats.picker(target)(ex.kind))


def export_lines(examples: list[Example], strategy: Strategy | None, target: str) -> tuple[list[dict], list[Issue]]:
    """The JSON lines export writes for these examples (strategy applied the way the export stage applies it)."""
    issues: list[Issue] = []
    if strategy is not None:
        examples, issues = strategies.apply_all(examples, strategy, target)
    lines = []
    for item in formats.encode_lines(examples, target):
        if isinstance(item, Issue):
            issues.append(item)
        else:
            lines.append(orjson.loads(item[1]))
    return lines, issues


def provider_errors(line: dict, kind: str, target: str) -> list[str]:
    """What the provider's published format and ftlib's rules for it say about an exported line."""
    fmt = formats.picker(target)(kind)
    ex = fmt.decode(line, "export:1")
    found = [str(i) for i in validate.check_example(ex, target, line=line) if i.severity == "error"]
    if target == "openai":
        found += [f"schema {p}: {m}" for p, m in schema_errors(line, kind)]
    if target == "gemini":
        from google.genai import types  # the SDK's own models of Vertex contents (extra keys forbidden)

        for c in line["contents"] + ([line["systemInstruction"]] if "systemInstruction" in line else []):
            types.Content.model_validate(c)
        for t in line.get("tools", []):
            types.Tool.model_validate(t)
    return found


def texts(line: dict) -> str:
    return orjson.dumps(line).decode()


# -- params ---------------------------------------------------------------------------------------------

def test_absent_or_as_is_strategy_is_none_so_export_is_unchanged(tmp_path: Path) -> None:
    assert from_params(None, "providers.openai.strategy") is None
    assert from_params("as_is", "providers.openai.strategy") is None
    assert from_params({}, "providers.openai.strategy") is None
    ds = Dataset([single(), multi(), preference("because")])
    parts = ds.split({"train": 1.0}, seed=1)
    parts["train"].to_parquet(tmp_path / "splits" / "train.parquet")
    for target in TARGETS:
        pipeline.export(tmp_path / "splits", target, tmp_path / "plain" / target, workers=1)
        pipeline.export(tmp_path / "splits", target, tmp_path / "none" / target, workers=1, strategy=None)
        for f in (tmp_path / "plain" / target).glob("*.jsonl"):
            assert f.read_bytes() == (tmp_path / "none" / target / f.name).read_bytes()


@pytest.mark.parametrize(("value", "message"), [
    ("think_harder", "unknown strategy 'think_harder'"),
    ({"output": "yaml"}, "providers.openai.strategy.output: Input should be"),
    ({"reasoning": "final_only", "colour": "red"}, "providers.openai.strategy.colour: Extra inputs"),
    ({"output": "json", "json_schema": {"type": "objekt"}}, "not a valid JSON schema"),
    ({"output": "tool_call", "json_schema": {"type": "string"}}, 'needs a json_schema of "type": "object"'),
    ({"output": "tool_call", "tool": {"name": "task response"}}, "strategy.tool.name"),
    (["final_only"], "must be a strategy name or a mapping"),
])
def test_bad_strategy_params_name_the_key_and_the_fix(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=r"params: providers\.openai\.strategy") as e:
        from_params(value, "providers.openai.strategy")
    assert message in str(e.value)


def test_json_schema_can_be_a_file_beside_params(tmp_path: Path) -> None:
    (tmp_path / "schema.json").write_bytes(orjson.dumps(SCHEMA))
    s = from_params({"output": "json", "json_schema": "schema.json"}, "providers.openai.strategy", tmp_path)
    assert s is not None and s.json_schema == SCHEMA
    with pytest.raises(ValueError, match=r"missing\.json not found"):
        from_params({"output": "json", "json_schema": "missing.json"}, "x", tmp_path)


def test_tool_call_output_is_refused_up_front_for_a_text_only_target() -> None:
    with pytest.raises(ValueError, match="bedrock-claude does not"):
        strategies.check(Strategy(output="tool_call"), "anthropic")
    strategies.check(Strategy(output="tool_call"), "openai")


# -- reasoning strategies ----------------------------------------------------------------------------------

@pytest.mark.parametrize("target", TARGETS)
def test_final_only_drops_every_trace_of_reasoning(target: str) -> None:
    lines, issues = export_lines([single(), multi()], Strategy(reasoning="final_only"), target)
    assert not issues  # no "thinking" loss warnings either: nothing was lost by accident
    for line in lines:
        assert THINK not in texts(line) and "One and one" not in texts(line)
        assert "reasoning_content" not in texts(line) and '"thought"' not in texts(line)
        assert not provider_errors(line, "sft", target)


@pytest.mark.parametrize(("target", "where"), [
    ("openai", "tags"), ("anthropic", "tags"), ("gemini", "thought"), ("huggingface", "reasoning_content")])
def test_final_and_reasoning_keeps_reasoning_where_the_target_holds_it(target: str, where: str) -> None:
    lines, issues = export_lines([single()], Strategy(reasoning="final_and_reasoning"), target)
    assert not issues
    (line,) = lines
    assert not provider_errors(line, "sft", target)
    if where == "tags":
        last = line["messages"][-1]
        assert last["content"] == f"<think>\n{THINK}\n</think>\n\n{ANSWER}"
    elif where == "thought":
        parts = line["contents"][-1]["parts"]
        assert parts[0] == {"text": THINK, "thought": True} and parts[1] == {"text": ANSWER}
    else:
        assert line["messages"][-1] == {"role": "assistant", "content": ANSWER, "reasoning_content": THINK}


def test_think_tags_format_puts_reasoning_in_the_content_even_where_a_field_exists() -> None:
    strategy = Strategy(reasoning="final_and_reasoning", reasoning_format="think_tags")
    (line,), _ = export_lines([single()], strategy, "huggingface")
    assert line["messages"][-1] == {"role": "assistant", "content": f"<think>\n{THINK}\n</think>\n\n{ANSWER}"}


@pytest.mark.parametrize("target", TARGETS)
def test_chain_of_thought_turns_adds_kiln_style_turns_the_provider_accepts(target: str) -> None:
    strategy = Strategy(reasoning="chain_of_thought_turns")
    lines, issues = export_lines([single(), multi()], strategy, target)
    assert not issues
    for line in lines:
        assert not provider_errors(line, "sft", target), target
    ex = shaped(multi(), strategy, target)
    assert isinstance(ex, Example)
    roles = [m.role for m in ex.messages]
    assert roles == ["user", "assistant", "user", "assistant"] * 2  # still alternating (Bedrock's rule)
    assert ex.messages[0].content == f"1 + 1 apples?\n\n{strategies.THINKING_INSTRUCTIONS}"
    assert ex.messages[1].content == "One and one." and ex.messages[2].content == strategies.FINAL_ANSWER_PROMPT
    assert ex.messages[3].content == '{"answer": 2}' and not any(m.thinking for m in ex.messages)
    assert ex.messages[7].content == ANSWER


def test_chain_of_thought_turns_custom_prompts_and_weights_carry_over() -> None:
    ex = Example(messages=(Message("user", "q"), Message("assistant", "a", thinking="t", weight=0),
                           Message("user", "q2"), Message("assistant", "a2")))
    out = strategies.chain_of_thought_turns(ex, "Reason first.", "Now answer.")
    assert [(m.role, m.content, m.weight) for m in out.messages] == [
        ("user", "q\n\nReason first.", None), ("assistant", "t", 0), ("user", "Now answer.", None),
        ("assistant", "a", 0), ("user", "q2", None), ("assistant", "a2", None)]


def test_chain_of_thought_turns_cannot_split_a_preference_reply() -> None:
    issue = shaped(preference("because it adds up"), Strategy(reasoning="chain_of_thought_turns"), "openai")
    assert isinstance(issue, Issue)
    assert (issue.code, issue.source, issue.field) == ("strategy_unsupported", "data/p.jsonl:1", "chosen.thinking")
    assert isinstance(shaped(preference(), Strategy(reasoning="chain_of_thought_turns"), "openai"), Example)


@pytest.mark.parametrize("target", ["openai", "gemini", "huggingface"])
def test_final_and_reasoning_on_preference_lines(target: str) -> None:
    lines, issues = export_lines([preference("because it adds up")], Strategy(reasoning="final_and_reasoning"), target)
    assert not [i for i in issues if i.severity == "error"]
    (line,) = lines
    assert "because it adds up" in texts(line)
    assert not provider_errors(line, "preference", target)


# -- JSON output --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", TARGETS)
def test_json_output_writes_every_reply_compact_on_one_line(target: str) -> None:
    strategy = Strategy(output="json", json_schema=SCHEMA)
    lines, issues = export_lines([single(), multi()], strategy, target)
    assert not [i for i in issues if i.severity == "error"]
    for line in lines:
        assert not provider_errors(line, "sft", target)
        body = texts(line)
        assert ANSWER not in body.replace("\\", "") and orjson.dumps(COMPACT).decode() in body
    ex = shaped(multi(), strategy, target)
    assert [m.content for m in ex.messages if m.role == "assistant"] == ['{"answer":2}', COMPACT]


def test_a_reply_that_is_not_json_is_an_issue_with_file_line_and_field() -> None:
    bad = Example(messages=(Message("user", "q"), Message("assistant", "four"), Message("user", "again?"),
                            Message("assistant", '{"answer": 4}')), source="data/support.jsonl:17")
    issue = shaped(bad, Strategy(output="json"), "openai")
    assert isinstance(issue, Issue) and issue.severity == "error"
    assert (issue.code, issue.source, issue.field) == ("reply_not_json", "data/support.jsonl:17",
                                                        "messages[1].content")
    assert "four" not in issue.message  # never quotes the training text
    assert str(issue).startswith("data/support.jsonl:17: error reply_not_json [messages[1].content]")


def test_a_reply_that_breaks_the_schema_names_the_rule_not_the_value() -> None:
    bad = Example(messages=(Message("user", "q"), Message("assistant", '{"answer": "secret-ish text", "extra": 1}')),
                  source="data/a.jsonl:9")
    issue = shaped(bad, Strategy(output="json", json_schema=SCHEMA), "openai")
    assert isinstance(issue, Issue) and issue.code == "reply_schema_mismatch"
    assert issue.field == "messages[1].content" and "secret-ish" not in issue.message
    assert "schema" in issue.message


def test_json_preference_requires_json_chosen_but_keeps_a_non_json_rejected_reply() -> None:
    ex = shaped(preference(), Strategy(output="json"), "openai")
    assert isinstance(ex, Example)
    assert ex.chosen.content == COMPACT and ex.rejected.content == "four, I think"
    bad = Example(messages=(Message("user", "q"),), chosen=Message("assistant", "four"),
                  rejected=Message("assistant", "{}"), source="data/p.jsonl:3")
    issue = shaped(bad, Strategy(output="json"), "openai")
    assert isinstance(issue, Issue) and (issue.field, issue.source) == ("chosen.content", "data/p.jsonl:3")


def test_export_skips_bad_rows_and_lists_them_in_the_report(tmp_path: Path) -> None:
    good = single()
    bad = Example(messages=(Message("user", "q"), Message("assistant", "not json at all")),
                  source="data/support.jsonl:42")
    Dataset([good, bad]).to_parquet(tmp_path / "splits" / "train.parquet")
    report = pipeline.export(tmp_path / "splits", "openai", tmp_path / "out", tmp_path / "export.json", workers=1,
                             strategy=Strategy(output="json"))
    assert report["files"] == {"train.jsonl": 1} and report["skipped"] == 1
    assert report["strategy"] == {"output": "json"}
    (issue,) = [i for i in report["issues"] if i["severity"] == "error"]
    assert (issue["code"], issue["source"], issue["field"]) == ("reply_not_json", "data/support.jsonl:42",
                                                                 "messages[1].content")
    (line,) = (tmp_path / "out" / "train.jsonl").read_bytes().splitlines()
    assert orjson.loads(line)["messages"][-1]["content"] == COMPACT


# -- tool-call output ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["openai", "gemini", "huggingface"])
def test_tool_call_output_is_a_task_response_call_the_provider_accepts(target: str) -> None:
    strategy = Strategy(output="tool_call", json_schema=SCHEMA)
    lines, issues = export_lines([single(), multi()], strategy, target)
    assert not [i for i in issues if i.severity == "error"], issues
    for line in lines:
        assert not provider_errors(line, "sft", target)
    single_line = lines[0]
    if target == "gemini":
        turn = single_line["contents"][-1]  # the reasoning stays a thought part before the call (reasoning as_is)
        assert turn == {"role": "model", "parts": [{"text": THINK, "thought": True}, {
            "functionCall": {"name": "task_response", "args": {"answer": 4, "unit": "apples"}}}]}
        (decl,) = single_line["tools"][0]["functionDeclarations"]
        assert decl["name"] == "task_response" and decl["parameters"] == SCHEMA
    else:
        last = single_line["messages"][-1]
        (call,) = last["tool_calls"]
        assert call["function"]["name"] == "task_response"
        args = call["function"]["arguments"]
        assert (orjson.loads(args) if isinstance(args, str) else args) == {"answer": 4, "unit": "apples"}
        assert "content" not in last or last["content"] in ("", None)
        assert [t["function"]["name"] for t in single_line["tools"]] == ["task_response"]
        assert single_line["tools"][0]["function"]["parameters"] == SCHEMA
    ex = shaped(multi(), strategy, target)
    assert ex.messages[1].content == '{"answer": 2}' and not ex.messages[1].tool_calls  # earlier turns stay text


def test_tool_call_ids_continue_the_numbering_vertex_and_hf_assign() -> None:
    ex = Example(messages=(
        Message("user", "order 7?"),
        Message("assistant", "", tool_calls=(ToolCall("call_0", "lookup", '{"id":7}'),)),
        Message("tool", "shipped", tool_call_id="call_0", name="lookup"),
        Message("assistant", '{"answer": 7}')), tools=(
        {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}},))
    out = shaped(ex, Strategy(output="tool_call", tool={"name": "reply", "description": "The reply"}), "gemini")
    assert out.messages[-1].tool_calls == (ToolCall("call_1", "reply", '{"answer":7}'),)
    assert [t["function"]["name"] for t in out.tools] == ["lookup", "reply"]
    assert out.tools[1]["function"] == {"name": "reply", "description": "The reply", "parameters": {"type": "object"}}
    # the Vertex line decodes back to the same calls: no "ids renumbered" loss
    fmt = formats.picker("gemini")("sft")
    assert not fmt.losses(out) and fmt.decode(fmt.encode(out)).messages == out.messages


def test_tool_call_needs_a_json_object_reply() -> None:
    for content, code in (("four", "reply_not_json"), ("[4]", "reply_schema_mismatch")):
        ex = Example(messages=(Message("user", "q"), Message("assistant", content)), source="data/a.jsonl:5")
        issue = shaped(ex, Strategy(output="tool_call"), "openai")
        assert isinstance(issue, Issue) and issue.code == code and issue.field == "messages[1].content"
        assert issue.source == "data/a.jsonl:5"


def test_tool_call_output_with_reasoning_strategies_combine() -> None:
    ex = shaped(single(), Strategy(output="tool_call", reasoning="chain_of_thought_turns"), "openai")
    assert [m.role for m in ex.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert ex.messages[2].content == THINK and ex.messages[-1].tool_calls[0].name == "task_response"
    lines, _ = export_lines([single()], Strategy(output="tool_call", reasoning="chain_of_thought_turns"), "openai")
    assert not provider_errors(lines[0], "sft", "openai")


# -- TRL reads the Hugging Face lines --------------------------------------------------------------------------

def test_trl_reads_the_shaped_hugging_face_lines() -> None:
    pytest.importorskip("trl")
    from tiny_model import CHAT_TEMPLATE
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from trl.data_utils import apply_chat_template, is_conversational

    tk = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tk, chat_template=CHAT_TEMPLATE)
    cases = {
        "final_and_reasoning": Strategy(reasoning="final_and_reasoning"),
        "tool_call": Strategy(output="tool_call", json_schema=SCHEMA),
        "cot": Strategy(reasoning="chain_of_thought_turns", output="json"),
    }
    rendered = {}
    for name, strategy in cases.items():
        (line,), _ = export_lines([single()], strategy, "huggingface")
        assert is_conversational(line)
        rendered[name] = apply_chat_template(line, tokenizer)["text"]
    assert f"<think>\n{THINK}\n</think>\n{ANSWER}" in rendered["final_and_reasoning"]
    assert '"name": "task_response"' in rendered["tool_call"] and '"answer": 4' in rendered["tool_call"]
    assert strategies.FINAL_ANSWER_PROMPT in rendered["cot"] and COMPACT in rendered["cot"]
    (pref,), _ = export_lines([preference("because")], Strategy(reasoning="final_and_reasoning"), "huggingface")
    assert is_conversational(pref)
    assert "<think>\nbecause\n</think>" in apply_chat_template(pref, tokenizer)["chosen"]
