"""Claude on Bedrock: the one fine-tunable model (limits, price, end of life) and Bedrock's dataset-size rules."""

from __future__ import annotations

from ftlib.limits import ModelSpec, SplitLimits

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0:200k"
HAIKU_EOL = "2026-09-10"
DEFAULT_BASE_MODEL = HAIKU

MODELS: tuple[ModelSpec, ...] = (
    # Claude 3 Haiku on Bedrock. 32,000 tokens per record, as enforced by AWS's own data validator
    # (github.com/aws-samples/amazon-bedrock-workshop, 03_Model_customization/bedrock-models-fine-tuning/
    # claude-haiku/DataValidation/README.md @ fc2bf56). Bedrock rejects longer records, hence "error".
    ModelSpec("anthropic.claude-3-haiku-20240307", 32_000, "error",
              "AWS Claude 3 Haiku fine-tuning data validator (aws-samples/amazon-bedrock-workshop): max 32,000 "
              "tokens per record", chars_per_token=3.5, exact=False, price_per_million=4.0,
              price_source="estimate: Bedrock list price for Claude 3 Haiku customization training not verified "
                           "offline (assumed USD 0.004 per 1K tokens, 2026-11); override with prices=",
              status="deprecated",
              status_note="Claude 3 Haiku on Bedrock is Legacy with end of life 2026-09-10 (PROVIDERS.md): Bedrock "
                          "may refuse new customization jobs; it is the only fine-tunable Claude, so if Bedrock "
                          "refuses, export the same data for Vertex, OpenAI or Hugging Face",
              image_rule="none", default_epochs=2),
)

# aws-samples/amazon-bedrock-workshop claude-haiku DataValidation/README.md @ fc2bf56: training 32-10,000
# lines, validation 32-1,000 lines, training + validation at most 10,000.
DATASET_LIMITS: dict[str, SplitLimits] = {
    "train": SplitLimits(32, None, 10_000, "Bedrock Claude 3 Haiku: 32 to 10,000 training records"),
    "validation": SplitLimits(32, None, 1_000, "Bedrock Claude 3 Haiku: 32 to 1,000 validation records"),
}
