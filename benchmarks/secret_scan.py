"""Cost of the secret check per example on realistic data (the synthetic support chats of generate.py).

    python benchmarks/secret_scan.py [N]      # default 100,000 examples

Prints ns/example for the whole per-example secret check (ftlib.checks.check_secrets: every string field of the
example) and for find_secrets on the example's joined text, best of 3 runs.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import example

from ftlib import formats
from ftlib.checks import Sink, check_secrets
from ftlib.secret_scan import find_secrets


def examples(n: int) -> list:
    rng = random.Random(1234)
    fmt = formats.get("openai-chat")
    return [fmt.decode(example(rng, i), f"bench:{i}") for i in range(n)]


def best_ns(fn, items: list, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter_ns()
        for item in items:
            fn(item)
        best = min(best, (time.perf_counter_ns() - start) / len(items))
    return best


def main(n: int) -> None:
    exs = examples(n)
    texts = ["\n".join(m.content for m in ex.messages) for ex in exs]
    per_example = best_ns(lambda ex: check_secrets(ex, Sink(ex)), exs)
    per_text = best_ns(find_secrets, texts)
    flagged = sum(1 for t in texts if find_secrets(t))
    print(f"{n} examples, {sum(map(len, texts)) / n:.0f} chars each: check_secrets {per_example:.0f} ns/example, "
          f"find_secrets {per_text:.0f} ns/text, {flagged} flagged")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
