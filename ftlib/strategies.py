"""Training strategies: how an example's replies are shaped for one target at export, set per target in params.yaml.

Two independent choices, as in Kiln's fine-tune formats:
- reasoning: `as_is` (the default: export what was ingested), `final_only` (drop reasoning), `final_and_reasoning`
  (keep it where the target's format holds reasoning: `reasoning_content` for Hugging Face, thought parts for
  Vertex; otherwise, or with reasoning_format think_tags, as `<think>...</think>` before the answer), or
  `chain_of_thought_turns` (Kiln's two-message chain of thought: the thinking instructions close the user turn,
  the reasoning is its own assistant turn, then a final-answer prompt and the answer).
- output: `text` (the default), `json` (every assistant reply must parse as JSON, and match `json_schema` when
  one is given; written compact on one line), or `tool_call` (the final reply becomes a call of the configured
  tool, Kiln's `task_response`, with the reply's JSON object as arguments; the tool is added to the example's tools).

Every strategy is a pure function Example -> Example | Issue; an example a strategy cannot shape is an error Issue
naming its file:line and field, and export skips it. The defaults change nothing, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any, Literal, assert_never

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ftlib import formats
from ftlib.checks import TOOL_NAME
from ftlib.errors import FormatError
from ftlib.formats.base import Format
from ftlib.issues import Issue
from ftlib.records import Example, Message, ToolCall

Reasoning = Literal["as_is", "final_only", "final_and_reasoning", "chain_of_thought_turns"]
Output = Literal["text", "json", "tool_call"]

THINKING_INSTRUCTIONS = "Think step by step, explaining your reasoning."  # Kiln's default
FINAL_ANSWER_PROMPT = "Considering the above, return a final result."  # Kiln's COT_FINAL_ANSWER_PROMPT
SHORTHANDS: dict[str, dict[str, str]] = {
    "as_is": {},
    "final_only": {"reasoning": "final_only"},
    "final_and_reasoning": {"reasoning": "final_and_reasoning"},
    "chain_of_thought_turns": {"reasoning": "chain_of_thought_turns"},
    "json": {"output": "json"},
    "tool_call": {"output": "tool_call"},
}


class Tool(BaseModel):
    """The tool a `tool_call` reply calls; its parameters are the strategy's json_schema (any object otherwise)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = "task_response"
    description: str = "Return the final response to the task."

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not TOOL_NAME.match(v):
            raise ValueError("use only a-z, A-Z, 0-9, _ and -, at most 64 characters (e.g. task_response)")
        return v


