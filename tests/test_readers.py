"""Input readers: JSONL with per-line detection, CSV pairs, file expansion; bad lines become Issues with file:line."""

from __future__ import annotations

import orjson
import pytest

from ftlib.formats import FORMATS
from ftlib.issues import Issue
from ftlib.readers import iter_input_files, read_file
from ftlib.records import Example

PAIR = Example.from_pair("What is 2+2?", "4", system="Math tutor.")


def write_lines(path, lines):
    path.write_bytes(b"".join((x if isinstance(x, bytes) else orjson.dumps(x)) + b"\n" for x in lines))
    return path


def split(results):
    exs = [r for r in results if isinstance(r, Example)]
    issues = [r for r in results if isinstance(r, Issue)]
    return exs, issues


def test_jsonl_mixes_formats_per_line_and_keeps_line_numbers(tmp_path):
    lines = [FORMATS[name].encode(PAIR) for name in ("openai-chat", "bedrock-claude", "vertex-sft", "hf-messages")]
    pref = Example.preference("Sky?", "Blue.", "Green.")
    path = write_lines(tmp_path / "mixed.jsonl", [lines[0], b"", lines[1], b"   ", lines[2], lines[3],
                                                  FORMATS["trl-preference"].encode(pref),
                                                  {**lines[0], "group": "g1", "metadata": {"k": 1}}])
    exs, issues = split(read_file(path))
    assert issues == []
    assert [e.source for e in exs] == [f"{path}:{n}" for n in (1, 3, 5, 6, 7, 8)]
    assert {e.id for e in exs[:4]} == {PAIR.id} and exs[5].id == PAIR.id
    assert exs[4].kind == "preference" and exs[4].id == pref.id
    assert (exs[5].group, exs[5].metadata) == ("g1", {"k": 1})


def test_bad_lines_become_issues_and_reading_goes_on(tmp_path):
    good = FORMATS["openai-chat"].encode(PAIR)
    path = write_lines(tmp_path / "bad.jsonl", [
        good,
        b'{"messages": [}',
        b"[1, 2]",
        {"text": "plain pretraining text"},
        {"messages": [{"role": "user", "content": "q"}, {"role": "robot", "content": "a"}]},
        b'{"messages": "\xff\xfe"}',
        good,
    ])
    results = list(read_file(path))
    exs, issues = split(results)
    assert [e.source for e in exs] == [f"{path}:1", f"{path}:7"]
    by_line = {i.source.rsplit(":", 1)[1]: i for i in issues}
    assert set(by_line) == {"2", "3", "4", "5", "6"}
    assert all(i.severity == "error" and i.source.startswith(str(path)) for i in issues)
    assert by_line["2"].code == "bad_json" and "one complete JSON object per line" in by_line["2"].message
    assert by_line["3"].code == "bad_record" and "JSON object" in by_line["3"].message
    unknown = by_line["4"]
    assert unknown.code == "unknown_format" and all(name in unknown.message for name in FORMATS)
    assert by_line["5"].field == "messages[1].role" and "use one of" in by_line["5"].message
    assert by_line["6"].code == "bad_json"  # invalid UTF-8


def test_forced_format_and_unknown_format_name(tmp_path):
    path = write_lines(tmp_path / "f.jsonl", [FORMATS["openai-chat"].encode(
        Example.from_turns([("user", "q"), ("assistant", "a")], system="s"))])
    (ex,) = read_file(path, fmt="hf-messages")
    assert isinstance(ex, Example)
    (issue,) = read_file(path, fmt="vertex-sft")
    assert isinstance(issue, Issue) and issue.field == "contents" and issue.source == f"{path}:1"
    with pytest.raises(KeyError, match="known"):
        read_file(path, fmt="no-such-format")


def test_unsupported_content_under_a_forced_format_is_an_issue(tmp_path):
    line = {"system": "s", "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}
    path = write_lines(tmp_path / "claude.jsonl", [line])
    (issue,) = read_file(path)
    assert issue.field == "messages[0].content" and "bedrock-claude" in issue.message


def test_utf8_bom_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + orjson.dumps(FORMATS["openai-chat"].encode(PAIR)) + b"\r\n\r\n")
    (ex,) = read_file(path)
    assert ex.id == PAIR.id


def test_csv_aliases_system_group_metadata_and_multiline_cells(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text(
        "Question,Answer,system,group,origin\n"
        'What is 2+2?,4,Math tutor.,g1,faq\n'
        '"Line one\nline two","multi\nline",,,\n'
        "\n"
        "q3,a3,,g2,\n",
        encoding="utf-8",
    )
    exs, issues = split(read_file(path))
    assert issues == []
    assert [e.source for e in exs] == [f"{path}:2", f"{path}:3", f"{path}:7"]  # record 2 spans lines 3-5
    assert exs[0].id == PAIR.id and exs[0].group == "g1" and exs[0].metadata == {"origin": "faq"}
    assert [m.role for m in exs[1].messages] == ["user", "assistant"]
    assert exs[1].messages[0].content == "Line one\nline two" and exs[1].group is None and exs[1].metadata == {}
    assert exs[2].group == "g2"


@pytest.mark.parametrize(("prompt", "completion"), [("prompt", "completion"), ("user", "assistant"),
                                                    ("input", "output"), ("question", "answer")])
def test_csv_header_aliases(tmp_path, prompt, completion):
    path = tmp_path / "a.csv"
    path.write_text(f"{completion},{prompt}\nthe answer,the question\n", encoding="utf-8")
    (ex,) = read_file(path)
    assert [(m.role, m.content) for m in ex.messages] == [("user", "the question"), ("assistant", "the answer")]


def test_csv_unknown_header_is_one_issue(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("text,label\na,b\nc,d\n", encoding="utf-8")
    (issue,) = read_file(path)
    assert issue.code == "bad_csv_header" and issue.source == f"{path}:1"
    assert "text, label" in issue.message and "prompt" in issue.message and "completion" in issue.message


def test_csv_ragged_row_is_reported_with_its_line(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("prompt,completion\nq1,a1\nq2,a2,extra\nq3,a3\n", encoding="utf-8")
    results = list(read_file(path))
    exs, issues = split(results)
    assert [e.source for e in exs] == [f"{path}:2", f"{path}:4"]
    assert [(i.code, i.source) for i in issues] == [("bad_csv", f"{path}:3")]


def test_iter_input_files_expands_sorts_dedupes_and_skips_hidden(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / ".cache").mkdir()
    for rel in ("b/2.jsonl", "a/deep/1.CSV", "a/z.jsonl", "a/notes.txt", "a/.hidden.jsonl", ".cache/x.jsonl",
                "top.jsonl"):
        (tmp_path / rel).write_text("")
    files = iter_input_files([tmp_path / "b", tmp_path, tmp_path / "top.jsonl"])
    rel = [f.relative_to(tmp_path).as_posix() for f in files]
    assert rel == ["a/deep/1.CSV", "a/z.jsonl", "b/2.jsonl", "top.jsonl"]
    with pytest.raises(FileNotFoundError, match=r"missing\.jsonl"):
        iter_input_files([tmp_path / "missing.jsonl"])
