"""Gemini on Vertex: one leading systemInstruction, user first and model last, named function responses, and
text-only preference examples."""

from __future__ import annotations

from ftlib.checks import Sink, check_image_limits, check_tools, fields
from ftlib.records import Example
from ftlib.targets.gemini.formats import preference_not_text
from ftlib.targets.gemini.models import IMAGE_LIMITS


def check_example(ex: Example, s: Sink) -> None:
    convo = [(i, m) for i, m in enumerate(ex.messages) if m.role != "system"]
    for i, m in enumerate(ex.messages):
        if m.role == "system" and any(j < i for j, _ in convo):
            s.error("system_not_leading", f"messages[{i}].role",
                    "Vertex takes one systemInstruction before the conversation; move this system text first")
    if convo and convo[0][1].role != "user":
        s.error("first_message_not_user", f"messages[{convo[0][0]}].role",
                "Vertex conversations must start with a user turn; add or move the user message first")
    if ex.kind == "sft" and convo and convo[-1][1].role != "assistant":
        s.error("last_message_not_model", f"messages[{convo[-1][0]}].role",
                "Vertex conversations must end with a model (assistant) turn; add the reply")
    for path, m in fields(ex):
        for j, a in enumerate(m.attachments):
            if a.data is not None or not (a.uri or "").startswith("gs://"):
                s.warn("attachment_not_in_gcs", f"{path}.attachments[{j}]",
                       "Vertex tuning reads files from Cloud Storage (fileData.fileUri gs://...); upload it first")
        if m.role == "tool" and not m.name and not m.tool_call_id:
            s.error("function_response_unnamed", f"{path}.name",
                    "a Vertex functionResponse needs the function name; set name or tool_call_id")
    if ex.kind == "preference" and (found := preference_not_text(ex)):
        s.error("preference_not_text", found[0],
                f"Vertex preference tuning takes text only; this example has {found[1]}: drop it from the "
                "preference data, or train on it with supervised tuning")
    check_image_limits(ex, s, IMAGE_LIMITS, "Vertex")
    check_tools(ex, s, unanswered="error")