class Strategy(BaseModel):
    """providers.<target>.strategy: a shorthand name or these keys. Unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    reasoning: Reasoning = "as_is"
    reasoning_format: Literal["auto", "think_tags"] = "auto"
    thinking_instructions: str = Field(THINKING_INSTRUCTIONS, min_length=1)
    final_answer_prompt: str = Field(FINAL_ANSWER_PROMPT, min_length=1)
    output: Output = "text"
    json_schema: dict[str, Any] | None = None
    tool: Tool = Tool()

    @field_validator("json_schema")
    @classmethod
    def _schema(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            from jsonschema import SchemaError
            from jsonschema.validators import validator_for

            try:
                validator_for(v).check_schema(v)
            except SchemaError as e:
                raise ValueError(f"not a valid JSON schema: {e.message}") from None
        return v

    @model_validator(mode="after")
    def _tool_schema(self) -> Strategy:
        if self.output == "tool_call" and self.json_schema is not None and self.json_schema.get("type") != "object":
            raise ValueError('output tool_call needs a json_schema of "type": "object" (tool arguments are an '
                             "object); wrap the answer in an object property")
        return self

    @property
    def is_default(self) -> bool:
        return self.reasoning == "as_is" and self.output == "text"

    def describe(self) -> dict[str, Any]:
        """What the export report records: the settings that differ from the defaults."""
        return self.model_dump(exclude_defaults=True, mode="json")


def from_params(value: Any, where: str, base_dir: Path | None = None) -> Strategy | None:
    """providers.<target>.strategy -> Strategy, or None when absent or as_is (export unchanged).

    A string is a shorthand (final_only, json, ...); a mapping gives the keys. json_schema may be a file path
    (relative to base_dir: the params file's folder), read here so worker processes get the schema itself.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if value not in SHORTHANDS:
            raise ValueError(f"params: {where}: unknown strategy {value!r}; use one of {', '.join(SHORTHANDS)} "
                             "or a mapping of reasoning/output settings")
        value = SHORTHANDS[value]
    if not isinstance(value, Mapping):
        raise ValueError(f"params: {where} must be a strategy name or a mapping, got {type(value).__name__}")
    data = dict(value)
    schema = data.get("json_schema")
    if isinstance(schema, str):
        path = (base_dir or Path.cwd()) / schema
        try:
            data["json_schema"] = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            raise ValueError(f"params: {where}.json_schema: {path} not found; give a JSON schema file or an inline "
                             "mapping") from None
        except orjson.JSONDecodeError as e:
            raise ValueError(f"params: {where}.json_schema: {path} is not valid JSON ({e})") from None
    try:
        strategy = Strategy(**data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        msg = str(first["msg"]).removeprefix("Value error, ")
        raise ValueError(f"params: {where}{'.' + loc if loc else ''}: {msg}") from None
    return None if strategy.is_default else strategy


def for_target(params: Mapping[str, Any], target: str, base_dir: Path | None = None) -> Strategy | None:
    """The strategy params.yaml sets for a target (providers.<target>.strategy), or None."""
    section = (params.get("providers") or {}).get(target) or {}
    if not isinstance(section, Mapping):
        raise ValueError(f"params: providers.{target} must be a mapping (base_model, strategy)")
    return from_params(section.get("strategy"), f"providers.{target}.strategy", base_dir)


# -- the strategies: pure functions -------------------------------------------------------------------

def _issue(ex: Example, code: str, field: str, message: str) -> Issue:
    return Issue(code, "error", f"{message}; skipped", ex.id, ex.source, field)


def _map_messages(ex: Example, fn: Any) -> Example:
    return replace(ex, messages=tuple(fn(m) for m in ex.messages),
                   chosen=fn(ex.chosen) if ex.chosen is not None else None,
                   rejected=fn(ex.rejected) if ex.rejected is not None else None)


def final_only(ex: Example) -> Example:
    """The final answers only: reasoning is dropped from every message."""
    if not any(m.thinking for m in ex.all_messages()):
        return ex
    return _map_messages(ex, lambda m: replace(m, thinking=None) if m.thinking else m)


def think_tags(m: Message) -> Message:
    """Reasoning moved into the content as `<think>\\n...\\n</think>\\n\\n` before the answer (DeepSeek-R1 style)."""
    if not m.thinking or m.role != "assistant":
        return m
    tagged = f"<think>\n{m.thinking}\n</think>"
    return replace(m, content=f"{tagged}\n\n{m.content}" if m.content else tagged, thinking=None)


def final_and_reasoning(ex: Example, format_holds_reasoning: bool) -> Example:
    """Answers with their reasoning: left in the reasoning field when the target's format writes it, else tagged."""
    if format_holds_reasoning or not any(m.thinking for m in ex.all_messages()):
        return ex
    return _map_messages(ex, think_tags)


def chain_of_thought_turns(ex: Example, instructions: str = THINKING_INSTRUCTIONS,
                           final_prompt: str = FINAL_ANSWER_PROMPT) -> Example | Issue:
    """Each assistant reply with reasoning becomes: the thinking instructions appended to the user turn before it
    (a new user turn when none precedes), the reasoning as an assistant turn, the final-answer prompt as a user
    turn, then the answer. User and assistant keep alternating, so Bedrock's rules still hold."""
    for name, reply in (("chosen", ex.chosen), ("rejected", ex.rejected)):
        if reply is not None and reply.thinking:
            return _issue(ex, "strategy_unsupported", f"{name}.thinking",
                          f"chain_of_thought_turns cannot split the {name} reply (a preference reply is one message) "
                          "into reasoning and answer turns; use final_and_reasoning or final_only for preference data")
    if not any(m.thinking for m in ex.messages):
        return ex
    out: list[Message] = []
    for m in ex.messages:
        if m.role != "assistant" or not m.thinking:
            out.append(m)
            continue
        if out and out[-1].role == "user":
            prev = out[-1]
            out[-1] = replace(prev, content=f"{prev.content}\n\n{instructions}" if prev.content else instructions)
        else:
            out.append(Message("user", instructions))
        out.append(Message("assistant", m.thinking, weight=m.weight))
        out.append(Message("user", final_prompt))
        out.append(replace(m, thinking=None))
    return replace(ex, messages=tuple(out))


@cache
def _validator(schema_json: bytes) -> Any:
    from jsonschema.validators import validator_for

    schema = orjson.loads(schema_json)
    return validator_for(schema)(schema)


def _schema_problem(value: Any, schema: dict[str, Any] | None) -> str | None:
    """Why value does not match the schema, naming the schema rule (never quoting the value: it may be private)."""
    if schema is None:
        return None
    from jsonschema.exceptions import best_match

    error = best_match(_validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)).iter_errors(value))
    if error is None:
        return None
    rule = orjson.dumps(error.validator_value).decode()
    rule = rule if len(rule) <= 80 else rule[:77] + "..."
    return f"does not match the JSON schema: at {error.json_path} the rule {error.validator!r} ({rule}) fails"


