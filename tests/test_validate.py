"""Validation rules per provider, the OpenAI line schema, secret detection and dataset-level reports."""

from __future__ import annotations

import base64
import struct
import zlib

import orjson
import pytest

from ftlib import targets, validate
from ftlib.records import Attachment, Example, Message, ToolCall
from ftlib.secret_scan import find_secrets
from ftlib.targets.openai.schema import schema_errors
from ftlib.validate import check_basic, check_dataset, check_example, validate_dataset


def png(w: int = 8, h: int = 8, pad: int = 0) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    body = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    return body + b"\0" * pad


GIF = b"GIF89a\x08\x00\x08\x00\x00\x00\x00;"


def codes(issues) -> set[str]:
    return {i.code for i in issues}


def by_code(issues, code):
    found = [i for i in issues if i.code == code]
    assert found, f"no {code} in {[str(i) for i in issues]}"
    return found


def tool_example(**kw) -> Example:
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    msgs = kw.pop("messages", (
        Message("user", "Weather in Paris?"),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", "sunny", tool_call_id="call_1", name="get_weather"),
        Message("assistant", "It is sunny."),
    ))
    tools = ({"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},)
    return Example(messages=msgs, tools=kw.pop("tools", tools), **kw)


# -- check_basic -------------------------------------------------------------------------------------
def test_good_examples_pass_everywhere():
    ex = Example.from_pair("What is 2+2?", "4", system="You are terse.", source="data/a.jsonl:3")
    assert check_basic(ex) == []
    for provider in targets.names():
        assert [i for i in check_example(ex, provider) if i.severity == "error"] == [], provider


def test_basic_issue_carries_id_source_field_and_a_fix():
    ex = Example.from_turns([("user", "hi"), ("assistant", "hello"), ("user", "   ")], source="data/a.jsonl:7")
    issues = check_basic(ex)
    empty = by_code(issues, "missing_content")[0]
    assert empty.severity == "error"
    assert empty.example_id == ex.id and empty.source == "data/a.jsonl:7"
    assert empty.field == "messages[2].content"
    assert "remove the message" in empty.message
    assert by_code(issues, "last_message_not_assistant")[0].field == "messages[2]"


def test_basic_rejects_structurally_broken_examples():
    assert "missing_messages_list" in codes(check_basic(Example(messages=())))
    no_reply = Example.from_turns([("system", "s"), ("user", "question")])
    assert "example_missing_assistant_message" in codes(check_basic(no_reply))
    pref = Example(messages=(Message("user", "q"),), chosen=Message("assistant", "good"))
    assert by_code(check_basic(pref), "incomplete_preference")[0].field == "rejected"


def test_empty_assistant_with_tool_call_or_user_with_image_is_not_empty():
    assert "missing_content" not in codes(check_basic(tool_example()))
    img = Example.from_pair("", "a red square", attachments=[Attachment.from_bytes(png())])
    assert "missing_content" not in codes(check_basic(img))


# -- secrets -----------------------------------------------------------------------------------------
# Built at runtime so the fake values do not sit in the repository as literal keys.
SECRETS = {
    "openai_api_key": "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z" * 2,
    "anthropic_api_key": "sk-ant-api03-" + "x7Yz" * 20 + "AA",
    "aws_access_key_id": "AKIA" + "IOSFODNN7EXAMPL1",
    "private_key": "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----",
    "github_token": "ghp_" + "a1B2c3D4e5F6g7H8i9J0" * 2,
    "google_api_key": "AIza" + "SyD3x4mpl3K3yV4lu3Th4tIsF4k3xxxxxxx",
    "slack_token": "xoxb-" + "123456789012-123456789012-AbCdEfGhIjKlMnOp",
    "jwt": "eyJhbGciOiJIUzI1NiJ9." + "eyJzdWIiOiIxMjM0NTY3ODkwIn0." + "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "stripe_secret_key": "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc",
}


@pytest.mark.parametrize(("kind", "value"), sorted(SECRETS.items()))
def test_find_secrets_names_each_kind(kind, value):
    assert find_secrets(f"my config: {value} (do not share)") == [kind]


@pytest.mark.parametrize("text", [
    "Ask-me-anything sessions and task-1234 tickets are fine.",
    "-----BEGIN PUBLIC KEY----- is not a secret",
    "AKIA is a prefix, AKIASHORT is too short",
    "The sk-learn joke and skeleton keys",
    "eyJ alone is just base64 of '{\"'",
    "",
])
def test_find_secrets_negatives(text):
    assert find_secrets(text) == []


def test_secret_issues_name_the_kind_and_field_but_never_the_value():
    aws = SECRETS["aws_access_key_id"]
    pem = SECRETS["private_key"]
    ex = Example(messages=(
        Message("system", f"Use key {aws}"),
        Message("user", "Call the tool"),
        Message("assistant", "", tool_calls=(ToolCall("c1", "deploy", orjson.dumps({"key": pem}).decode()),),
                thinking=f"token {SECRETS['github_token']}"),
    ))
    issues = [i for i in check_basic(ex) if i.code == "likely_secret"]
    assert {i.field for i in issues} == {
        "messages[0].content", "messages[2].tool_calls[0].arguments", "messages[2].thinking"}
    assert all(i.severity == "error" for i in issues)
    report = orjson.dumps(validate_dataset([ex], "openai").to_dict()).decode()
    for value in (aws, pem, SECRETS["github_token"], "IOSFODNN7", "MIIEow"):
        assert value not in report
        assert all(value not in i.message for i in issues)
    assert "AWS access key id" in by_code(issues, "likely_secret")[0].message


# -- OpenAI ------------------------------------------------------------------------------------------
def test_openai_developer_role_and_weights():
    ex = Example(messages=(
        Message("developer", "rules"),
        Message("user", "hi", weight=1),
        Message("assistant", "hello", weight=2),
    ))
    issues = check_example(ex, "openai", "gpt-4o-mini")
    assert by_code(issues, "developer_role_not_allowed")[0].field == "messages[0].role"
    assert by_code(issues, "weight_not_on_assistant")[0].field == "messages[1].weight"
    assert by_code(issues, "invalid_weight")[0].field == "messages[2].weight"


def test_openai_image_rules():
    ok = Attachment.from_bytes(png())
    assert not codes(check_example(Example.from_pair("what?", "red", attachments=[ok]), "openai")) & {
        "unsupported_image_type", "image_too_large", "too_many_images"}
    gif = Attachment.from_bytes(GIF, "image/gif")
    big = Attachment.from_bytes(png(pad=10 * 1024 * 1024 + 1))
    ex = Example(messages=(
        Message("user", "look", attachments=(gif, big)),
        Message("assistant", "a picture", attachments=(ok,)),
    ))
    issues = check_example(ex, "openai")
    assert by_code(issues, "unsupported_image_type")[0].field == "messages[0].attachments[0]"
    assert by_code(issues, "image_too_large")[0].field == "messages[0].attachments[1]"
    assert by_code(issues, "image_in_assistant_message")[0].field == "messages[1].attachments[0]"
    many = Example.from_pair("look", "ok", attachments=[Attachment.from_bytes(png(8, i + 1)) for i in range(11)])
    assert "too_many_images" in codes(check_example(many, "openai"))
    ten = Example.from_pair("look", "ok", attachments=[Attachment.from_bytes(png(8, i + 1)) for i in range(10)])
    assert "too_many_images" not in codes(check_example(ten, "openai"))


def test_openai_dpo_is_text_only_and_needs_both_replies():
    img = Attachment.from_bytes(png())
    ex = Example.preference([Message("user", "which?", attachments=(img,))], "this one", "that one")
    assert by_code(check_example(ex, "openai"), "preference_not_text_only")[0].field == "messages[0].attachments[0]"
    assert "incomplete_preference" in codes(check_example(
        Example(messages=(Message("user", "q"),), rejected=Message("assistant", "bad")), "openai"))


def test_tool_links_arguments_and_definitions():
    assert [i for i in check_example(tool_example(), "openai") if i.severity == "error"] == []
    bad = tool_example(messages=(
        Message("user", "Weather?"),
        Message("assistant", "", tool_calls=(ToolCall("c1", "get_weather", "{city: Paris"),
                                             ToolCall("c2", "get_weather", "{}"))),
        Message("tool", "sunny", tool_call_id="c1"),
        Message("tool", "??", tool_call_id="nope"),
        Message("tool", "??"),
        Message("assistant", "Sunny."),
    ), tools=({"type": "function", "function": {"description": "no name"}},))
    issues = check_example(bad, "openai")
    assert by_code(issues, "invalid_tool_arguments")[0].field == "messages[1].tool_calls[0].arguments"
    assert by_code(issues, "tool_call_id_unknown")[0].field == "messages[3].tool_call_id"
    assert by_code(issues, "tool_message_missing_tool_call_id")[0].field == "messages[4].tool_call_id"
    unanswered = by_code(issues, "tool_call_unanswered")[0]
    assert unanswered.severity == "warning" and unanswered.field == "messages[1].tool_calls[1]"
    assert by_code(issues, "tool_missing_name")[0].field == "tools[0].function.name"


def test_a_final_tool_call_needs_no_answer():
    final = tool_example(messages=(
        Message("user", "Weather?"),
        Message("assistant", "", tool_calls=(ToolCall("c1", "get_weather", "{}"),)),
    ))
    assert "tool_call_unanswered" not in codes(check_example(final, "openai"))


def good_line() -> dict:
    return {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                         {"role": "assistant", "content": "a", "weight": 1}]}


def test_schema_accepts_a_good_line_and_reports_a_malformed_one():
    ex = Example.from_pair("q", "a", system="s")
    assert check_example(ex, "openai", line=good_line()) == []
    line = good_line()
    line["messages"][1]["content"] = 42
    line["messages"][2]["weight"] = 5
    schema = [i for i in check_example(ex, "openai", line=line) if i.code == "schema_violation"]
    assert {i.field for i in schema} == {"messages[1].content", "messages[2].weight"}
    assert any("0, 1" in i.message for i in schema)
    assert all("42" not in i.message for i in schema)  # schema messages never quote the data


def test_line_checks_catch_what_the_schema_misses():
    ex = Example.from_pair("q", "a")
    assert schema_errors({}, "sft") == []  # the schema accepts {}: code must not
    assert "empty_line" in codes(check_example(ex, "openai", line={}))
    assert "data_type" in codes(check_example(ex, "openai", line=["not", "an", "object"]))
    no_reply = {"messages": [{"role": "user", "content": "q"}]}
    assert "example_missing_assistant_message" in codes(check_example(ex, "openai", line=no_reply))
    audio = {"messages": [
        {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}},
                                     {"type": "file", "file": {"file_id": "f"}}]},
        {"role": "assistant", "content": "ok"}]}
    parts = by_code(check_example(ex, "openai", line=audio), "unsupported_content_part")
    assert {i.field for i in parts} == {"messages[0].content[0]", "messages[0].content[1]"}
    weird = {"messages": [{"role": "user", "content": "q", "colour": "red"}, {"role": "bot", "content": "a"}]}
    issues = check_example(ex, "openai", line=weird)
    assert by_code(issues, "message_unrecognized_key")[0].field == "messages[0].colour"
    assert by_code(issues, "unrecognized_role")[0].field == "messages[1].role"
    missing = {"messages": [{"content": "q"}, {"role": "assistant"}]}
    assert {i.field for i in by_code(check_example(ex, "openai", line=missing), "message_missing_key")} == {
        "messages[0].role", "messages[1].content"}


