"""Hostile and broken input: every bad input is one clear line (file, line, field, fix), never a traceback, and
nothing good is lost or changed silently. Each case of issue 11 has a test; the CLI runs in-process (ftlib.cli.main,
the same error mapping as the installed command)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ftlib import cli, pipeline, readers

GOOD = {"messages": [{"role": "user", "content": "Question {n}?"}, {"role": "assistant", "content": "Answer {n}."}]}


@pytest.fixture(autouse=True)
def _one_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTLIB_WORKERS", "1")


def good(n: int, **extra) -> dict:
    return {**json.loads(json.dumps(GOOD).replace("{n}", str(n))), **extra}


def write_jsonl(path: Path, objs: list) -> Path:
    path.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs))  # 300 deep: json
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """ftlib's entry point in-process: exit code, stdout, stderr."""
    try:
        cli.main(argv)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out = capsys.readouterr()
    return code, out.out, out.err


def one_clear_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def ingest(tmp_path: Path, *inputs: Path) -> tuple[pipeline.IngestResult, dict]:
    report = tmp_path / "reports" / "ingest.json"
    result = pipeline.ingest(list(inputs), tmp_path / "build" / "dataset.parquet", report)
    return result, orjson.loads(report.read_bytes())


def _nested(depth: int) -> dict:
    obj: dict = {"leaf": 1}
    for _ in range(depth):
        obj = {"m": obj}
    return obj


