"""Data quality: near-duplicates (MinHash LSH) on planted near-copies with precision and recall, keep_first, splits
that never separate a cluster; leakage of planted overlaps from held-out splits and an eval file; length and turn
outliers with their DVC plot files."""

from __future__ import annotations

import csv
import random
from itertools import combinations
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from ftlib import layout, pipeline, store
from ftlib import split as splitting
from ftlib.cli import app
from ftlib.dataset import Dataset
from ftlib.quality import near_duplicates as nd
from ftlib.quality import report, text
from ftlib.records import Example, Message

WORDS = [f"w{i}" for i in range(3000)]  # a large vocabulary: unrelated examples share almost no 3-grams


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def chat(user: str, assistant: str, system: str = "You are a helpful support agent.", **extra) -> dict:
    return {"messages": [{"role": "system", "content": system}, {"role": "user", "content": user},
                         {"role": "assistant", "content": assistant}], **extra}


def edit(rng: random.Random, text_: str, kind: int) -> str:
    """A near-copy a person would call the same example: one word changed, case/punctuation, one word added."""
    words = text_.split()
    i = rng.randrange(len(words))
    if kind == 0:
        words[i] = rng.choice(WORDS)
    elif kind == 1:
        words[i] = words[i].upper() + ","
        words[-1] += "!"
    else:
        words.insert(i, "please")
    return " ".join(words)


def planted(tmp_path: Path, seed: int = 7, n: int = 600, copies: int = 80) -> tuple[list[dict], set[frozenset[int]]]:
    """n unrelated chats, `copies` near-copies of the first ones (in a second file), and hard negatives: the same
    question with a different answer, and the same answer to a different question."""
    rng = random.Random(seed)
    base = [chat(sentence(rng, rng.randint(12, 30)), sentence(rng, rng.randint(25, 70))) for _ in range(n)]
    near, truth = [], set()
    for i in range(copies):
        src = base[i]
        user, answer = src["messages"][1]["content"], src["messages"][2]["content"]
        kind = i % 4
        if kind == 3:  # another system prompt only: near-duplicate in what is trained (system text is left out)
            near.append(chat(user, answer, system="You answer billing questions."))
        else:
            near.append(chat(edit(rng, user, kind), edit(rng, answer, (kind + 1) % 3)))
        truth.add(frozenset((i, n + i)))
    negatives = []
    for i in range(copies, copies + 40):
        src = base[i]
        negatives.append(chat(src["messages"][1]["content"], sentence(rng, 50)))  # same question, new answer
        negatives.append(chat(sentence(rng, 20), src["messages"][2]["content"]))  # same answer, new question
    rows = base + near + negatives
    write(tmp_path / "data" / "a.jsonl", base)
    write(tmp_path / "data" / "b.jsonl", near + negatives)
    return rows, truth


def write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def ingest(tmp_path: Path, mode: str = "report", threshold: float = 0.8) -> tuple[dict, Path]:
    out = tmp_path / "build" / "dataset.parquet"
    pipeline.ingest([tmp_path / "data"], out, tmp_path / "ingest.json", workers=1,
                    near_duplicates=nd.Settings(mode=mode, threshold=threshold),
                    near_duplicates_out=layout.near_duplicates_file(out))
    return orjson.loads((tmp_path / "ingest.json").read_bytes()), out


def row_of(source: str, n_base: int) -> int:
    """Planted row number from a file:line source (a.jsonl holds the base rows, b.jsonl the rest)."""
    name, line = source.rsplit(":", 1)
    return int(line) - 1 + (0 if name.endswith("a.jsonl") else n_base)


# -- near-duplicates ------------------------------------------------------------------------------------

def jaccard(a: dict, b: dict) -> float:
    """The exact Jaccard similarity of two chats' 3-gram sets, as the near-duplicate check defines them."""
    def grams(row: dict) -> set[int]:
        ex = Example(messages=tuple(Message(m["role"], m["content"]) for m in row["messages"]))
        return set(text.ngram_hashes(*text.text_pieces(store.batch_from_examples([ex])), 3)[0].tolist())

    ga, gb = grams(a), grams(b)
    return len(ga & gb) / len(ga | gb)


