"""Replies already paid for: one append-only JSONL per (provider, model id, generation settings), a line per prompt.

Spend once, like submit: a re-run, `dvc repro -f`, the Prefect flow or a run killed half-way asks the model only for
prompts it has no reply to. Lines are keyed by the prompt's hash, so an eval set that grows reuses every old reply.
A file lock per cache file serialises two entry points evaluating the same model at the same time: the second
finds the first's replies and makes no call. Lives under .ftlib/ (not tracked): replies are data, like the examples.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from filelock import FileLock

from ftlib.evaluate.generator import Reply, Settings
from ftlib.records import canonical_json

VERSION = 1  # raise when the request a generator builds changes meaning, so old replies are not reused


def cache_key(provider: str, model_id: str, settings: Settings, revision: str | None = None) -> str:
    ident = {"version": VERSION, "provider": provider, "model": model_id, "revision": revision,
             "settings": settings.to_dict()}
    return hashlib.sha256(canonical_json(ident)).hexdigest()[:32]


class ReplyCache:
    def __init__(self, root: Path, provider: str, model_id: str, settings: Settings,
                 revision: str | None = None) -> None:
        self.key = cache_key(provider, model_id, settings, revision)
        self.path = Path(root) / provider / f"{self.key}.jsonl"
        self.header = {"model_id": model_id, "revision": revision, "settings": settings.to_dict()}
        self._write = threading.Lock()
        self.replies: dict[str, Reply] = {}
        self.metrics: dict[str, dict[str, Any]] = {}  # eval set sha256 -> figures computed on it
        self._load()

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        for line in data.splitlines():
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:  # a line cut by kill -9: that prompt is simply asked again
                continue
            if "prompt" in row:
                self.replies[row["prompt"]] = Reply.from_dict(row["reply"])
            elif "metrics_for" in row:
                self.metrics[row["metrics_for"]] = row["metrics"]

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Held while calling: a second evaluator of the same model waits, then re-reads and finds the replies."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path) + ".lock"):
            self.replies.clear()
            self.metrics.clear()
            self._load()
            yield

    def _append(self, row: dict[str, Any]) -> None:
        with self._write:
            size = self.path.stat().st_size if self.path.exists() else 0
            with open(self.path, "ab+") as fh:
                if size == 0:
                    fh.write(orjson.dumps({"header": self.header}) + b"\n")
                else:
                    fh.seek(size - 1)
                    if fh.read(1) != b"\n":  # a line cut by kill -9: end it so the next one parses
                        fh.write(b"\n")
                fh.write(orjson.dumps(row) + b"\n")
                fh.flush()
                os.fsync(fh.fileno())

    def add(self, prompt_key: str, reply: Reply) -> None:
        self._append({"prompt": prompt_key, "reply": reply.to_dict()})
        self.replies[prompt_key] = reply

    def add_metrics(self, eval_sha256: str, metrics: dict[str, Any]) -> None:
        self._append({"metrics_for": eval_sha256, "metrics": metrics})
        self.metrics[eval_sha256] = metrics
