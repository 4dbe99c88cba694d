"""Stable, seeded, group-aware splits: an example's split depends only on (seed, group or id)."""

from __future__ import annotations

from collections.abc import Mapping


def parse_ratios(text: str) -> dict[str, float]:
    """"train=0.9,validation=0.1" -> {"train": 0.9, "validation": 0.1}; ratios must sum to 1."""
    raise NotImplementedError


def bucket(seed: int, key: str) -> float:
    """A uniform number in [0, 1) from sha256(seed, key): the same on every machine and Python."""
    raise NotImplementedError


def assign(seed: int, key: str, ratios: Mapping[str, float]) -> str:
    """The split name for a key (group if set, else example id), by cumulative ratios in the given order."""
    raise NotImplementedError
