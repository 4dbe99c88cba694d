"""Open-weight training reads the Hugging Face conversational files: tool links must hold, nothing else is fixed."""

from __future__ import annotations

from ftlib.checks import Sink, check_image_limits, check_tools
from ftlib.records import Example
from ftlib.targets.huggingface.models import IMAGE_LIMITS


def check_example(ex: Example, s: Sink) -> None:
    check_image_limits(ex, s, IMAGE_LIMITS, "open-weight training")
    check_tools(ex, s, unanswered="warning")
