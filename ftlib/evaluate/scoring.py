"""Scores that fit the reference: pure functions from (reference message, reply) to numbers.

- tool-call references: the called tool names (as a multiset) and their arguments (parsed JSON, order-free);
- JSON references (an object or array): does the reply parse, does it equal the reference, does it match the
  configured JSON Schema;
- free text: exact match (whitespace-normalised), token-level F1 and ROUGE-L from Google's `rouge-score`
  (token F1 is ROUGE-1's F-measure: clipped unigram overlap, the SQuAD definition) with a Unicode word tokenizer,
  since rouge-score's default one drops every non-ASCII letter.

Each example also gets one `score` in [0, 1] so examples can be ranked worst-first and models compared:
text -> ROUGE-L F, JSON -> 1 if equal to the reference, tool call -> 1 if names and arguments match, 0.5 if only
the names do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from typing import Any

import orjson

from ftlib.evaluate.generator import Reply
from ftlib.records import Message

KINDS = ("text", "json", "tool_call")
_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n(.*?)\n?```$", re.S)
_WORD = re.compile(r"\w+")
_DIGITS = 6


class _Words:
    """rouge-score tokenizer interface: casefolded Unicode words (keeps non-English text scorable)."""

    def tokenize(self, text: str) -> list[str]:
        return _WORD.findall(text.casefold())


@cache
def _scorer() -> Any:
    from rouge_score import rouge_scorer  # imported on first use: `ftlib validate` never loads nltk

    return rouge_scorer.RougeScorer(["rouge1", "rougeL"], tokenizer=_Words())


def kind_of(reference: Message) -> str:
    if reference.tool_calls:
        return "tool_call"
    return "json" if parse_json(reference.content) is not None else "text"


def parse_json(text: str) -> Any:
    """An object or array (a reply wrapped in one markdown code fence counts too), else None."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    if not body or body[0] not in "[{":
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _args(text: str) -> Any:
    try:
        return orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        return text  # compared as text: a reply with broken JSON arguments never equals a parsed reference


def _calls(calls: Iterable[tuple[str, str]]) -> list[tuple[str, bytes]]:
    return sorted((name, orjson.dumps(_args(args), option=orjson.OPT_SORT_KEYS)) for name, args in calls)


def score_text(reference: str, reply: str) -> dict[str, float]:
    ref_words, reply_words = _Words().tokenize(reference), _Words().tokenize(reply)
    if not ref_words and not reply_words:  # two empty answers agree; rouge-score would say 0
        f1 = rouge_l = 1.0
    else:
        scores = _scorer().score(reference, reply)
        f1, rouge_l = scores["rouge1"].fmeasure, scores["rougeL"].fmeasure
    return {"exact_match": float(_normalise(reference) == _normalise(reply)), "token_f1": f1, "rouge_l": rouge_l}


def score_json(reference: str, reply: str, validator: Any = None) -> dict[str, float]:
    expected, got = parse_json(reference), parse_json(reply)
    out = {"parse_rate": float(got is not None), "match": float(got is not None and got == expected)}
    if validator is not None:
        out["schema_valid"] = float(got is not None and validator.is_valid(got))
    return out


def score_tool_calls(reference: Message, reply: Reply) -> dict[str, float]:
    want = _calls((c.name, c.arguments) for c in reference.tool_calls)
    got = _calls(reply.tool_calls)
    names_agree = sorted(n for n, _ in want) == sorted(n for n, _ in got)
    return {"name_match": float(names_agree), "args_match": float(want == got)}


def score(reference: Message, reply: Reply, validator: Any = None) -> dict[str, Any]:
    """{"kind", the kind's metrics, "score"} for one example."""
    kind = kind_of(reference)
    if kind == "tool_call":
        metrics = score_tool_calls(reference, reply)
        headline = 1.0 if metrics["args_match"] else 0.5 * metrics["name_match"]
    elif kind == "json":
        metrics = score_json(reference.content, reply.text, validator)
        headline = metrics["match"]
    else:
        metrics = score_text(reference.content, reply.text)
        headline = metrics["rouge_l"]
    return {"kind": kind, **{k: round(v, _DIGITS) for k, v in metrics.items()}, "score": round(headline, _DIGITS)}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over examples: overall `score`, then per kind (only kinds that occur) with their example counts."""
    out: dict[str, Any] = {"examples": len(rows), "score": _mean(r["score"] for r in rows)}
    for kind in KINDS:
        mine = [r for r in rows if r["kind"] == kind]
        if mine:
            keys = [k for k in mine[0] if k not in ("kind", "score")]
            out[kind] = {"examples": len(mine), **{k: _mean(r[k] for r in mine) for k in keys}}
    return out


def gain(tuned: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """tuned - base for every shared number (examples counts excluded): positive means the tuning helped."""
    out: dict[str, Any] = {}
    for key, value in tuned.items():
        other = base.get(key)
        if key == "examples" or other is None:
            continue
        if isinstance(value, dict) and isinstance(other, dict):
            inner = gain(value, other)
            if inner:
                out[key] = inner
        elif isinstance(value, int | float) and isinstance(other, int | float):
            out[key] = round(value - other, _DIGITS)
    return out


def _mean(values: Iterable[float]) -> float:
    vals = list(values)
    return round(sum(vals) / len(vals), _DIGITS) if vals else 0.0


def schema_validator(schema: Any) -> Any:
    """A jsonschema validator for the schema's own draft; SchemaError names what is wrong with the schema."""
    import jsonschema

    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)
