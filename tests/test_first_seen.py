"""Ingest's first-seen set keeps exactly what a Python set would, chunk after chunk."""

from __future__ import annotations

import hashlib
import random

from ftlib.first_seen import FirstSeen


def test_first_seen_matches_a_python_set_across_and_within_chunks():
    rng = random.Random(3)
    pool = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(3000)]
    pool.append("00" * 15 + "ff" + "00" * 16)  # prefixes that differ only in their last byte, one ending in zero
    pool.append("00" * 16 + "ab" * 16)
    seen, fs = set(), FirstSeen()
    for _ in range(60):
        chunk = [rng.choice(pool) for _ in range(rng.randint(0, 300))]
        expected = []
        for i in chunk:
            expected.append(i[:32] not in seen)
            seen.add(i[:32])
        assert fs.first(chunk).tolist() == expected
    assert len(fs) == len(seen)