def test_dpo_line_needs_exactly_one_output_each():
    ex = Example.preference("q", "good", "bad")
    line = {"input": {"messages": [{"role": "user", "content": "q"}]},
            "preferred_output": [{"role": "assistant", "content": "good"}],
            "non_preferred_output": [{"role": "assistant", "content": "bad"}]}
    assert check_example(ex, "openai", line=line) == []
    line["non_preferred_output"] = []
    assert by_code(check_example(ex, "openai", line=line), "preference_output_count")[0].field == "non_preferred_output"


def test_openai_long_example_is_a_truncation_warning():
    ex = Example.from_pair("hello " * 66_000, "ok")
    issue = by_code(check_example(ex, "openai", "gpt-4o-mini-2024-07-18"), "example_too_long")[0]
    assert issue.severity == "warning" and "65,536" in issue.message


# -- Claude on Bedrock -------------------------------------------------------------------------------
def test_bedrock_order_and_text_only():
    ex = Example(messages=(
        Message("system", "s"), Message("assistant", "hi"), Message("user", "a"), Message("user", "b"),
        Message("assistant", "x\nHuman: y", attachments=(Attachment.from_bytes(png()),)),
    ))
    issues = check_example(ex, "anthropic")
    assert by_code(issues, "first_message_not_user")[0].field == "messages[1].role"
    assert by_code(issues, "roles_not_alternating")[0].field == "messages[3].role"
    assert by_code(issues, "attachment_not_supported")[0].severity == "error"
    assert by_code(issues, "reserved_keyword")[0].field == "messages[4].content"
    assert "too_few_messages" in codes(check_example(Example.from_turns([("system", "s"), ("assistant", "a")]),
                                                     "anthropic"))
    assert "tools_not_supported" in codes(check_example(tool_example(), "anthropic"))
    assert "preference_not_supported" in codes(check_example(Example.preference("q", "a", "b"), "anthropic"))