def test_near_duplicates_are_found_with_high_precision_and_recall(tmp_path: Path, capsys) -> None:
    rows, truth = planted(tmp_path)
    rep, _ = ingest(tmp_path)
    found_pairs = set()
    for cluster in rep["near_duplicates"]["clusters"]:
        members = [row_of(s, 600) for s in cluster["sources"]]
        found_pairs |= {frozenset(p) for p in combinations(members, 2)}
    similarity = {p: jaccard(*(rows[i] for i in sorted(p))) for p in truth}
    clear = {p for p, j in similarity.items() if j >= 0.85}  # well above the 0.8 threshold
    hits = len(found_pairs & truth)
    precision = hits / len(found_pairs)
    recall = hits / len(truth)
    recall_clear = len(found_pairs & clear) / len(clear)
    with capsys.disabled():
        print(f"\nnear-duplicates: {len(truth)} planted pairs (true Jaccard {min(similarity.values()):.2f}-"
              f"{max(similarity.values()):.2f}) among {len(rows)} examples with 80 hard negatives; found "
              f"{len(found_pairs)} pairs: precision {precision:.3f}, recall {recall:.3f} "
              f"({recall_clear:.3f} on the {len(clear)} pairs at Jaccard >= 0.85)")
    assert precision >= 0.97 and recall >= 0.9 and recall_clear >= 0.97
    nd_rep = rep["near_duplicates"]
    assert nd_rep["mode"] == "report" and nd_rep["dropped"] == 0 and rep["kept"] == len(rows)
    first = nd_rep["clusters"][0]
    assert first["sources"][0] == f"{tmp_path / 'data' / 'a.jsonl'}:1"  # ordered by first member, file:line
    assert len(first["ids"]) == len(first["sources"]) == 2 and all(len(i) == 64 for i in first["ids"])


def test_keep_first_drops_the_later_members_and_says_so(tmp_path: Path) -> None:
    rows, _ = planted(tmp_path, n=200, copies=20)
    rep, out = ingest(tmp_path, mode="keep_first")
    dropped = rep["near_duplicates"]["dropped_examples"]
    assert len(dropped) == rep["near_duplicates"]["dropped"] >= 17
    assert all(d["source"].startswith(str(tmp_path / "data" / "b.jsonl")) for d in dropped)
    kept_ids = set(Dataset.from_parquet(out).ids().to_pylist())
    assert not kept_ids & {d["id"] for d in dropped}
    assert {d["near_duplicate_of"] for d in dropped} <= kept_ids
    assert rep["kept"] == len(rows) - len(dropped) == len(kept_ids)
    b_stats = rep["files"][(tmp_path / "data" / "b.jsonl").as_posix()]
    assert b_stats["near_duplicates"] == len(dropped) and b_stats["kept"] == 100 - len(dropped)
    assert pa.parquet.read_table(layout.near_duplicates_file(out)).num_rows == 0  # nothing left to keep together


def test_off_finds_nothing_and_threshold_is_checked(tmp_path: Path) -> None:
    planted(tmp_path, n=50, copies=10)
    rep, _ = ingest(tmp_path, mode="off")
    assert rep["near_duplicates"]["clusters"] == []
    with pytest.raises(ValueError, match="threshold"):
        nd.Settings(threshold=1.5)
    with pytest.raises(ValueError, match="report, keep_first, off"):
        nd.Settings(mode="drop")  # type: ignore[arg-type]


