"""Which example ids a stream has already shown: ingest keeps the first occurrence of every example.

A Python set of 16-byte id prefixes costs ~75 bytes per id (75 MB at a million examples, the largest part of
ingest's parent process); sorted numpy runs of the same prefixes cost 16. New ids form a sorted run; runs of equal
size are merged (a binary counter), so a lookup searches at most log2(n / chunk) + 1 runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PREFIX_BYTES = 16  # of the sha256 id: two different examples share it with probability ~2**-128


class FirstSeen:
    """A streaming set of example ids (hex sha256), asked a chunk at a time."""

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []  # sorted, disjoint; sizes decreasing

    def __len__(self) -> int:
        return sum(len(r) for r in self._runs)

    def first(self, ids: Sequence[str]) -> np.ndarray:
        """Per id, True when no earlier call and no earlier position of this chunk had it; remembers them all."""
        if not ids:
            return np.zeros(0, bool)
        keys = np.array([bytes.fromhex(i[:2 * PREFIX_BYTES]) for i in ids], dtype=f"S{PREFIX_BYTES}")
        keep = np.zeros(len(keys), bool)
        keep[np.unique(keys, return_index=True)[1]] = True  # first position of each id within the chunk
        for run in self._runs:
            pos = np.searchsorted(run, keys)
            inside = pos < len(run)
            hit = np.zeros(len(keys), bool)
            hit[inside] = run[pos[inside]] == keys[inside]
            keep &= ~hit
        fresh = np.sort(keys[keep])
        if len(fresh):
            self._runs.append(fresh)
            while len(self._runs) > 1 and len(self._runs[-2]) <= len(self._runs[-1]):
                last = self._runs.pop()
                self._runs[-1] = np.sort(np.concatenate([self._runs[-1], last]), kind="stable")
        return keep