# -- nesting, duplicate keys, big numbers --------------------------------------------------------------
@pytest.mark.parametrize("where", ["metadata", "tools"])
def test_a_deeply_nested_line_is_one_reject_and_every_good_line_is_kept(tmp_path: Path, where: str,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    lines = [good(i) for i in range(500)]
    if where == "metadata":
        lines[250] = good(250, metadata=_nested(300))
    else:
        lines[250] = good(250, tools=[{"type": "function", "function": {"name": "f", "parameters": _nested(300)}}])
    src = write_jsonl(tmp_path / "in.jsonl", lines)
    result, report = ingest(tmp_path, src)
    assert result.kept == 499 and report["rejected"] == 1
    [reject] = report["rejects"]
    assert reject["source"] == f"{src}:251" and reject["field"].startswith(where)
    assert "nested" in reject["message"]
    code, _, err = run(["inspect", str(src)], capsys)
    assert code == 0 and "Traceback" not in err


def test_duplicate_keys_are_rejected_not_silently_resolved(tmp_path: Path) -> None:
    dup_top = '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], ' \
              '"messages": [{"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}'
    dup_inner = '{"messages": [{"role": "user", "content": "keep?", "content": "or this?"}, ' \
                '{"role": "assistant", "content": "x"}]}'
    escaped = good(3, metadata={"note": 'he said "a": 1 and "a": 2'})  # quotes inside strings are not keys
    src = write_jsonl(tmp_path / "in.jsonl", [good(0), dup_top, dup_inner, escaped])
    result, report = ingest(tmp_path, src)
    assert result.kept == 2
    rejects = {r["source"]: r for r in report["rejects"]}
    assert set(rejects) == {f"{src}:2", f"{src}:3"}
    assert all(r["code"] == "duplicate_key" for r in rejects.values())
    assert rejects[f"{src}:3"]["field"] == "messages[0].content"


def test_big_integers_are_not_turned_into_floats(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [
        '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], '
        '"metadata": {"ticket": 123456789012345678901234567890}}',
        good(1, metadata={"ticket": 18446744073709551615, "ratio": 0.5}),  # fits in 64 bits: kept exactly
    ])
    result, report = ingest(tmp_path, src)
    assert result.kept == 1
    [reject] = report["rejects"]
    assert (reject["source"], reject["field"], reject["code"]) == (f"{src}:1", "metadata.ticket", "number_too_big")
    table = pq.read_table(tmp_path / "build" / "dataset.parquet")
    assert json.loads(table.column("metadata")[0].as_py())["ticket"] == 18446744073709551615


# -- CSV --------------------------------------------------------------------------------------------
def _csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def test_a_latin1_byte_loses_one_row_not_the_rest_and_line_numbers_stay_true(tmp_path: Path) -> None:
    rows = [["prompt", "completion"]] + [[f"q{i}", f"a{i}"] for i in range(2, 10_001)]
    path = tmp_path / "pairs.csv"
    data = _csv(path, rows).read_bytes().replace(b"q5003,", "q5003 café,".encode("latin-1"))
    path.write_bytes(data)
    result, report = ingest(tmp_path, path)
    assert result.read == 9_999 and result.kept == 9_998
    [reject] = report["rejects"]
    assert reject["source"] == f"{path}:5003" and "UTF-8" in reject["message"]
    table = pq.read_table(tmp_path / "build" / "dataset.parquet", columns=["source"])
    sources = table.column("source").to_pylist()
    assert sources[-1] == f"{path}:10000" and f"{path}:5004" in sources


def test_a_csv_without_header_is_one_clear_issue_counting_every_unread_row(tmp_path: Path) -> None:
    secret_row = ["How do I rotate AKIA" + "Z3QJ5XK7PL2MN4RT?", "Use the console."]
    path = _csv(tmp_path / "pairs.csv", [secret_row] + [[f"q{i}", f"a{i}"] for i in range(40)])
    result, report = ingest(tmp_path, path)
    assert result.kept == 0
    [reject] = report["rejects"]
    assert reject["code"] == "bad_csv_header" and reject["source"] == f"{path}:1"
    assert "41 record(s)" in reject["message"] and "prompt,completion" in reject["message"]
    assert "Z3QJ5XK7" not in json.dumps(report)


# -- files and folders --------------------------------------------------------------------------------
def test_compressed_and_parquet_inputs_are_read_not_rejected_line_by_line(tmp_path: Path) -> None:
    import gzip

    gz = tmp_path / "chats.jsonl.gz"
    gz.write_bytes(gzip.compress(b"".join(orjson.dumps(good(i)) + b"\n" for i in range(20))))
    result, report = ingest(tmp_path, gz)
    assert (result.kept, report["rejected"]) == (20, 0)


def test_unsupported_files_and_unreadable_folders_are_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    (data / "locked").mkdir(parents=True)
    write_jsonl(data / "a.jsonl", [good(1)])
    write_jsonl(data / "locked" / "b.jsonl", [good(2)])
    (data / "notes.txt").write_text("not examples")
    real_scandir = os.scandir

    def scandir(path=".") -> object:  # root can read any folder: simulate a permission problem
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = readers.scan([data])
    assert [f.name for f in found.files] == ["a.jsonl"]
    assert "not an input file type" in found.skipped[(data / "notes.txt").as_posix()]
    locked = [v for k, v in found.skipped.items() if "locked" in k]
    assert locked and "Permission denied" in locked[0]


def test_out_or_report_onto_an_input_is_refused_before_anything_is_written(tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    src = write_jsonl(data / "a.jsonl", [good(i) for i in range(3)])
    before = src.read_bytes()
    for extra in (["--out", str(src)], ["--report", str(src)], ["--out", str(data / "dataset.parquet")]):
        code, _, err = run(["ingest", str(data), *extra], capsys)
        line = one_clear_line(err)
        assert code == 2 and "input" in line, line
        assert src.read_bytes() == before
    assert sorted(p.name for p in data.iterdir()) == ["a.jsonl"]


def test_missing_and_empty_input_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ["--out", str(tmp_path / "ds.parquet"), "--report", str(tmp_path / "r.json")]
    code, _, err = run(["ingest", str(tmp_path / "missing"), *out], capsys)
    assert code == 2 and "not found" in one_clear_line(err)
    (tmp_path / "empty").mkdir()
    code, _, err = run(["ingest", str(tmp_path / "empty"), *out], capsys)
    assert code == 2 and "no input files" in one_clear_line(err)
    assert not (tmp_path / "ds.parquet").exists()


# -- parquet that is corrupt or not ftlib's -------------------------------------------------------------
def _dataset(tmp_path: Path) -> Path:
    src = write_jsonl(tmp_path / "in.jsonl", [good(i, group=f"g{i % 5}") for i in range(40)])
    pipeline.ingest([src], tmp_path / "dataset.parquet", None)
    return tmp_path / "dataset.parquet"


@pytest.mark.parametrize("command", ["split", "inspect"])
def test_corrupt_parquet_is_one_line(tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    ds = _dataset(tmp_path)
    ds.write_bytes(ds.read_bytes()[: len(ds.read_bytes()) // 2])
    argv = ["split", str(ds), "--out", str(tmp_path / "splits")] if command == "split" else ["inspect", str(ds)]
    code, _, err = run(argv, capsys)
    line = one_clear_line(err)
    assert code in (1, 2) and str(ds) in line and "parquet" in line


def test_foreign_parquet_is_one_line_for_split_and_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"text": ["a", "b"], "label": [1, 0]}), foreign)
    code, _, err = run(["split", str(foreign), "--out", str(tmp_path / "splits")], capsys)
    line = one_clear_line(err)
    assert code in (1, 2) and "foreign.parquet" in line and "ftlib ingest" in line
    splits = tmp_path / "splits2"
    splits.mkdir()
    pq.write_table(pa.table({"text": ["a", "b"]}), splits / "train.parquet")
    code, _, err = run(["export", str(splits), "--provider", "openai", "--out", str(tmp_path / "ex"),
                        "--report", str(tmp_path / "ex.json")], capsys)
    line = one_clear_line(err)
    assert code in (1, 2) and "train.parquet" in line


def test_export_of_a_missing_or_empty_splits_folder_keeps_the_previous_export(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = _dataset(tmp_path)
    pipeline.split(ds, tmp_path / "splits", 1, {"train": 0.8, "validation": 0.2})
    out = tmp_path / "export"
    pipeline.export(tmp_path / "splits", "openai", out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (tmp_path / "empty").mkdir()
    for splits in (tmp_path / "missing", tmp_path / "empty"):
        code, _, err = run(["export", str(splits), "--provider", "openai", "--out", str(out),
                            "--report", str(tmp_path / "r.json")], capsys)
        assert code == 2 and str(splits) in one_clear_line(err)
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# -- the ledger ------------------------------------------------------------------------------------------
def test_models_with_a_numeric_job_id(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                     caplog: pytest.LogCaptureFixture) -> None:
    """The record is shown or skipped with a line naming its file (the ledger's choice), never a traceback."""
    from ftlib.jobs.ledger import Ledger

    ledger = Ledger(tmp_path / "models")
    ledger.update("openai", "k1", provider="openai", job_key="k1", job_id="ftjob-1", status="succeeded",
                  base_model="gpt-4o-mini", dataset_sha256="ab" * 32, model_id="ft:x")
    path = ledger.job_path("openai", "k1")
    record = orjson.loads(path.read_bytes())
    path.write_bytes(orjson.dumps({**record, "job_id": 12345}))  # hand-edited or written by another tool
    code, out, err = run(["models", "--models-dir", str(tmp_path / "models")], capfd)
    assert code == 0 and "Traceback" not in out + err
    shown = out + err + caplog.text  # the ledger logs a skipped record (stderr under the real CLI)
    assert "12345" in shown and ("k1.json" in shown or "ftjob" not in shown)


# -- rejects are streamed to the report ------------------------------------------------------------------
def test_the_streamed_report_is_the_in_memory_report_byte_for_byte(tmp_path: Path) -> None:
    from ftlib import jsonfile

    src = write_jsonl(tmp_path / "in.jsonl", [good(1), "{not json", good(2), '"a string"', "[1, 2]"])
    result, _ = ingest(tmp_path, src)
    assert result.rejected_issues == 3
    assert (tmp_path / "reports" / "ingest.json").read_bytes() == jsonfile.dumps(result.to_dict())


def test_many_rejects_keep_memory_flat_and_all_are_reported(tmp_path: Path) -> None:
    import tracemalloc

    n = 20_000
    src = tmp_path / "bad.jsonl"
    src.write_bytes(b"".join(b'{"messages": [' + str(i).encode() + b"\n" for i in range(n)))
    report_path = tmp_path / "ingest.json"
    tracemalloc.start()
    result = pipeline.ingest([src], tmp_path / "dataset.parquet", report_path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    report = orjson.loads(report_path.read_bytes())
    assert result.read == n and report["rejected"] == n and len(report["rejects"]) == n
    assert report["rejects"][-1]["source"] == f"{src}:{n}"
    assert len(result.rejected) == result.KEEP_REJECTS
    print(f"{n} rejected lines: peak traced Python memory {peak / 2**20:.1f} MB")
    assert peak < 10 * 2**20  # every Issue kept in memory (and the report built in memory) takes ~25 MB here


# -- properties (hypothesis): readers never crash or lose a line; round trips keep every byte that matters ----
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_secrets import V as SECRET_VALUES  # noqa: E402

from ftlib import targets  # noqa: E402
from ftlib.issues import Issue as pyIssue  # noqa: E402
from ftlib.readers import lines as line_reader  # noqa: E402
from ftlib.records import Example  # noqa: E402

_FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
                max_size=40).filter(str.strip)  # NUL: a file with one is read as binary (one issue)


@_FAST
@given(st.lists(st.binary(max_size=80) | json_values.map(lambda v: json.dumps(v).encode()), max_size=12))
def test_any_bytes_give_one_item_per_line_with_its_line_number(tmp_path: Path, lines: list[bytes]) -> None:
    raw = [b.replace(b"\n", b" ").replace(b"\r", b" ") for b in lines]
    first = b"".join(raw).lstrip(b"\xef\xbb\xbf").lstrip()[:1]
    assume(first != b"[")  # a file that opens with '[' is read as one JSON array document (readers.documents)
    path = tmp_path / "any.jsonl"
    path.write_bytes(b"".join(r + b"\n" for r in raw))
    expected = [n for n, r in enumerate(raw, 1) if r.strip() and not (n == 1 and r.strip() == b"\xef\xbb\xbf")]
    got = list(readers.read_file(path))
    whole_file = [i for i in got if i.source == str(path)]  # e.g. a NUL byte: read as binary, one issue
    assert all(getattr(i, "code", "") == "unreadable_file" for i in whole_file)
    numbered = [int(item.source.rsplit(":", 1)[1]) for item in got if item.source != str(path)]
    assert numbered == expected[: len(numbered)]
    assert len(numbered) == len(expected) or any(getattr(i, "code", "") == "unreadable_file" for i in got)


@_FAST
@given(st.dictionaries(st.text(max_size=6), json_values, min_size=1, max_size=5))
def test_no_duplicate_key_is_reported_where_there_is_none_and_every_real_one_is(obj: dict) -> None:
    raw = json.dumps(obj).encode()
    assert not isinstance(line_reader.parse(raw), pyIssue)
    key = next(iter(obj))
    doubled = raw[:-1] + b", " + json.dumps(key).encode() + b": 0}"
    found = line_reader.parse(doubled)
    assert isinstance(found, pyIssue) and found.code == "duplicate_key"


@_FAST
@given(st.lists(st.tuples(texts, texts), min_size=1, max_size=8))
def test_csv_cells_round_trip_exactly_with_true_line_numbers(tmp_path: Path, rows: list[tuple[str, str]]) -> None:
    import re

    buf = io.StringIO()
    csv.writer(buf).writerows([["prompt", "completion"], *map(list, rows)])  # \r\n: quotes any cell with \r or \n
    path = tmp_path / "p.csv"
    path.write_bytes(buf.getvalue().encode())
    got = list(readers.read_file(path))
    assert all(isinstance(ex, Example) for ex in got), got
    assert [(ex.messages[0].content, ex.messages[1].content) for ex in got] == rows
    starts, line = [], 2
    for p, c in rows:  # a record starts where the previous one ended (cells may hold line breaks)
        starts.append(line)
        line += len(re.findall(r"\r\n|\r|\n", p)) + len(re.findall(r"\r\n|\r|\n", c)) + 1
    assert [int(ex.source.rsplit(":", 1)[1]) for ex in got] == starts


@_FAST
@given(st.lists(st.tuples(texts, texts), min_size=1, max_size=3), st.none() | texts)
def test_every_target_format_round_trips_a_text_conversation(turns: list[tuple[str, str]], system: str | None) -> None:
    msgs = [m for u, a in turns for m in (("user", u), ("assistant", a))]
    ex = Example.from_turns(msgs, system=system)
    for target in targets.all_targets():
        fmt = target.formats.get("sft")
        if fmt is None:
            continue
        back = fmt.decode(orjson.loads(orjson.dumps(fmt.encode(ex))), "x:1")
        assert back.id == ex.id, (target.name, fmt.name)


@_FAST
@given(st.text(max_size=60), st.text(max_size=60), st.sampled_from(sorted(SECRET_VALUES)), st.integers(0, 30))
def test_a_planted_key_is_found_and_redacted_whatever_surrounds_it(before: str, after: str, name: str,
                                                                   cut: int) -> None:
    from ftlib.secret_scan import find_secrets, redact

    value = SECRET_VALUES[name]
    text = f"{before} {value} {after}"
    assert find_secrets(text)
    assert value not in redact(text)
    ascii_value = value.isascii() and "\n" not in value
    if ascii_value and "-" in value:  # the same key with a zero-width space pushed inside is no disguise
        pos = value.index("-") + 1 + cut % 5
        assert find_secrets(f"{before} {value[:pos]}\u200b{value[pos:]} {after}")


