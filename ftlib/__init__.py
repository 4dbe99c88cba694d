"""ftlib: prepare LLM fine-tuning data and run fine-tuning jobs reproducibly."""

from ftlib.issues import Issue
from ftlib.records import Attachment, Example, Message, ToolCall

__version__ = "0.1.0"

__all__ = ["Attachment", "Example", "Issue", "Message", "ToolCall", "__version__"]