def test_bedrock_record_token_limit_is_an_error():
    ex = Example.from_pair("hello " * 30_000, "ok")  # ~30k o200k tokens x 1.25 > 32,000
    issue = by_code(check_example(ex, "anthropic"), "example_too_long")[0]
    assert issue.severity == "error" and "estimated" in issue.message


# -- Gemini on Vertex --------------------------------------------------------------------------------
def test_vertex_turn_order_and_function_pairing():
    starts_with_model = Example.from_turns([("assistant", "hi"), ("user", "q"), ("assistant", "a")])
    assert "first_message_not_user" in codes(check_example(starts_with_model, "gemini"))
    ends_with_user = Example.from_turns([("user", "q"), ("assistant", "a"), ("user", "more")])
    assert "last_message_not_model" in codes(check_example(ends_with_user, "gemini"))
    assert [i for i in check_example(tool_example(), "gemini") if i.severity == "error"] == []
    unpaired = tool_example(messages=(
        Message("user", "Weather?"),
        Message("assistant", "", tool_calls=(ToolCall("c1", "get_weather", "{}"),)),
        Message("user", "never mind"),
        Message("assistant", "ok"),
    ))
    assert by_code(check_example(unpaired, "gemini"), "tool_call_unanswered")[0].severity == "error"


def test_huggingface_is_lenient_but_still_blocks_secrets():
    ex = Example.from_turns([("assistant", "I start"), ("user", "q"), ("assistant", "a")])
    assert [i for i in check_example(ex, "huggingface") if i.severity == "error"] == []
    leak = Example.from_pair("my key is " + SECRETS["openai_api_key"], "ok")
    assert "likely_secret" in codes(check_example(leak, "huggingface"))