def _parse(m: Message) -> tuple[Any, str | None]:
    try:
        return orjson.loads(m.content), None
    except orjson.JSONDecodeError as e:
        return None, str(e)


def _replies(ex: Example) -> Iterator[tuple[str, Message, bool]]:
    """(field path, assistant reply, must it hold) for every text reply; a rejected reply may be anything."""
    for i, m in enumerate(ex.messages):
        if m.role == "assistant" and not m.tool_calls:
            yield f"messages[{i}]", m, True
    if ex.chosen is not None and not ex.chosen.tool_calls:
        yield "chosen", ex.chosen, True
    if ex.rejected is not None and not ex.rejected.tool_calls:
        yield "rejected", ex.rejected, False


def json_replies(ex: Example, schema: dict[str, Any] | None = None) -> Example | Issue:
    """Every assistant reply parsed as JSON (and checked against schema), rewritten compact on one line."""
    new: dict[str, Message] = {}
    for path, m, required in _replies(ex):
        value, error = _parse(m)
        problem = (f"is not valid JSON ({error})" if error is not None
                   else _schema_problem(value, schema))
        if problem is not None:
            if required:
                code = "reply_not_json" if error is not None else "reply_schema_mismatch"
                return _issue(ex, code, f"{path}.content",
                              f"{path}.content {problem}; the json output needs every assistant reply to be JSON "
                              "matching the schema: fix the reply or drop the example")
            continue
        compact = orjson.dumps(value).decode()
        if compact != m.content:
            new[path] = replace(m, content=compact)
    return _with_replies(ex, new) if new else ex


def _with_replies(ex: Example, new: Mapping[str, Message]) -> Example:
    msgs = tuple(new.get(f"messages[{i}]", m) for i, m in enumerate(ex.messages))
    return replace(ex, messages=msgs, chosen=new.get("chosen", ex.chosen), rejected=new.get("rejected", ex.rejected))


def tool_definition(tool: Tool, schema: dict[str, Any] | None) -> dict[str, Any]:
    return {"type": "function", "function": {"name": tool.name, "description": tool.description,
                                             "parameters": schema if schema is not None else {"type": "object"}}}


def tool_call_reply(ex: Example, tool: Tool | None = None, schema: dict[str, Any] | None = None) -> Example | Issue:
    """The final reply (an SFT example's last message; a preference pair's chosen and, when it is a JSON object,
    rejected reply) as a call of `tool` with the reply's JSON object as arguments. Earlier turns stay text.
    Call ids continue the example's numbering ("call_<n>"), the ids Vertex and Hugging Face lines get on decode."""
    tool = tool or Tool()
    calls_before = sum(len(m.tool_calls) for m in ex.messages)
    if ex.kind == "sft":
        finals: list[tuple[str, Message, bool]] = [(f"messages[{len(ex.messages) - 1}]", ex.messages[-1], True)]
    else:
        finals = [(name, m, name == "chosen") for name, m in (("chosen", ex.chosen), ("rejected", ex.rejected))
                    if m is not None]
    new: dict[str, Message] = {}
    for path, m, required in finals:
        if m.role != "assistant" or m.tool_calls:
            if required:
                what = "already calls tools" if m.tool_calls else f"is a {m.role} message"
                return _issue(ex, "strategy_unsupported", path,
                              f"the final reply {what}; the tool_call output turns a final text reply into a call")
            continue
        value, error = _parse(m)
        problem = (f"is not valid JSON ({error})" if error is not None
                   else "is not a JSON object (tool arguments are an object)" if not isinstance(value, dict)
                   else _schema_problem(value, schema))
        if problem is not None:
            if required:
                code = "reply_not_json" if error is not None else "reply_schema_mismatch"
                return _issue(ex, code, f"{path}.content",
                              f"{path}.content {problem}; the tool_call output needs the final reply to be the "
                              "tool's JSON arguments: fix the reply or drop the example")
            continue
        call = ToolCall(f"call_{calls_before}", tool.name, orjson.dumps(value).decode())
        calls_before += 1
        new[path] = replace(m, content="", tool_calls=(call,))
    if not new:
        return ex
    tools = ex.tools
    if not any(isinstance(t, Mapping) and (t.get("function") or {}).get("name") == tool.name for t in tools):
        tools = (*tools, tool_definition(tool, schema))
    return replace(_with_replies(ex, new), tools=tools)


