"""Open-weight training reads the Hugging Face conversational files: tool links must hold, nothing else is fixed."""

from __future__ import annotations

from ftlib.checks import Sink, check_tools
from ftlib.records import Example


def check_example(ex: Example, s: Sink) -> None:
    check_tools(ex, s, unanswered="warning")