def test_unknown_provider_is_refused():
    with pytest.raises(ValueError, match="unknown target"):
        check_example(Example.from_pair("q", "a"), "cohere")


# -- datasets ----------------------------------------------------------------------------------------
def pairs(n: int, kind: str = "sft"):
    for i in range(n):
        yield Example.preference(f"q{i}", "a", "b") if kind == "preference" else Example.from_pair(f"q{i}", f"a{i}")


@pytest.mark.parametrize(("n", "code", "severity"), [
    (0, "empty_dataset", "error"), (9, "too_few_examples", "error"), (10, "few_examples", "warning"),
    (49, "few_examples", "warning"),
])
def test_openai_minimum_counts(n, code, severity):
    issue = by_code(check_dataset(pairs(n), "openai"), code)[0]
    assert issue.severity == severity and issue.example_id is None
    if code == "few_examples":
        assert "50-100 recommended" in issue.message


def test_openai_fifty_examples_need_no_count_warning():
    assert not codes(check_dataset(pairs(50), "openai")) & {"too_few_examples", "few_examples", "empty_dataset"}


def test_bedrock_and_vertex_split_limits():
    assert "too_few_examples" in codes(check_dataset(pairs(31), "anthropic"))
    assert "too_few_examples" not in codes(check_dataset(pairs(32), "anthropic"))
    assert "too_many_examples" in codes(check_dataset(pairs(1001), "anthropic", split="validation"))
    assert "too_many_examples" not in codes(check_dataset(pairs(1000), "anthropic", split="validation"))
    assert "too_many_examples" in codes(check_dataset(pairs(5001), "gemini", split="validation"))


