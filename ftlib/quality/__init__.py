"""Data-quality checks no fine-tuning tool offers: near-duplicates at ingest, leakage and outliers after the split."""
