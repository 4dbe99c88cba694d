"""Input readers: every file kind (JSON Lines plain/gzip/zstd, JSON arrays, CSV, parquet incl. Hugging Face files)
holding every shape, per-record detection, file expansion; bad records and unreadable files become Issues with
file:line; the ingest report counts formats per file and lists what it did not read."""

from __future__ import annotations

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ftlib.errors import StageError
from ftlib.formats import FORMATS
from ftlib.issues import Issue
from ftlib.readers import chunks, decode_chunk, iter_input_files, read, read_file, scan
from ftlib.records import Attachment, Example

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


# -- containers: every file kind holds every shape, with one id per conversation ----------------------

CHAT = Example.from_turns([("user", "Capital of France?"), ("assistant", "Paris."), ("user", "And Chile?"),
                           ("assistant", "Santiago.")], system="Be brief.")
SHAPES = {  # the same conversation in five shapes (target formats and input-only ones)
    "openai-chat": FORMATS["openai-chat"].encode(CHAT),
    "sharegpt": FORMATS["sharegpt"].encode(CHAT),
    "chat-conversations": FORMATS["chat-conversations"].encode(CHAT),
    "alpaca": FORMATS["alpaca"].encode(CHAT),
    "prompt-completion": FORMATS["prompt-completion"].encode(CHAT),
}
ROWS = list(SHAPES.values())


def _jsonl(rows) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)


def _write(path, data: bytes, compression: str | None = None):
    if compression is None:
        path.write_bytes(data)
    else:
        with pa.output_stream(str(path), compression=compression) as f:
            f.write(data)
    return path


def _formats_and_ids(path, **kw):
    got = list(read(path, **kw))
    assert all(isinstance(item, Example) for _, item in got), [i for _, i in got if isinstance(i, Issue)]
    return [name for name, _ in got], [item.id for _, item in got], [item.source for _, item in got]


@pytest.mark.parametrize(("name", "compression"), [("c.jsonl", None), ("c.jsonl.gz", "gzip"), ("c.jsonl.zst", "zstd"),
                                                   ("c.ndjson", None), ("c.json.gz", "gzip")])
def test_json_lines_plain_and_compressed(tmp_path, name, compression):
    path = _write(tmp_path / name, _jsonl(ROWS), compression)
    names, ids, sources = _formats_and_ids(path)
    assert names == list(SHAPES) and set(ids) == {CHAT.id}
    assert sources == [f"{path}:{n}" for n in range(1, 6)]


@pytest.mark.parametrize("compression", [None, "gzip", "zstd"])
def test_json_array_is_read_with_the_line_each_record_starts_on(tmp_path, compression):
    text = b"[\n" + b",\n".join(orjson.dumps(r, option=orjson.OPT_INDENT_2) for r in ROWS) + b"\n]\n"
    suffix = {None: "", "gzip": ".gz", "zstd": ".zst"}[compression]
    path = _write(tmp_path / f"chats.json{suffix}", text, compression)
    names, ids, sources = _formats_and_ids(path)
    assert names == list(SHAPES) and set(ids) == {CHAT.id}
    starts = [i + 1 for i, line in enumerate(text.splitlines()) if line.startswith(b"{")]
    assert sources == [f"{path}:{n}" for n in starts]


def test_json_documents_single_concatenated_and_hf_to_json(tmp_path):
    one = tmp_path / "one.json"
    one.write_bytes(orjson.dumps(SHAPES["sharegpt"], option=orjson.OPT_INDENT_2))
    assert _formats_and_ids(one)[1:] == ([CHAT.id], [f"{one}:1"])
    two = tmp_path / "two.json"
    two.write_bytes(orjson.dumps(ROWS[0], option=orjson.OPT_INDENT_2) + b"\n" + orjson.dumps(ROWS[1]))
    assert _formats_and_ids(two)[0] == ["openai-chat", "sharegpt"]
    lines_named_json = tmp_path / "lines.json"  # what `datasets.Dataset.to_json` writes by default (streamed)
    lines_named_json.write_bytes(b"\xef\xbb\xbf\n" + _jsonl(ROWS))
    assert _formats_and_ids(lines_named_json)[2] == [f"{lines_named_json}:{n}" for n in range(2, 7)]
    array_named_jsonl = tmp_path / "array.jsonl"  # an array in a .jsonl file is still read, not garbage
    array_named_jsonl.write_bytes(orjson.dumps(ROWS))
    assert len(_formats_and_ids(array_named_jsonl)[1]) == 5