def test_split_never_separates_a_cluster_even_across_groups(tmp_path: Path) -> None:
    rng = random.Random(3)
    rows = []
    for i in range(120):  # each near-copy in another customer group: the groups must join too
        user, answer = sentence(rng, 20), sentence(rng, 40)
        rows.append(chat(user, answer, group=f"customer-{i}"))
        rows.append(chat(user, edit(rng, answer, 0), group=f"customer-{i + 1000}"))
        rows.append(chat(sentence(rng, 15), sentence(rng, 30), group=f"customer-{i + 1000}"))  # a group-mate
    write(tmp_path / "data" / "a.jsonl", rows)
    rep, out = ingest(tmp_path)
    assert rep["near_duplicates"]["cluster_count"] >= 115
    pipeline.split(out, tmp_path / "splits", 42, {"train": 0.5, "validation": 0.5}, "group",
                   near_duplicates=layout.near_duplicates_file(out))
    manifest = orjson.loads((tmp_path / "splits" / "manifest.json").read_bytes())
    side = {i: name for name, ids in manifest["ids"].items() for i in ids}
    assert all(len({side[i] for i in c["ids"]}) == 1 for c in rep["near_duplicates"]["clusters"])
    # group-mates followed their group into the cluster's side
    ds = Dataset.from_parquet(out)
    groups = {ex.id: ex.group for ex in ds}
    by_group: dict[str, set[str]] = {}
    for ex_id, g in groups.items():
        by_group.setdefault(g, set()).add(side[ex_id])
    assert all(len(s) == 1 for s in by_group.values())
    # without the links the same seed separates some clusters: the test can fail
    pipeline.split(out, tmp_path / "plain", 42, {"train": 0.5, "validation": 0.5}, "group")
    plain = orjson.loads((tmp_path / "plain" / "manifest.json").read_bytes())
    side = {i: name for name, ids in plain["ids"].items() for i in ids}
    assert any(len({side[i] for i in c["ids"]}) > 1 for c in rep["near_duplicates"]["clusters"])


def test_join_near_duplicates_keeps_the_earliest_key_and_checks_the_file() -> None:
    keys = pa.array(["a0", "group:x", "a2", "group:x", "a4", "a5"])
    ids = pa.array(["a0", "a1", "a2", "a3", "a4", "a5"])
    links = nd.links_table([[(2, "a2", None), (5, "a5", None)], [(1, "a1", None), (4, "a4", None)]])
    joined = splitting.join_near_duplicates(keys, ids, links).to_pylist()
    assert joined == ["a0", "group:x", "a2", "group:x", "group:x", "a2"]
    with pytest.raises(ValueError, match="does not belong to this dataset"):
        splitting.join_near_duplicates(keys, pa.array(["b0", "b1", "b2", "b3", "b4", "b5"]), links)


