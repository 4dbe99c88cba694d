"""A tiny random Llama with a ChatML template, built offline, so training tests need no model hub.

Register the session fixture in tests/conftest.py with `from tiny_model import tiny_model  # noqa: F401`
(tests/ has no __init__.py, so pytest puts it on sys.path before importing conftest.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

SPECIALS = ("<|im_start|>", "<|im_end|>", "<|pad|>")
VOCAB_SIZE = 2000
SEED = 1234

# ChatML with `{% generation %}` around everything the assistant writes (reasoning, text, tool calls and the
# closing <|im_end|>), so TRL's assistant_only_loss can mask the rest. Tools go in a system block first.
# transformers renders with trim_blocks/lstrip_blocks, so every newline is an explicit '\n' string.
CHAT_TEMPLATE = """\
{%- if tools %}
{{- '<|im_start|>system\\n' }}
{%- if messages and messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}
{{- 'You may call these functions:' }}
{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}
{{- '<|im_end|>\\n' }}
{%- elif messages and messages[0].role == 'system' %}
{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
  {%- if message.content is string %}
    {%- set text = message.content %}
  {%- elif message.content %}
    {%- set text = message.content | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('') %}
  {%- else %}
    {%- set text = '' %}
  {%- endif %}
  {%- if message.role == 'system' %}
    {%- if not loop.first %}{{- '<|im_start|>system\\n' + text + '<|im_end|>\\n' }}{%- endif %}
  {%- elif message.role == 'assistant' %}
    {{- '<|im_start|>assistant\\n' }}
    {%- generation %}
    {%- if message.reasoning_content %}{{- '<think>\\n' + message.reasoning_content + '\\n</think>\\n' }}{%- endif %}
    {{- text }}
    {%- for call in message.tool_calls or [] %}
      {%- set payload = {'name': call.function.name, 'arguments': call.function.arguments} %}
      {{- '\\n<tool_call>\\n' + (payload | tojson) + '\\n</tool_call>' }}
    {%- endfor %}
    {{- '<|im_end|>' }}
    {%- endgeneration %}
    {{- '\\n' }}
  {%- elif message.role == 'tool' %}
    {{- '<|im_start|>tool\\n' + text + '<|im_end|>\\n' }}
  {%- else %}
    {{- '<|im_start|>' + message.role + '\\n' + text + '<|im_end|>\\n' }}
  {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
"""
# The same rendering without the markers: assistant-only loss is impossible with it (preflight must say so).
CHAT_TEMPLATE_NO_MARKERS = CHAT_TEMPLATE.replace("    {%- generation %}\n", "").replace(
    "    {%- endgeneration %}\n", "")

LOOKUP_TOOL = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Look up an order by its number",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string", "description": "The order number"}},
            "required": ["order_id"],
        },
    },
}

_QUESTIONS = [
    ("How do I reset my password?", "Open Settings, choose Security and click Reset password. We email you a link."),
    ("My invoice shows the wrong address.", "Sorry about that. Update the address under Billing and we re-issue it."),
    ("Can I change my plan mid-month?", "Yes. The change applies now and the price difference is prorated."),
    ("The app crashes when I upload a photo.", "Please update to the latest version; the upload crash is fixed."),
    ("How do I cancel my subscription?", "Go to Billing, click Cancel subscription and confirm. It ends at term end."),
    ("Do you ship to Canada?", "Yes, we ship to Canada in 5 to 8 business days."),
    ("I was charged twice this month.", "I am sorry. I have refunded the duplicate charge; it shows in 3 days."),
    ("How can I export my data?", "Use Settings, then Export. You get a ZIP file by email within an hour."),
    ("Is there a student discount?", "Yes, students get 40 percent off with a valid school email address."),
    ("My package arrived damaged.", "Sorry to hear that. Send a photo and we ship a replacement today."),
    ("How do I add a team member?", "Open Team, click Invite and enter their email address."),
    ("Can I get a refund?", "Refunds are available within 30 days of purchase. I can start one for you."),
    ("The login page does not load.", "Please clear your browser cache and try again, or use another browser."),
    ("Where can I find my receipts?", "Receipts are under Billing, then History. Each one can be downloaded."),
    ("Do you have a phone number?", "We answer by chat and email only, every day from 8 to 20."),
    ("How do I turn on two factor login?", "Go to Security and enable Two factor. Scan the code with your app."),
    ("Why is my account locked?", "Too many wrong passwords lock it for 15 minutes. Then try again."),
    ("Can I pay by bank transfer?", "Yes, choose Bank transfer at checkout and use the reference shown."),
    ("How do I change my email?", "Open Profile, edit Email and confirm the link we send to the new address."),
    ("The discount code does not work.", "Codes are case sensitive and expire; check the date and spelling."),
]
_WORSE = "I do not know. Please ask someone else."
_SYSTEM = "You are a helpful support agent for Acme."


def _tool_conversation(order_id: str, status: str) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": _SYSTEM},
            {"role": "user", "content": f"Where is my order {order_id}?"},
            {"role": "assistant", "content": "",
             "reasoning_content": "The user wants an order status; look it up.",
             "tool_calls": [{"type": "function",
                             "function": {"name": "lookup_order", "arguments": {"order_id": order_id}}}]},
            {"role": "tool", "name": "lookup_order", "content": json.dumps({"status": status})},
            {"role": "assistant", "content": f"Your order {order_id} is {status}."},
        ],
        "tools": [LOOKUP_TOOL],
    }


def sft_examples(n: int = 24) -> list[dict[str, Any]]:
    """Short support chats in the hf-messages shape, two of them with a tool call and reasoning."""
    out: list[dict[str, Any]] = [_tool_conversation("A-1001", "shipped"), _tool_conversation("B-2002", "delayed")]
    for i in range(n - len(out)):
        q, a = _QUESTIONS[i % len(_QUESTIONS)]
        out.append({"messages": [{"role": "system", "content": _SYSTEM},
                                 {"role": "user", "content": q},
                                 {"role": "assistant", "content": a}]})
    return out


def preference_examples(n: int = 16) -> list[dict[str, Any]]:
    """Support chats in the conversational trl-preference shape: the helpful answer beats a useless one."""
    out = []
    for i in range(n):
        q, a = _QUESTIONS[i % len(_QUESTIONS)]
        out.append({"prompt": [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": q}],
                    "chosen": [{"role": "assistant", "content": a}],
                    "rejected": [{"role": "assistant", "content": _WORSE}]})
    return out


def corpus() -> Iterator[str]:
    """Texts to train the tokenizer on: everything the sample examples can render to."""
    for ex in sft_examples():
        yield json.dumps(ex, ensure_ascii=False)
        for m in ex["messages"]:
            yield m.get("content") or ""
    for ex in preference_examples():
        yield json.dumps(ex, ensure_ascii=False)
    yield "You may call these functions: <tool_call> </tool_call> <think> </think> system user assistant tool"


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def build_tiny_model(out_dir: Path, texts: Iterable[str], *, generation_markers: bool = True, seed: int = SEED) -> Path:
    """Train a ~2,000-token byte-level BPE on `texts` and save it with a random 2-layer Llama into `out_dir`.

    Deterministic: the same texts and seed give the same files. `generation_markers=False` saves a template without
    `{% generation %}`, the case preflight must reject for assistant-only loss.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out_dir.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=list(SPECIALS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(list(texts), trainer=trainer)

    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|pad|>",
                                  additional_special_tokens=["<|im_start|>"], model_max_length=4096)
    tok.chat_template = CHAT_TEMPLATE if generation_markers else CHAT_TEMPLATE_NO_MARKERS
    tok.save_pretrained(out_dir)

    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, max_position_embeddings=1024, tie_word_embeddings=False,
        bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a tiny random Llama + tokenizer with generation markers (built once per session, ~1 s)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"), corpus())