def test_one_kind_per_file():
    mixed = [*pairs(20), *pairs(1, "preference")]
    issue = by_code(check_dataset(mixed, "openai"), "mixed_example_kinds")[0]
    assert "20 sft" in issue.message and "1 preference" in issue.message


def test_base_model_status():
    retired = by_code(check_dataset(pairs(60), "openai", "gpt-3.5-turbo-0125"), "base_model_retired")[0]
    assert retired.severity == "error" and "2026-10-23" in retired.message
    haiku = by_code(check_dataset(pairs(40), "anthropic", "anthropic.claude-3-haiku-20240307-v1:0:200k"),
                    "base_model_deprecated")[0]
    assert "2026-09-10" in haiku.message
    assert "unknown_base_model" in codes(check_dataset(pairs(60), "openai", "gpt-9"))
    assert "base_model_retired" not in codes(check_dataset(pairs(60), "gemini", "gemini-2.5-flash"))


def test_report_counts_are_complete_and_deterministic():
    def data():
        yield Example.from_pair("q", "a", source="f.jsonl:1")
        yield Example.from_turns([("user", "q")], source="f.jsonl:2")
        yield Example.from_pair("q", "", source="f.jsonl:3")

    gen = data()
    report = validate_dataset(gen, "openai", "gpt-4o-mini")
    assert next(gen, None) is None  # streamed through once
    d = report.to_dict()
    assert d["examples"] == 3 and d["kinds"] == {"sft": 3}
    assert d["errors"] == sum(1 for i in d["issues"] if i["severity"] == "error")
    assert d["warnings"] == sum(1 for i in d["issues"] if i["severity"] == "warning")
    assert sum(d["issues_by_code"].values()) == len(d["issues"])
    assert d["examples_with_errors"] == 2
    assert d["tokens"]["total"] > 0 and d["tokens"]["exact"] is True
    again = validate_dataset(data(), "openai", "gpt-4o-mini").to_dict()
    assert orjson.dumps(d, option=orjson.OPT_SORT_KEYS) == orjson.dumps(again, option=orjson.OPT_SORT_KEYS)
    assert validate.report_dict(report.issues, 3, max_issues=1)["issues_truncated"] == len(report.issues) - 1


def test_validate_dataset_checks_exported_lines_alongside():
    exs = [Example.from_pair("q", "a")] * 12
    lines = [good_line()] * 11 + [{"messages": [{"role": "user", "content": "q"}]}]
    report = validate_dataset(exs, "openai", "gpt-4o-mini", lines=lines)
    assert report.to_dict()["issues_by_code"].get("example_missing_assistant_message") == 1


def test_vertex_system_only_first_and_result_names_match_calls():
    late_system = Example.from_turns([("user", "q"), ("system", "late rules"), ("assistant", "a")])
    assert by_code(check_example(late_system, "gemini"), "system_not_leading")[0].field == "messages[1].role"
    wrong_name = tool_example(messages=(
        Message("user", "Weather?"),
        Message("assistant", "", tool_calls=(ToolCall("c1", "get_weather", "{}"),)),
        Message("tool", "sunny", tool_call_id="c1", name="get_time"),
        Message("assistant", "Sunny."),
    ))
    assert by_code(check_example(wrong_name, "gemini"), "tool_result_name_mismatch")[0].field == "messages[2].name"