def test_broken_json_array_reports_where_and_how_much_was_read(tmp_path):
    path = tmp_path / "broken.json"
    path.write_bytes(b"[\n" + orjson.dumps(ROWS[0]) + b",\n" + orjson.dumps(ROWS[1]) + b",\n{\"messages\": [}\n]")
    got = list(read_file(path))
    assert [type(x) for x in got] == [Example, Example, Issue]
    assert got[2].code == "bad_json" and got[2].source == f"{path}:4" and "2 record(s) before it" in got[2].message
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes('[{"prompt": "caf\xe9", "completion": "x"}]'.encode("latin-1"))
    (issue,) = read_file(latin1)
    assert issue.code == "bad_encoding" and "UTF-8" in issue.message


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_truncated_compressed_file_keeps_what_was_read_and_says_so(tmp_path, compression):
    rows = [FORMATS["openai-chat"].encode(Example.from_pair(f"q{i} " + "x" * 50, f"a{i}")) for i in range(20_000)]
    full = _write(tmp_path / f"full.jsonl.{compression[:2]}", _jsonl(rows), compression)
    cut = tmp_path / f"cut.jsonl.{compression[:2]}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    got = list(read_file(cut))
    good = [x for x in got if isinstance(x, Example)]
    assert 0 < len(good) < 20_000 and all(isinstance(x, Example) for x in got[:-1])
    last = got[-1]
    assert isinstance(last, Issue) and last.code == "unreadable_file" and "truncated" in last.message
    assert last.source.startswith(f"{cut}:")


def test_named_files_are_sniffed_whatever_their_suffix(tmp_path):
    gz = _write(tmp_path / "export.txt", _jsonl(ROWS[:2]), "gzip")
    assert _formats_and_ids(gz)[0] == ["openai-chat", "sharegpt"]
    pq.write_table(pa.Table.from_pylist([SHAPES["alpaca"]]), tmp_path / "data.bin")
    assert _formats_and_ids(tmp_path / "data.bin")[0] == ["alpaca"]
    csv_gz = _write(tmp_path / "pairs.csv.gz", b"question,answer\nWhat is 2+2?,4\n", "gzip")
    (ex,) = read_file(csv_gz)
    assert ex.id == Example.from_pair("What is 2+2?", "4").id and ex.source == f"{csv_gz}:2"


def test_parquet_written_by_pyarrow_with_mixed_shapes(tmp_path):
    """Arrow fills the fields a row lacks with nulls; nulls are absent keys, so each row still detects."""
    path = tmp_path / "mixed.parquet"
    pq.write_table(pa.Table.from_struct_array(pa.array(ROWS)), path, row_group_size=2)  # union of the keys
    names, ids, sources = _formats_and_ids(path)
    assert names == list(SHAPES) and set(ids) == {CHAT.id}
    assert sources == [f"{path}:{n}" for n in range(1, 6)]


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_parquet_as_hugging_face_datasets_saves_it(tmp_path, shape):
    datasets = pytest.importorskip("datasets")
    other = Example.from_pair("Hi", "Hello!", system="Be kind.")
    rows = [SHAPES[shape], FORMATS[shape].encode(other)]
    path = tmp_path / f"{shape}.parquet"
    datasets.Dataset.from_list(rows).to_parquet(str(path))
    names, ids, _ = _formats_and_ids(path)
    assert names == [shape, shape]
    assert ids == [CHAT.id, other.id]


def test_ftlib_dataset_parquet_is_read_exactly(tmp_path):
    from ftlib.dataset import Dataset

    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d4944415478da63f8cfc0f01f00050001ffa65f5a9b0000000049454e44ae426082")
    exs = [CHAT, Example.from_pair("What is this?", "A pixel.", attachments=[Attachment.from_bytes(png)]),
           Example.preference("Say hi", "Hi!", "Go away.")]
    Dataset(exs).to_parquet(tmp_path / "ds.parquet")
    got = list(read(tmp_path / "ds.parquet"))
    assert [n for n, _ in got] == ["ftlib-dataset"] * 3
    assert [x.id for _, x in got] == [e.id for e in exs]
    assert got[1][1].messages[0].attachments[0].data == png and got[2][1].source == f"{tmp_path / 'ds.parquet'}:3"


def test_unreadable_files_are_named(tmp_path):
    fake = tmp_path / "fake.parquet"
    fake.write_bytes(b"PAR1 this is not parquet")
    (issue,) = read_file(fake)
    assert issue.code == "unreadable_file" and issue.source == str(fake) and "parquet" in issue.message
    utf16 = tmp_path / "chats.jsonl"  # e.g. saved as "Unicode" by an editor
    utf16.write_bytes('{"prompt": "q", "completion": "a"}\n'.encode("utf-16"))
    (issue,) = read_file(utf16)
    assert issue.code == "unreadable_file" and "UTF-16 text, not UTF-8" in issue.message
    sheet = tmp_path / "pairs.csv"
    sheet.write_bytes(b"PK\x03\x04" + bytes(60))  # an .xlsx saved under a .csv name
    (issue,) = read_file(sheet)
    assert issue.code == "unreadable_file" and "spreadsheet" in issue.message and issue.source == f"{sheet}:1"


