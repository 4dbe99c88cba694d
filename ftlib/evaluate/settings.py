"""params.yaml `evaluate:`: shared settings at the top, a section per target for overrides and the target's own keys.

    evaluate:
      max_tokens: 512        # generation settings are part of the reply cache key
      temperature: 0.0
      concurrency: 4
      compare_base: false    # also ask the untuned base model, so the report shows the gain
      <target>:              # overrides, plus keys the target's generator declares (settings_keys)
        concurrency: 2

Unknown keys are refused with the list of known ones, so a typo never silently falls back to a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ftlib import targets
from ftlib.evaluate.generator import Settings


class EvalSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int = Field(512, ge=1, le=65_536, description="longest reply, in tokens")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 for repeatable answers")
    seed: int | None = Field(None, description="sampling seed where the provider takes one")
    concurrency: int = Field(4, ge=1, le=64, description="calls in flight at once")
    compare_base: bool = Field(False, description="also evaluate the base model and report the gain")
    json_schema: str | None = Field(None, description="a JSON Schema file JSON replies must match")
    input_price_per_million: float | None = Field(None, ge=0, description="overrides the built-in price")
    output_price_per_million: float | None = Field(None, ge=0, description="overrides the built-in price")

    @property
    def generation(self) -> Settings:
        return Settings(max_tokens=self.max_tokens, temperature=self.temperature, seed=self.seed)

    def schema(self, base: Path = Path()) -> Any:
        """The configured JSON Schema, loaded and checked (None when not configured)."""
        if not self.json_schema:
            return None
        import orjson

        from ftlib.evaluate.scoring import schema_validator

        path = base / self.json_schema
        try:
            schema = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            raise FileNotFoundError(f"evaluate.json_schema: {path} does not exist; point it at a JSON Schema file"
                                    ) from None
        except orjson.JSONDecodeError as e:
            raise ValueError(f"evaluate.json_schema: {path} is not valid JSON ({e})") from None
        try:
            return schema_validator(schema)
        except Exception as e:  # jsonschema.SchemaError: say what is wrong with the schema itself
            raise ValueError(f"evaluate.json_schema: {path} is not a valid JSON Schema: {e}") from None


SHARED = frozenset(EvalSettings.model_fields)


def read(params: dict[str, Any], provider: str, generator_keys: frozenset[str]) -> tuple[EvalSettings, dict[str, Any]]:
    """(shared settings for this target, the target's own generator settings) from params.yaml `evaluate:`."""
    section = params.get("evaluate") or {}
    if not isinstance(section, dict):
        raise ValueError("params: `evaluate` must be a mapping of settings")
    names = set(targets.names())
    top = {k: v for k, v in section.items() if k not in names}
    unknown = sorted(set(top) - SHARED)
    if unknown:
        raise ValueError(f"params: evaluate.{unknown[0]} is not a setting; use one of: {', '.join(sorted(SHARED))}, "
                         f"or a section per target ({', '.join(sorted(names))})")
    own = section.get(provider) or {}
    if not isinstance(own, dict):
        raise ValueError(f"params: evaluate.{provider} must be a mapping of settings")
    unknown = sorted(set(own) - SHARED - generator_keys)
    if unknown:
        known = sorted(SHARED | generator_keys)
        raise ValueError(f"params: evaluate.{provider}.{unknown[0]} is not a setting for {provider}; use one of: "
                         f"{', '.join(known)}")
    merged = {**top, **{k: v for k, v in own.items() if k in SHARED}}
    try:
        shared = EvalSettings(**merged)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        scope = f"evaluate.{provider}" if where in own else "evaluate"
        raise ValueError(f"params: {scope}.{where}={err.get('input')!r}: {err['msg'].lower()}") from None
    return shared, {k: v for k, v in own.items() if k in generator_keys}
