"""Write N synthetic support-chat examples as OpenAI chat JSONL, streamed (constant memory), deterministic.

    python benchmarks/generate.py 1000000 benchmarks/out/chat-1000000.jsonl
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import orjson

WORDS = (  # noqa: SIM905 (a sentence reads better than a list literal)
    "invoice payment refund account bank sync export report tax rate customer plan upgrade billing cycle webhook "
    "api key rotate settings dashboard user role admin permission error message retry schedule recurring draft "
    "send reminder overdue currency ledger balance reconcile statement receipt attachment email template workspace "
    "the a to of and for with on in is it please can you I my we our when why how what does not after before again"
).split()
SYSTEMS = [
    "You are Ledgerly's support assistant. Answer precisely and politely.",
    "You help Ledgerly customers with invoicing, billing and bank sync questions.",
    "You are a concise support agent for an invoicing product.",
]


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def example(rng: random.Random, i: int) -> dict:
    msgs = [{"role": "system", "content": rng.choice(SYSTEMS)}]
    for _ in range(rng.randint(1, 3)):
        msgs.append({"role": "user", "content": f"Ticket {i}: " + sentence(rng, rng.randint(8, 40))})
        msgs.append({"role": "assistant", "content": " ".join(sentence(rng, rng.randint(6, 20))
                                                              for _ in range(rng.randint(1, 4)))})
    return {"messages": msgs, "group": f"customer-{i // 3}"}


def main(n: int, out: Path) -> None:
    rng = random.Random(1234)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as fh:
        for i in range(n):
            fh.write(orjson.dumps(example(rng, i)) + b"\n")


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