def test_cli_ingest_and_split_use_the_links_beside_the_dataset(tmp_path: Path) -> None:
    planted(tmp_path, n=100, copies=10)
    out = tmp_path / "build" / "dataset.parquet"
    r = CliRunner().invoke(app, ["ingest", str(tmp_path / "data"), "--out", str(out), "--report",
                                 str(tmp_path / "ingest.json")])
    assert r.exit_code == 0, r.output
    count = orjson.loads((tmp_path / "ingest.json").read_bytes())["near_duplicates"]["cluster_count"]
    assert count >= 8 and f"near-duplicates: {count} cluster(s) of {2 * count} examples" in r.output
    assert layout.near_duplicates_file(out).is_file()
    r = CliRunner().invoke(app, ["split", str(out), "--out", str(tmp_path / "splits"), "--seed", "1"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["ingest", str(tmp_path / "data"), "--out", str(out), "--near-duplicates", "drop"])
    assert r.exit_code == 2 and "report, keep_first, off" in r.output


def test_training_text_leaves_out_system_prompts_and_normalises_words() -> None:
    exs = [Example(messages=(Message("system", "Long shared system prompt here"), Message("user", "Hello, World!"),
                             Message("assistant", "hi")))]
    batch = store.batch_from_examples(exs)
    pieces, owner = text.text_pieces(batch)
    assert pieces.to_pylist() == ["Hello, World!", "hi"] and owner.tolist() == [0, 0]
    same = store.batch_from_examples([Example(messages=(Message("user", "hello world"), Message("assistant", "HI.")))])
    g1, _ = text.ngram_hashes(*text.text_pieces(batch), 3)
    g2, _ = text.ngram_hashes(*text.text_pieces(same), 3)
    assert len(g1) == 2 and np.array_equal(np.sort(g1), np.sort(g2))


# -- leakage and outliers --------------------------------------------------------------------------------

def splits_with_leaks(tmp_path: Path) -> tuple[Path, list[str], list[str]]:
    """Train and validation split files where some validation examples copy train content, plus an eval file."""
    rng = random.Random(11)
    train = [Example.from_pair(sentence(rng, 20), sentence(rng, 60), source=f"data/t.jsonl:{i + 1}")
             for i in range(300)]
    leaked, clean = [], []
    validation = []
    for i in range(40):
        if i < 10:  # the same conversation with a greeting added: most of its 8-grams are in train
            src = train[i]
            ex = Example.from_pair("Hi! " + src.messages[0].content, src.messages[1].content,
                                   source=f"data/v.jsonl:{i + 1}")
            leaked.append(ex.id)
        elif i < 15:  # a training answer pasted into a longer conversation: about a third of its n-grams
            ex = Example.from_pair(sentence(rng, 100), train[i].messages[1].content, source=f"data/v.jsonl:{i + 1}")
            clean.append(ex.id)
        else:
            ex = Example.from_pair(sentence(rng, 20), sentence(rng, 60), source=f"data/v.jsonl:{i + 1}")
            clean.append(ex.id)
        validation.append(ex)
    split_dir = tmp_path / "splits"
    Dataset(train).to_parquet(split_dir / "train.parquet")
    Dataset(validation).to_parquet(split_dir / "validation.parquet")
    return split_dir, leaked, clean


def test_leakage_flags_planted_overlap_with_the_train_example_it_came_from(tmp_path: Path) -> None:
    split_dir, leaked, _ = splits_with_leaks(tmp_path)
    train_rows = list(Dataset.from_parquet(split_dir / "train.parquet"))
    evals = [orjson.loads(orjson.dumps({"messages": [{"role": "user", "content": ex.messages[0].content},
                                                     {"role": "assistant", "content": ex.messages[1].content}]}))
             for ex in train_rows[100:103]]
    evals.append({"messages": [{"role": "user", "content": "a brand new question"},
                               {"role": "assistant", "content": "and a brand new answer nobody trained on"}]})
    eval_file = write(tmp_path / "evals" / "eval.jsonl", evals)
    summary = report.run(split_dir, tmp_path / "quality", [eval_file])
    rep = orjson.loads((tmp_path / "quality" / layout.LEAKAGE_REPORT).read_bytes())
    val = rep["held_out"]["validation"]
    assert {e["id"] for e in val["examples_contaminated"]} == set(leaked)
    assert val["contaminated"] == 10 and val["examples"] == 40
    first = val["examples_contaminated"][0]
    assert first["source"] == "data/v.jsonl:1" and first["train_source"] == "data/t.jsonl:1"
    assert first["train_id"] == train_rows[0].id and 0.8 < first["overlap"] <= 1.0
    ev = rep["held_out"][eval_file.as_posix()]
    assert ev["contaminated"] == 3 and ev["examples"] == 4
    assert [e["source"] for e in ev["examples_contaminated"]] == [f"{eval_file}:{i}" for i in (1, 2, 3)]
    assert [e["train_source"] for e in ev["examples_contaminated"]] == [f"data/t.jsonl:{i}" for i in (101, 102, 103)]
    assert summary["contaminated"] == {"validation": 10, eval_file.as_posix(): 3}
    assert rep["contaminated"] == 13 and rep["ngram"] == 8


def test_leakage_threshold_decides_partial_overlaps(tmp_path: Path) -> None:
    split_dir, _, _ = splits_with_leaks(tmp_path)
    from ftlib.quality.leakage import Settings

    strict = report.run(split_dir, tmp_path / "q", leak=Settings(threshold=0.3))
    assert strict["contaminated"]["validation"] == 15  # the pasted answers (a third of their n-grams) count too
    loose = report.run(split_dir, tmp_path / "q", leak=Settings(threshold=0.99))
    assert loose["contaminated"]["validation"] < 10


def test_outliers_and_distribution_plots(tmp_path: Path) -> None:
    rng = random.Random(5)
    train = [Example.from_pair(sentence(rng, 20), sentence(rng, rng.randint(30, 50)), source=f"data/t.jsonl:{i}")
             for i in range(1, 201)]
    long = Example.from_pair("tell me everything", sentence(rng, 4000), source="data/t.jsonl:999")
    chatty = Example.from_turns([("user", sentence(rng, 3)), ("assistant", sentence(rng, 3))] * 12,
                                source="data/t.jsonl:1000")
    Dataset([*train, long, chatty]).to_parquet(tmp_path / "splits" / "train.parquet")
    Dataset(train[:50]).to_parquet(tmp_path / "splits" / "validation.parquet")
    summary = report.run(tmp_path / "splits", tmp_path / "q")
    rep = orjson.loads((tmp_path / "q" / layout.OUTLIERS_REPORT).read_bytes())
    tokens = rep["splits"]["train"]["tokens"]
    assert [o["source"] for o in tokens["examples_outlying"]] == ["data/t.jsonl:999"]
    assert tokens["examples_outlying"][0]["tokens"] > tokens["fences"][1]
    turns = rep["splits"]["train"]["turns"]
    assert [o["source"] for o in turns["examples_outlying"]] == ["data/t.jsonl:1000"]
    assert turns["examples_outlying"][0]["turns"] == 12 and turns["max"] == 12
    assert summary["outliers"]["validation"] == {"tokens": 0, "turns": 0}
    for name, metric in ((layout.TOKENS_PLOT, "tokens"), (layout.TURNS_PLOT, "turns")):
        table = list(csv.DictReader((tmp_path / "q" / name).open()))
        assert list(table[0]) == [metric, "train", "validation"]
        for split in ("train", "validation"):
            assert abs(sum(float(r[split]) for r in table) - 1.0) < 1e-3  # shares of each split
    assert {int(r["turns"]) for r in csv.DictReader((tmp_path / "q" / layout.TURNS_PLOT).open())} >= {1, 12}


def test_cli_quality_writes_every_report_and_refuses_a_missing_train_split(tmp_path: Path) -> None:
    split_dir, _, _ = splits_with_leaks(tmp_path)
    r = CliRunner().invoke(app, ["quality", str(split_dir), "--out", str(tmp_path / "q"), "--eval", ""])
    assert r.exit_code == 0, r.output
    assert "contaminated validation: 10" in r.output
    assert {p.name for p in (tmp_path / "q").iterdir()} == {
        layout.LEAKAGE_REPORT, layout.OUTLIERS_REPORT, layout.TOKENS_PLOT, layout.TURNS_PLOT}
    (split_dir / "train.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=r"no train\.parquet"):
        report.run(split_dir, tmp_path / "q2")
    r = CliRunner().invoke(app, ["quality", str(split_dir), "--threshold", "0"])
    assert r.exit_code == 2


@pytest.mark.parametrize("private_helpers", [True, False], ids=["batched", "fallback"])
@pytest.mark.parametrize("settings", [nd.Settings(), nd.Settings(num_perm=16, seed=7)])
def test_batched_signatures_equal_datasketch_minhash_row_by_row(settings, private_helpers, monkeypatch):
    """The batched signatures are what datasketch's MinHash.update_batch gives example by example: rows of
    1..300 values, empty rows, a row longer than one block, in one batch. Without datasketch's private helpers
    (a future release may move them) signatures() falls back to MinHash row by row, with the same result."""
    from datasketch import MinHash

    if not private_helpers:
        monkeypatch.setattr(nd, "_affine_scheme", lambda m: None)

    rng = np.random.default_rng(5)
    sizes = [0, 3, 1, 0, 300, *rng.integers(0, 120, 400).tolist(), 0]
    bounds = np.r_[0, np.cumsum(sizes)]
    values = rng.integers(0, 1 << 32, int(bounds[-1]), dtype=np.uint64)
    old_cells, nd._PHV_CELLS = nd._PHV_CELLS, 200 * settings.num_perm  # blocks of 200 values: the 300 row spills
    try:
        got = nd.signatures(values, bounds, settings)
    finally:
        nd._PHV_CELLS = old_cells
    for r in range(len(sizes)):
        m = MinHash(num_perm=settings.num_perm, seed=settings.seed, hashfunc=int)
        m.update_batch(values[bounds[r]:bounds[r + 1]].tolist())
        assert np.array_equal(got[r], m.hashvalues), r
