"""Gemini through Vertex AI tuning (google-genai): contents/systemInstruction lines, Vertex's rules, GCS + tunings."""

from __future__ import annotations

from ftlib.targets.base import Target
from ftlib.targets.gemini import models, rules
from ftlib.targets.gemini.formats import VERTEX_PREFERENCE, VERTEX_SFT
from ftlib.targets.gemini.hyperparameters import HYPERPARAMETERS

TARGET = Target(
    name="gemini",
    title="Gemini on Vertex AI",
    formats={"sft": VERTEX_SFT, "preference": VERTEX_PREFERENCE},
    models=models.MODELS,
    dataset_limits=models.DATASET_LIMITS,
    rules=(rules.check_example,),
    default_base_model=models.DEFAULT_BASE_MODEL,
    hyperparameters=HYPERPARAMETERS,
    backend="ftlib.targets.gemini.backend:VertexBackend",
    generator="ftlib.targets.gemini.generate:VertexGenerator",
    console="https://console.cloud.google.com/vertex-ai/studio/tuning",
)