def test_dpo_line_rejects_image_parts():
    ex = Example.preference("q", "good", "bad")
    line = {"input": {"messages": [{"role": "user", "content": [
                {"type": "text", "text": "q"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]},
            "preferred_output": [{"role": "assistant", "content": "good"}],
            "non_preferred_output": [{"role": "assistant", "content": "bad"}]}
    part = by_code(check_example(ex, "openai", line=line), "unsupported_content_part")[0]
    assert part.field == "input.messages[0].content[1]"


# -- the submit path guards itself (ftlib.upload_check) ----------------------------------------------
_AWS = "AKIA" + "Z3QJ5XK7PL2MN4RT"
_PAIR = {"messages": [{"role": "user", "content": "Question {n}?"}, {"role": "assistant", "content": "Answer {n}."}]}


def _line(n: int, **extra) -> str:
    obj = orjson.loads(orjson.dumps(_PAIR).decode().replace("{n}", str(n)))
    return orjson.dumps({**obj, **extra}).decode() + "\n"


@pytest.fixture
def openai_emu(monkeypatch: pytest.MonkeyPatch):
    from emulators.openai_server import OpenAIEmulator

    for var in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_API_VERSION"):
        monkeypatch.delenv(var, raising=False)
    with OpenAIEmulator(api_key="test-key") as emu:
        monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        yield emu


def _export(tmp_path, lines: list[str]):
    d = tmp_path / "export"
    d.mkdir(exist_ok=True)
    (d / "train.jsonl").write_text("".join(lines))
    return d


_SETTINGS = {"base_model": "gpt-4o-mini-2024-07-18", "hyperparameters": {"n_epochs": 1}, "max_retries": 0}


def _nothing_sent(emu, models) -> None:
    assert emu.files == {} and emu.jobs == {}
    assert not any(method == "POST" for method, _ in emu.requests)
    from ftlib.jobs.ledger import Ledger

    assert Ledger(models).records() == []  # not even an intent was recorded


def test_submit_refuses_a_secret_naming_file_and_line(openai_emu, tmp_path) -> None:
    from ftlib.finetune import plan_or_submit
    from ftlib.upload_check import UploadRefused

    lines = [_line(i) for i in range(12)]
    lines[7] = _line(7).replace("Answer 7.", f"Use {_AWS} for that.")
    export, models = _export(tmp_path, lines), tmp_path / "models"
    with pytest.raises(UploadRefused) as err:
        plan_or_submit(export, "openai", _SETTINGS, submit=True, wait=False, models_dir=models, accept_warnings=True)
    msg = str(err.value)
    assert f"{export / 'train.jsonl'}:8" in msg and "likely_secret" in msg and "messages[1].content" in msg
    assert "cannot be overridden" in msg and _AWS not in msg and "Z3QJ5XK7" not in msg
    _nothing_sent(openai_emu, models)


def test_a_secret_outside_the_modelled_fields_is_still_caught(openai_emu, tmp_path) -> None:
    """The raw bytes are scanned too: an unknown key the decoder ignores still carries no credential out."""
    from ftlib.finetune import plan_or_submit
    from ftlib.upload_check import UploadRefused

    lines = [_line(i) for i in range(12)]
    lines[3] = _line(3, debug={"env": f"OPENAI_KEY=sk-proj-{'Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z' * 2}"})
    export, models = _export(tmp_path, lines), tmp_path / "models"
    with pytest.raises(UploadRefused, match=r"train\.jsonl:4") as err:
        plan_or_submit(export, "openai", _SETTINGS, submit=True, wait=False, models_dir=models, accept_warnings=True)
    assert "Ab3dEf6h" not in str(err.value)
    _nothing_sent(openai_emu, models)


def test_warnings_refuse_unless_accepted(openai_emu, tmp_path) -> None:
    from ftlib.finetune import plan_or_submit
    from ftlib.upload_check import UploadRefused

    lines = [_line(i) for i in range(12)]
    lines[4] = _line(4, notes="reviewed")  # not part of an OpenAI line: a warning about that example
    export, models = _export(tmp_path, lines), tmp_path / "models"
    with pytest.raises(UploadRefused, match=r"1 warning\(s\).*train\.jsonl:5.*unrecognized_key.*--accept-warnings"):
        plan_or_submit(export, "openai", _SETTINGS, submit=True, wait=False, models_dir=models)
    _nothing_sent(openai_emu, models)
    done = plan_or_submit(export, "openai", {**_SETTINGS, "accept_warnings": True}, submit=True, wait=False,
                          models_dir=models)
    assert done["job"]["job_id"] and len(openai_emu.jobs) == 1


def test_cli_refusal_is_one_line_and_accept_warnings_never_covers_a_secret(openai_emu, tmp_path) -> None:
    import typer
    import yaml
    from typer.testing import CliRunner

    from ftlib.cli_jobs import register

    app = typer.Typer()
    register(app)
    lines = [_line(i) for i in range(12)]
    lines[2] = _line(2, notes="x")
    lines[9] = _line(9).replace("Question 9?", f"my key is {_AWS}")
    export = _export(tmp_path, lines)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"finetune": {"openai": _SETTINGS}}))
    args = ["finetune", str(export), "--provider", "openai", "--params", str(params), "--submit",
            "--models-dir", str(tmp_path / "models")]
    for extra in ([], ["--accept-warnings"]):
        res = CliRunner().invoke(app, args + extra)
        assert res.exit_code == 1, res.output
        assert "train.jsonl:10" in res.output and "likely_secret" in res.output and "Traceback" not in res.output
        assert _AWS not in res.output and "Z3QJ5XK7" not in res.output
    _nothing_sent(openai_emu, tmp_path / "models")


