"""The obvious in-memory approach, as a baseline: Python objects for every example and json.dumps per line.

It does the same work as the pipeline (ingest + dedupe, seeded split, export for three providers, validation with
the official OpenAI line schema, a secret scan and token counts) the way existing dataset libraries do it:
everything loaded into a list of dataclasses first.

    python benchmarks/naive.py INPUT.jsonl OUT_DIR [--fast-schema]

--fast-schema swaps jsonschema for jsonschema-rs (what ftlib uses), to show the speed-up that does not come
from the schema validator alone.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import jsonschema
import tiktoken

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "ftlib" / "schemas" / "openai_finetune_input.schema.json"
SECRET = re.compile(r"sk-[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----|ghp_[A-Za-z0-9]{36}")


@dataclass
class Msg:
    role: str
    content: str


@dataclass
class Ex:
    messages: list[Msg]
    group: str | None = None

    @property
    def id(self) -> str:
        return hashlib.sha256(json.dumps([asdict(m) for m in self.messages], sort_keys=True).encode()).hexdigest()


def encode(ex: Ex, provider: str) -> dict:
    msgs = [asdict(m) for m in ex.messages]
    if provider == "openai":
        return {"messages": msgs}
    system = [m["content"] for m in msgs if m["role"] == "system"]
    rest = [m for m in msgs if m["role"] != "system"]
    if provider == "anthropic":
        return {"system": system[0], "messages": rest} if system else {"messages": rest}
    out = {"contents": [{"role": "model" if m["role"] == "assistant" else "user", "parts": [{"text": m["content"]}]}
                        for m in rest]}
    if system:
        out["systemInstruction"] = {"role": "system", "parts": [{"text": system[0]}]}
    return out


def decode(d: dict, provider: str) -> Ex:
    if provider == "gemini":
        msgs = [Msg("system", p["text"]) for p in d.get("systemInstruction", {}).get("parts", [])]
        msgs += [Msg("assistant" if c["role"] == "model" else "user", c["parts"][0]["text"]) for c in d["contents"]]
        return Ex(msgs)
    msgs = [Msg("system", d["system"])] if "system" in d else []
    return Ex(msgs + [Msg(**m) for m in d["messages"]])


def main(src: Path, out: Path, fast_schema: bool = False) -> None:
    enc = tiktoken.get_encoding("o200k_base")
    schema = json.loads(SCHEMA_PATH.read_text())
    root = {"$ref": "#/$defs/FineTuneChatRequestInput", "$defs": schema["$defs"]}
    if fast_schema:
        import jsonschema_rs

        validator = jsonschema_rs.validator_for(root)
    else:
        validator = jsonschema.Draft202012Validator(root)
    # ingest: everything into Python objects, dedupe by id
    examples: dict[str, Ex] = {}
    with src.open() as fh:
        for line in fh:
            d = json.loads(line)
            ex = Ex([Msg(m["role"], m["content"]) for m in d["messages"]], d.get("group"))
            if any(SECRET.search(m.content) for m in ex.messages):
                continue
            examples.setdefault(ex.id, ex)
    # split: seeded hash of the group
    splits: dict[str, list[Ex]] = {"train": [], "validation": []}
    for ex in examples.values():
        h = int.from_bytes(hashlib.sha256(f"42:{ex.group or ex.id}".encode()).digest()[:8], "big") / 2**64
        splits["train" if h < 0.9 else "validation"].append(ex)
    # export + validate per provider
    errors = 0
    for provider in ("openai", "anthropic", "gemini"):
        d = out / provider
        d.mkdir(parents=True, exist_ok=True)
        for name, rows in splits.items():
            with (d / f"{name}.jsonl").open("w") as fh:
                for ex in rows:
                    fh.write(json.dumps(encode(ex, provider)) + "\n")
        tokens = 0
        for name in splits:
            with (d / f"{name}.jsonl").open() as fh:
                for line in fh:
                    obj = json.loads(line)
                    if provider == "openai":
                        errors += sum(1 for _ in validator.iter_errors(obj))
                    ex = decode(obj, provider)
                    if not ex.messages or ex.messages[-1].role != "assistant":
                        errors += 1
                    tokens += sum(len(enc.encode_ordinary(m.content)) + 3 for m in ex.messages) + 3
        print(provider, "tokens", tokens, "errors", errors)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), "--fast-schema" in sys.argv[3:])