# -- applying a strategy for a target ----------------------------------------------------------------

_PROBE = "ftlib-probe-reasoning-4d1c"


def _probe(kind: str, reply: Message) -> Example:
    if kind == "preference":
        return Example(messages=(Message("user", "q"),), chosen=reply, rejected=Message("assistant", "b"))
    return Example(messages=(Message("user", "q"), reply))


@cache
def holds_reasoning(fmt: Format) -> bool:
    """Whether the format writes an assistant reply's reasoning (seen by encoding a probe, so no target is named)."""
    try:
        line = fmt.encode(_probe(fmt.kind, Message("assistant", "a", thinking=_PROBE)))
    except FormatError:
        return False
    return _PROBE.encode() in orjson.dumps(line)


@cache
def holds_final_tool_call(fmt: Format) -> bool:
    try:
        fmt.encode(_probe(fmt.kind, Message("assistant", "", tool_calls=(ToolCall("call_0", "f", "{}"),))))
    except FormatError:
        return False
    return True


def check(strategy: Strategy, target: str) -> None:
    """Refuse, before any example is read, a strategy the target cannot express at all."""
    if strategy.output != "tool_call":
        return
    pick = formats.picker(target)
    fmt = pick("sft")
    if fmt is not None and not holds_final_tool_call(fmt):
        raise ValueError(f"providers.{target}.strategy: output tool_call needs a format that holds tool calls, and "
                         f"{fmt.name} does not; use output json (or text) for {target}")


def apply(ex: Example, strategy: Strategy, fmt: Format) -> Example | Issue:
    """The example shaped by the strategy for this format: output first (on the replies as ingested), then
    reasoning (which may add turns that are not JSON)."""
    shaped: Example | Issue = ex
    match strategy.output:
        case "text":
            pass
        case "json":
            shaped = json_replies(ex, strategy.json_schema)
        case "tool_call":
            shaped = tool_call_reply(ex, strategy.tool, strategy.json_schema)
        case _:
            assert_never(strategy.output)
    if isinstance(shaped, Issue):
        return shaped
    match strategy.reasoning:
        case "as_is":
            return shaped
        case "final_only":
            return final_only(shaped)
        case "final_and_reasoning":
            keep_field = strategy.reasoning_format == "auto" and holds_reasoning(fmt)
            return final_and_reasoning(shaped, keep_field)
        case "chain_of_thought_turns":
            return chain_of_thought_turns(shaped, strategy.thinking_instructions, strategy.final_answer_prompt)
        case _:
            assert_never(strategy.reasoning)


def apply_all(examples: Iterable[Example], strategy: Strategy, target: str) -> tuple[list[Example], list[Issue]]:
    """Shape examples for a target (or format name): the shaped examples, and an Issue for each one skipped.
    Examples the target cannot hold at all pass through (export reports those itself)."""
    pick = formats.picker(target)
    kept: list[Example] = []
    skipped: list[Issue] = []
    for ex in examples:
        fmt = pick(ex.kind)
        shaped = apply(ex, strategy, fmt) if fmt is not None else ex
        (skipped if isinstance(shaped, Issue) else kept).append(shaped)  # type: ignore[arg-type]
    return kept, skipped


__all__ = [
    "FINAL_ANSWER_PROMPT", "SHORTHANDS", "THINKING_INSTRUCTIONS", "Strategy", "Tool", "apply", "apply_all",
    "chain_of_thought_turns", "check", "final_and_reasoning", "final_only", "for_target", "from_params",
    "holds_reasoning",
    "json_replies", "think_tags", "tool_call_reply", "tool_definition",
]
