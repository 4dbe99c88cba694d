"""Evaluate tuned models on the held-out split, next to their model ids (the `evaluate` stage).

    ftlib evaluate build/export/<export> --provider P --out reports/eval/P.json

Modules: evalset (held-out examples -> prompt + reference), generator (the hook each target declares), cache
(replies already paid for), runner (bounded pool of calls), scoring (pure metrics), settings (params.yaml
`evaluate:`), stage (the stage both entry points call).
"""

from __future__ import annotations

from ftlib.evaluate.stage import Outcome, evaluate

__all__ = ["Outcome", "evaluate"]
