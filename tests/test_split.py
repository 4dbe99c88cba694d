"""Split invariants: seeded, stable under appends, group- and duplicate-safe, close to the requested ratios."""

from __future__ import annotations

import hashlib

import orjson
import pyarrow as pa
import pytest

from ftlib import split

RATIOS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def keys(n: int, start: int = 0) -> list[str]:
    return [hashlib.sha256(f"example {i}".encode()).hexdigest() for i in range(start, start + n)]


# -- parse_ratios -----------------------------------------------------------------------------------

def test_parse_ratios_keeps_order_and_values():
    assert list(split.parse_ratios("train=0.9, validation=0.1").items()) == [("train", 0.9), ("validation", 0.1)]
    assert list(split.parse_ratios("test=0.2,train=0.7,validation=0.1")) == ["test", "train", "validation"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("train=0.9,validation=0.2", "sum to 1"),
        ("train=0.5", "sum to 1"),
        ("train=abc,validation=0.1", "not a number"),
        ("train0.9,validation=0.1", "name=fraction"),
        ("=0.9,validation=0.1", "name=fraction"),
        ("train=0.5,train=0.5", "twice"),
        ("train=1.5,validation=-0.5", "between 0 and 1"),
        ("", "no split ratios"),
    ],
)
def test_parse_ratios_rejects_bad_text_clearly(text, needle):
    with pytest.raises(ValueError, match=needle):
        split.parse_ratios(text)


def test_ratios_tolerate_float_rounding():
    assert split.parse_ratios("a=0.7,b=0.2,c=0.1") == {"a": 0.7, "b": 0.2, "c": 0.1}


# -- bucket / assign --------------------------------------------------------------------------------

def test_bucket_is_the_documented_hash():
    digest = hashlib.sha256(b"7:abc").digest()
    assert split.bucket(7, "abc") == int.from_bytes(digest[:8], "big") / 2**64
    assert 0 <= split.bucket(0, "") < 1


def test_assignment_depends_only_on_seed_and_key():
    ks = keys(500)
    first = [split.assign(3, k, RATIOS) for k in ks]
    # a different order and other keys around it change nothing
    shuffled = dict(zip(reversed(ks), (split.assign(3, k, RATIOS) for k in reversed(ks)), strict=True))
    assert [shuffled[k] for k in ks] == first


def test_different_seed_changes_assignments():
    ks = keys(1000)
    a = [split.assign(0, k, RATIOS) for k in ks]
    b = [split.assign(1, k, RATIOS) for k in ks]
    moved = sum(x != y for x, y in zip(a, b, strict=True))
    assert moved > 200  # ~ 1 - (0.8² + 0.1² + 0.1²) = 34% expected


def test_achieved_ratios_close_to_requested_on_10k_keys():
    ks = keys(10_000)
    names = split.assign_array(42, pa.array(ks), RATIOS).to_pylist()
    for name, want in RATIOS.items():
        assert abs(names.count(name) / len(ks) - want) < 0.015, name


def test_zero_ratio_split_gets_nothing():
    ratios = {"train": 0.9, "empty": 0.0, "validation": 0.1}
    names = split.assign_array(0, keys(2000), ratios).to_pylist()
    assert "empty" not in names
    assert {"train", "validation"} <= set(names)


# -- vectorised helper -------------------------------------------------------------------------------

def test_vectorised_assignment_matches_scalar_assign():
    ks = keys(20_000)
    for seed in (0, 99):
        arr = split.assign_array(seed, pa.chunked_array([pa.array(ks[:7000]), pa.array(ks[7000:])]), RATIOS)
        assert arr.to_pylist() == [split.assign(seed, k, RATIOS) for k in ks]


def test_vectorised_hash_matches_bucket():
    ks = keys(100)
    h = split.hash64_array(5, ks).to_pylist()
    assert [x / 2**64 for x in h] == [split.bucket(5, k) for k in ks]


def test_appending_keys_never_moves_old_ones():
    old = keys(3000)
    new = keys(2000, start=3000)
    before = split.assign_array(1, old, RATIOS).to_pylist()
    after = split.assign_array(1, old + new, RATIOS).to_pylist()
    assert after[: len(old)] == before


def test_same_key_same_split_for_groups_and_duplicates():
    # many rows share a few group keys (and duplicate ids repeat): each key maps to exactly one split
    rows = [f"group:{i % 37}" for i in range(3000)] + keys(50) * 3
    names = split.assign_array(8, rows, RATIOS).to_pylist()
    seen: dict[str, set[str]] = {}
    for k, n in zip(rows, names, strict=True):
        seen.setdefault(k, set()).add(n)
    assert all(len(v) == 1 for v in seen.values())
    assert len({n for v in seen.values() for n in v}) > 1  # and groups do spread over splits


def test_null_keys_are_refused():
    with pytest.raises(ValueError, match="null"):
        split.assign_array(0, pa.array(["a", None]), RATIOS)


# -- manifest --------------------------------------------------------------------------------------------

def test_manifest_is_deterministic_and_complete():
    ks = keys(1000)
    names = split.assign_array(4, ks, RATIOS).to_pylist()
    ids = {n: [k for k, s in zip(ks, names, strict=True) if s == n] for n in RATIOS}
    m1 = split.build_manifest(4, RATIOS, None, ids)
    m2 = split.build_manifest(4, RATIOS, None, {n: list(reversed(v)) for n, v in ids.items()})
    assert split.manifest_bytes(m1) == split.manifest_bytes(m2)
    assert set(m1) == {"seed", "ratios", "group_by", "counts", "achieved", "ids"}
    assert m1["counts"] == {n: len(v) for n, v in ids.items()}
    assert sum(m1["counts"].values()) == 1000
    assert m1["ids"]["train"] == sorted(ids["train"])
    assert abs(m1["achieved"]["train"] - len(ids["train"]) / 1000) < 1e-4
    assert list(orjson.loads(split.manifest_bytes(m1))["ratios"]) == list(RATIOS)


def test_manifest_counts_duplicates_but_lists_ids_once():
    m = split.build_manifest(0, {"train": 1.0}, "group", {"train": ["b", "a", "b"]})
    assert m["counts"] == {"train": 3}
    assert m["ids"] == {"train": ["a", "b"]}
    assert m["group_by"] == "group"


def test_manifest_refuses_unknown_split():
    with pytest.raises(ValueError, match="not in ratios"):
        split.build_manifest(0, {"train": 1.0}, None, {"test": ["a"]})