def test_the_validate_report_is_reused_only_for_the_same_bytes(openai_emu, tmp_path) -> None:
    import io

    from rich.console import Console

    from ftlib import pipeline
    from ftlib.finetune import plan_or_submit
    from ftlib.upload_check import UploadRefused

    export = _export(tmp_path, [_line(i) for i in range(12)])
    report = tmp_path / "validation.json"
    pipeline.validate_export(export, "openai", _SETTINGS["base_model"], report=report, workers=1)
    assert orjson.loads(report.read_bytes())["files"]["train.jsonl"]["sha256"]
    # changed after validation: a secret appended later is caught because the bytes no longer match the report
    with (export / "train.jsonl").open("a") as fh:
        fh.write(_line(99).replace("Answer 99.", f"key {_AWS}"))
    out = io.StringIO()
    with pytest.raises(UploadRefused, match=r"train\.jsonl:13"):
        plan_or_submit(export, "openai", _SETTINGS, submit=True, wait=False, models_dir=tmp_path / "m",
                       validation=report, console=Console(file=out))
    pipeline.validate_export(export, "openai", _SETTINGS["base_model"], report=report, workers=1)
    with pytest.raises(UploadRefused, match=r"train\.jsonl:13"):  # a report with errors is reused, still refuses
        plan_or_submit(export, "openai", _SETTINGS, submit=True, wait=False, models_dir=tmp_path / "m",
                       validation=report, console=Console(file=out))
    (export / "train.jsonl").write_text("".join(_line(i) for i in range(12)))
    pipeline.validate_export(export, "openai", _SETTINGS["base_model"], report=report, workers=1)
    out = io.StringIO()
    plan_or_submit(export, "openai", _SETTINGS, submit=True, wait=False, models_dir=tmp_path / "m",
                   validation=report, console=Console(file=out))
    assert "validate report reused: same sha256" in out.getvalue() and len(openai_emu.jobs) == 1


# -- attachments: local files, declared types, dimensions --------------------------------------------
_LOCAL = ["file:///etc/passwd", "/etc/passwd", "../../etc/shadow", "C:\\Users\\me\\id_rsa", "images/cat.png"]


def _with_image(att: Attachment) -> Example:
    return Example(messages=(Message("user", "What is this?", attachments=(att,)), Message("assistant", "A cat.")),
                   source="in.jsonl:3")


@pytest.mark.parametrize("uri", _LOCAL)
def test_local_paths_and_file_urls_are_refused_by_every_target_and_every_export(uri: str) -> None:
    from ftlib import formats

    ex = _with_image(Attachment.from_uri(uri, "image/png"))
    assert by_code(check_basic(ex), "local_attachment_path")[0].field == "messages[0].attachments[0].uri"
    for provider in targets.names():
        assert "local_attachment_path" in codes(check_example(ex, provider)), provider
        out = list(formats.encode_lines([ex], provider))
        assert not any(isinstance(item, tuple) for item in out), provider  # nothing written
        assert [i.code for i in out if not isinstance(i, tuple)][:1] == ["local_attachment_path"], provider
        assert all(uri not in str(i) for i in out if not isinstance(i, tuple))


