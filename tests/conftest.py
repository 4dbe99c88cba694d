"""Shared test set-up: offline tokenizer cache, telemetry off, no credentials leaking in from the host."""

from __future__ import annotations

import os
from pathlib import Path

from tiny_model import tiny_model  # noqa: F401  (the offline test model, shared by the training tests)

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(DATA / "tiktoken"))
os.environ["DO_NOT_TRACK"] = "1"
os.environ["DVC_NO_ANALYTICS"] = "1"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["ANONYMIZED_TELEMETRY"] = "false"
for _var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AWS_PROFILE", "GOOGLE_APPLICATION_CREDENTIALS"):
    os.environ.pop(_var, None)
