"""The job ledger under models/ and the model registry derived from it (tracked in git, so deterministic).

One JSON file per job key (models/jobs/<provider>/<key>.json) is the source of truth; models/registry.json is a
view regenerated from those files. Uploads are cached per provider by file sha256 (models/uploads/<provider>.json)
so a re-run never pays for the same bytes twice. No timestamps, no run ids, never credentials.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from filelock import FileLock

from ftlib.jobs.spec import JobState, JobStatus
from ftlib.jsonfile import write_json_atomic

# Fields a job record may hold; anything else is refused so a credential can never slip in through **fields.
RECORD_FIELDS = frozenset({
    "job_key", "provider", "base_model", "method", "hyperparameters", "suffix", "attempt",
    "dataset_sha256", "validation_sha256", "train_file", "validation_file", "train_ref", "validation_ref",
    "job_id", "status", "model_id", "error", "console_url", "seed", "base_model_revision", "metrics",
    "eval_sha256", "evaluation",  # the held-out file the model was scored on, and the scores (ftlib.evaluate)
})
SUBMITTING = "submitting"  # intent recorded, no job id yet
SUBMITTED = "submitted"  # job created, state not polled yet


def _read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except orjson.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e}); fix or delete the file and re-run") from None


class Ledger:
    """Ledger operations; every write holds one lock so concurrent providers cannot clobber registry.json."""

    def __init__(self, root: Path | str = Path("models")) -> None:
        self.root = Path(root)
        # The lock lives outside models/ so it never shows up in git.
        digest = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:16]
        self._lock = FileLock(Path(tempfile.gettempdir()) / f"ftlib-registry-{digest}.lock", timeout=60)

    # paths
    def job_path(self, provider: str, key: str) -> Path:
        return self.root / "jobs" / provider / f"{key}.json"

    @property
    def index_path(self) -> Path:
        return self.root / "registry.json"

    def _uploads_path(self, provider: str) -> Path:
        return self.root / "uploads" / f"{provider}.json"

    @contextmanager
    def locked(self) -> Iterator[None]:
        with self._lock:
            yield

    @contextmanager
    def key_lock(self, provider: str, key: str) -> Iterator[None]:
        """Serialises submitters of one job key on this machine (the provider lookup covers other machines)."""
        digest = hashlib.sha256(f"{self.root.resolve()}:{provider}:{key}".encode()).hexdigest()[:16]
        with FileLock(Path(tempfile.gettempdir()) / f"ftlib-submit-{digest}.lock"):
            yield

    # job records
    def get(self, provider: str, key: str) -> dict[str, Any] | None:
        return _read_json(self.job_path(provider, key))

    def save(self, record: dict[str, Any]) -> dict[str, Any]:
        unknown = set(record) - RECORD_FIELDS
        if unknown:
            raise ValueError(f"registry record has unknown fields {sorted(unknown)}; allowed: {sorted(RECORD_FIELDS)}")
        with self._lock:
            write_json_atomic(self.job_path(record["provider"], record["job_key"]), record)
            self._rebuild_index()
        return record

    def update(self, provider: str, key: str, /, **fields: Any) -> dict[str, Any]:
        """Merge fields into the record (created if absent); a no-op change does not rewrite files."""
        with self._lock:
            record = self.get(provider, key) or {"provider": provider, "job_key": key}
            merged = {**record, **fields}
            if merged == record and self.job_path(provider, key).exists():
                return record
            return self.save(merged)

    def records(self, provider: str | None = None) -> list[dict[str, Any]]:
        """All job records, sorted by (provider, job key) so listings are stable."""
        base = self.root / "jobs"
        dirs = [base / provider] if provider else sorted(p for p in base.glob("*") if p.is_dir())
        out = []
        for d in dirs:
            for path in sorted(d.glob("*.json")):
                rec = _read_json(path)
                if rec is not None:
                    out.append(rec)
        return out

    def find_by_job_id(self, provider: str, job_id: str) -> dict[str, Any] | None:
        return next((r for r in self.records(provider) if r.get("job_id") == job_id), None)

    def record_status(self, provider: str, s: JobStatus) -> dict[str, Any] | None:
        """The one place a polled job state reaches the ledger (wait, `ftlib status`, `ftlib cancel`)."""
        record = self.find_by_job_id(provider, s.job_id)
        if record is None:
            return None
        fields: dict[str, Any] = {"status": s.state.value if s.state is not JobState.UNKNOWN else s.raw_state}
        for name in ("model_id", "error", "console_url", "metrics"):
            if getattr(s, name):
                fields[name] = getattr(s, name)
        return self.update(provider, record["job_key"], **fields)

    # upload cache
    def upload_ref(self, provider: str, sha256: str) -> str | None:
        return (_read_json(self._uploads_path(provider)) or {}).get(sha256)

    def record_upload(self, provider: str, sha256: str, ref: str) -> None:
        with self._lock:
            cache = _read_json(self._uploads_path(provider)) or {}
            if cache.get(sha256) != ref:
                cache[sha256] = ref
                write_json_atomic(self._uploads_path(provider), cache)

    def forget_upload(self, provider: str, sha256: str) -> None:
        with self._lock:
            cache = _read_json(self._uploads_path(provider)) or {}
            if cache.pop(sha256, None) is not None:
                write_json_atomic(self._uploads_path(provider), cache)

    # the view
    def index(self) -> dict[str, Any]:
        """{dataset_sha256: {provider: entry}}; with several jobs per pair, the highest attempt wins, then the key."""
        view: dict[str, dict[str, Any]] = {}
        ranked = sorted(self.records(), key=lambda r: (int(r.get("attempt") or 0), r["job_key"]))
        for rec in ranked:
            sha = rec.get("dataset_sha256")
            if not sha:
                continue
            view.setdefault(sha, {})[rec["provider"]] = {
                "base_model": rec.get("base_model"),
                "hyperparameters": rec.get("hyperparameters") or {},
                "job_id": rec.get("job_id"),
                "job_key": rec["job_key"],
                "model_id": rec.get("model_id"),
                "status": rec.get("status"),
            }
        return view

    def _rebuild_index(self) -> None:
        view = self.index()
        if _read_json(self.index_path) != view:
            write_json_atomic(self.index_path, view)