def test_remote_and_inline_images_are_not_local() -> None:
    for att in (Attachment.from_uri("https://example.com/cat.png"), Attachment.from_uri("gs://bucket/cat.png"),
                Attachment.from_bytes(png())):
        assert "local_attachment_path" not in codes(check_basic(_with_image(att)))


def test_declared_type_is_checked_against_the_bytes() -> None:
    html = Attachment.from_uri("data:image/png;base64," + base64.b64encode(b"<html><body>hi</body></html>").decode())
    issue = by_code(check_basic(_with_image(html)), "attachment_type_mismatch")[0]
    assert issue.field == "messages[0].attachments[0].mime_type" and "not a recognised image/png" in issue.message
    gif_as_png = Attachment.from_bytes(GIF, "image/png")
    assert "bytes are image/gif" in by_code(check_basic(_with_image(gif_as_png)), "attachment_type_mismatch")[0].message
    assert "attachment_type_mismatch" not in codes(check_basic(_with_image(Attachment.from_bytes(png()))))
    jpg_alias = Attachment.from_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32, "image/jpg")
    assert "attachment_type_mismatch" not in codes(check_basic(_with_image(jpg_alias)))
    text = Attachment.from_bytes(b"notes", "text/plain")
    assert "attachment_type_mismatch" not in codes(check_basic(_with_image(text)))


def test_image_dimensions_against_each_targets_limits() -> None:
    from ftlib.limits import PILLOW_MAX_PIXELS

    huge = _with_image(Attachment.from_bytes(png(20000, 20000)))
    for provider in ("openai", "gemini", "huggingface"):
        issue = by_code(check_example(huge, provider), "image_dimensions_too_large")[0]
        assert "20,000 x 20,000 pixels" in issue.message and f"{PILLOW_MAX_PIXELS:,}" in issue.message
    fine = _with_image(Attachment.from_bytes(png(2048, 2048)))
    for provider in ("openai", "gemini", "huggingface"):
        assert "image_dimensions_too_large" not in codes(check_example(fine, provider))
    assert "attachment_not_supported" in codes(check_example(huge, "anthropic"))  # text only there anyway


def test_ingest_rejects_local_and_mislabelled_attachments_with_file_and_line(tmp_path) -> None:
    from ftlib import pipeline

    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}

    def image_line(url: str) -> dict:
        return {"messages": [{"role": "user", "content": [{"type": "text", "text": "what?"},
                                                          {"type": "image_url", "image_url": {"url": url}}]},
                             {"role": "assistant", "content": "a cat"}]}

    html = "data:image/png;base64," + base64.b64encode(b"<!doctype html><p>x</p>").decode()
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(orjson.dumps(o).decode() for o in (
        good, image_line("file:///etc/passwd"), image_line("../../etc/shadow"), image_line(html))) + "\n")
    result = pipeline.ingest([src], tmp_path / "ds.parquet", tmp_path / "report.json", workers=1)
    assert result.kept == 1
    rejects = {(i.source, i.code) for i in result.rejected}
    assert rejects == {(f"{src}:2", "local_attachment_path"), (f"{src}:3", "local_attachment_path"),
                       (f"{src}:4", "attachment_type_mismatch")}
    assert "/etc/passwd" not in (tmp_path / "report.json").read_text()


def test_cli_accept_warnings_submits_a_file_with_warnings(openai_emu, tmp_path) -> None:
    import typer
    import yaml
    from typer.testing import CliRunner

    from ftlib.cli_jobs import register

    app = typer.Typer()
    register(app)
    lines = [_line(i) for i in range(12)]
    lines[2] = _line(2, notes="x")
    export = _export(tmp_path, lines)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"finetune": {"openai": _SETTINGS}}))
    args = ["finetune", str(export), "--provider", "openai", "--params", str(params), "--submit", "--no-wait",
            "--models-dir", str(tmp_path / "models")]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 1 and "train.jsonl:3" in refused.output and "--accept-warnings" in refused.output
    assert openai_emu.jobs == {}
    done = CliRunner().invoke(app, [*args, "--accept-warnings"])
    assert done.exit_code == 0, done.output
    assert len(openai_emu.jobs) == 1
