"""Length and turn-count distributions per split, as CSV files DVC plots, and the examples far outside them.

Tokens are estimated from characters (4 per token, over every message's content, reasoning and tool-call
arguments, system prompts included: what the model reads), because an exact count needs each target's tokenizer
and costs far more than this check should; the validation reports carry the exact counts per target. A turn is one
assistant reply (a preference pair counts one), as `ftlib inspect` counts them.

An example is an outlier when its value lies beyond Tukey's far-out fences: below Q1 - k*IQR or above
Q3 + k*IQR (k = 3 by default; the IQR is taken as at least 1 so that near-constant turn counts do not flag every
small difference).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

CHARS_PER_TOKEN = 4
METRICS = ("tokens", "turns")


@dataclass(frozen=True)
class Settings:
    """quality.iqr_factor in params.yaml."""

    iqr_factor: float = 3.0
    max_listed: int = 1000  # outliers listed per split and metric in the report (all are counted)

    def __post_init__(self) -> None:
        if not self.iqr_factor > 0:
            raise ValueError(f"the outlier IQR factor must be above 0, got {self.iqr_factor}; 3 is Tukey's far out")


def estimate_tokens(chars: np.ndarray) -> np.ndarray:
    return -(-chars // CHARS_PER_TOKEN)  # ceil


def fences(values: np.ndarray, k: float) -> tuple[float, float]:
    q1, q3 = np.percentile(values, [25, 75]) if len(values) else (0.0, 0.0)
    iqr = max(float(q3 - q1), 1.0)
    return float(q1 - k * iqr), float(q3 + k * iqr)


def stats(values: np.ndarray) -> dict[str, float | int]:
    if not len(values):
        return {"examples": 0}
    p = np.percentile(values, [5, 50, 95, 99])
    return {"examples": len(values), "min": int(values.min()), "p5": float(p[0]), "median": float(p[1]),
            "mean": round(float(values.mean()), 3), "p95": float(p[2]), "p99": float(p[3]), "max": int(values.max())}


def outlier_rows(values: np.ndarray, k: float) -> tuple[np.ndarray, tuple[float, float]]:
    lo, hi = fences(values, k)
    return np.flatnonzero((values < lo) | (values > hi)), (lo, hi)


def _nice(x: float) -> int:
    """A round bin width (1, 2, 5 times a power of ten) of at least x."""
    if x <= 1:
        return 1
    e = 10 ** math.floor(math.log10(x))
    return int(next(m * e for m in (1, 2, 5, 10) if m * e >= x))


def histogram_csv(metric: str, per_split: Mapping[str, np.ndarray], bins: int = 40) -> str:
    """One row per bin (its lower edge), one column per split holding that split's share of examples in the bin.

    Bins are shared by all splits (so they overlay in one plot). Turns get one bin per count up to the largest
    (at most 1000); tokens get `bins` round-width bins up to the pooled 99th percentile. The last bin also holds
    everything above it. Shares, not counts: train and validation differ in size.
    """
    pooled = np.concatenate([v for v in per_split.values()]) if per_split else np.zeros(0, np.int64)
    if metric == "turns":
        top, width = float(min(pooled.max(), 1000)) if len(pooled) else 0.0, 1
    else:
        top = float(np.percentile(pooled, 99)) if len(pooled) else 0.0
        width = _nice(top / bins)
    last = int(top // width) if len(pooled) else 0
    header = ",".join([metric, *per_split])
    columns = []
    for values in per_split.values():
        counts = np.bincount(np.minimum(values // width, last).astype(np.int64), minlength=last + 1)
        columns.append(counts / max(len(values), 1))
    lines = [header]
    for b in range(last + 1):
        lines.append(",".join([str(b * width), *(f"{c[b]:.6f}" for c in columns)]))
    return "\n".join(lines) + "\n"


def summary(values: Mapping[str, Mapping[str, np.ndarray]], k: float
            ) -> tuple[dict[str, Any], dict[tuple[str, str], np.ndarray]]:
    """Per split and metric: the distribution, the fences and the outlier count; and the outlier rows (positions
    in each split, in row order) keyed by (split, metric)."""
    out: dict[str, Any] = {}
    found: dict[tuple[str, str], np.ndarray] = {}
    for split, metrics in values.items():
        out[split] = {}
        for metric in METRICS:
            v = metrics[metric]
            rows, (lo, hi) = outlier_rows(v, k)
            found[(split, metric)] = rows
            out[split][metric] = {**stats(v), "fences": [round(lo, 3), round(hi, 3)], "outliers": len(rows)}
    return out, found


__all__ = ["CHARS_PER_TOKEN", "METRICS", "Settings", "estimate_tokens", "fences", "histogram_csv", "stats",
           "summary"]