def test_chunks_in_any_size_decode_like_one_pass(tmp_path):
    path = _write(tmp_path / "c.jsonl.gz", _jsonl(ROWS * 3) + b"{bad\n", "gzip")
    whole = [(n, getattr(x, "id", x)) for n, x in read(path)]
    parts = list(chunks(path, size=2))
    assert len(parts) > 5
    assert [(n, getattr(x, "id", x)) for c in parts for n, x in decode_chunk(c)] == whole


def test_scan_lists_every_file_it_does_not_read(tmp_path):
    for rel in ("a.jsonl.gz", "b.json", "c.parquet", "d.csv.zst", "e.ndjson", "notes.txt", "README.md",
                "x.parquet.gz", ".DS_Store", ".cache/y.jsonl", "sub/f.JSONL"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    inputs = scan([tmp_path])
    assert [f.relative_to(tmp_path).as_posix() for f in inputs.files] == [
        "a.jsonl.gz", "b.json", "c.parquet", "d.csv.zst", "e.ndjson", "sub/f.JSONL"]
    skipped = {k.removeprefix(tmp_path.as_posix() + "/"): v for k, v in inputs.skipped.items()}
    assert set(skipped) == {"notes.txt", "README.md", "x.parquet.gz", ".DS_Store", ".cache/"}
    assert "not an input file type" in skipped["notes.txt"] and ".jsonl" in skipped["notes.txt"]
    assert "hidden" in skipped[".cache/"]
    assert scan([tmp_path / "notes.txt"]).files == [tmp_path / "notes.txt"]  # named: always read


# -- the ingest report: per file, what each record was read as; nothing skipped silently ---------------

def test_ingest_report_counts_formats_per_file_and_names_what_it_could_not_read(tmp_path):
    import json

    from ftlib import pipeline

    data = tmp_path / "data"
    data.mkdir()
    _write(data / "chats.jsonl.gz", _jsonl([*ROWS, {"text": "not a chat"}]), "gzip")
    (data / "kiln.json").write_bytes(orjson.dumps([SHAPES["chat-conversations"],
                                                   FORMATS["sharegpt"].encode(Example.from_pair("Hi", "Hello"))]))
    (data / "broken.parquet").write_bytes(b"PAR1 garbage")
    (data / "notes.md").write_text("# not data\n")
    (data / "hf").mkdir()
    many = [FORMATS["sharegpt"].encode(Example.from_pair(f"q{i}", f"a{i}")) for i in range(5000)]
    pq.write_table(pa.Table.from_pylist(many), data / "hf" / "train.parquet")  # several chunks: workers really run
    reports = {}
    for workers in (1, 2):
        out, rep = tmp_path / f"ds{workers}.parquet", tmp_path / f"ingest{workers}.json"
        pipeline.ingest([data], out, rep, workers=workers)
        reports[workers] = (out.read_bytes(), rep.read_bytes())
    assert reports[1] == reports[2]  # the worker count never changes the bytes
    report = json.loads(reports[1][1])
    files = report["files"]
    assert files[f"{data.as_posix()}/chats.jsonl.gz"]["formats"] == {name: 1 for name in SHAPES}
    assert files[f"{data.as_posix()}/chats.jsonl.gz"]["rejected"] == 1
    assert files[f"{data.as_posix()}/kiln.json"]["formats"] == {"chat-conversations": 1, "sharegpt": 1}
    assert files[f"{data.as_posix()}/broken.parquet"] == {"duplicates": 0, "formats": {}, "kept": 0, "rejected": 0,
                                                         "unreadable": 1}
    assert list(report["skipped_files"]) == [f"{data.as_posix()}/notes.md"]
    assert files[f"{data.as_posix()}/hf/train.parquet"] == {"duplicates": 0, "formats": {"sharegpt": 5000},
                                                           "kept": 5000, "rejected": 0}
    assert (report["read"], report["kept"], report["duplicates"]) == (5008, 5002, 5)
    assert {r["code"] for r in report["rejects"]} == {"unknown_format", "unreadable_file"}
    with pytest.raises(StageError, match="strict"):
        pipeline.ingest([data], tmp_path / "strict.parquet", tmp_path / "strict.json", strict=True)


def test_kiln_vertex_line_without_a_system_prompt_is_still_rejected_with_the_reason(tmp_path):
    """Kiln's Vertex generator moves the first message into systemInstruction; without a system prompt that is the
    user's question, and the chat starts with the model. Ingest rejects it, saying why (an ambiguous line is not
    guessed at)."""
    import json

    from ftlib import pipeline

    line = {"systemInstruction": {"role": "system", "parts": [{"text": "What is 2+2?"}]},
            "contents": [{"role": "model", "parts": [{"text": "4"}]}]}
    path = write_lines(tmp_path / "kiln_vertex.jsonl", [line])
    pipeline.ingest([path], tmp_path / "ds.parquet", tmp_path / "r.json")
    report = json.loads((tmp_path / "r.json").read_text())
    (reject,) = report["rejects"]
    assert report["kept"] == 0 and reject["code"] == "first_message_not_user" and reject["source"] == f"{path}:1"
