"""Open-weight models: no provider limit or price; the trainer's own tokenizer gives exact counts at preflight."""

from __future__ import annotations

from ftlib.limits import PILLOW_MAX_PIXELS, ImageLimits, ModelSpec, SplitLimits

# Counting for reports before a tokenizer is loaded: tiktoken o200k_base as a proxy (labelled an estimate).
OPEN_WEIGHT = ModelSpec("open-weight", None, "warning", "no provider limit (your trainer's max_length decides)",
                        exact=False, price_source="no price: you train on your own hardware", image_rule="none",
                        default_epochs=3)  # transformers TrainingArguments.num_train_epochs default

# datasets' Image feature and transformers' image processors open images with Pillow, which refuses larger ones.
IMAGE_LIMITS = ImageLimits(None, None, PILLOW_MAX_PIXELS,
                           "Pillow's decompression-bomb limit (datasets and transformers load images with Pillow)")

DATASET_LIMITS: dict[str, SplitLimits] = {
    "train": SplitLimits(1, None, None, "open-weight training: no provider minimum"),
    "validation": SplitLimits(None, None, None, "open-weight training: no provider minimum"),
}
