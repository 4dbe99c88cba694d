"""The job ledger under models/ and the model registry derived from it (tracked in git, so deterministic).

One JSON file per job key (models/jobs/<provider>/<key>.json) is the source of truth; models/registry.json is a
view regenerated from those files. Uploads are cached per provider by file sha256 (models/uploads/<provider>.json)
so a re-run never pays for the same bytes twice. No timestamps, no run ids, never credentials.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from filelock import FileLock

from ftlib.jobs.lease import lock_dir
from ftlib.jobs.spec import JobState, JobStatus
from ftlib.jsonfile import write_json_atomic

log = logging.getLogger(__name__)


def _warn(message: str) -> None:
    """One plain line on stderr (and the log): the CLI, `dvc repro` and a worker's log all show it."""
    log.debug(message)
    print(f"warning: {message}", file=sys.stderr, flush=True)

# Fields a job record may hold; anything else is refused so a credential can never slip in through **fields.
RECORD_FIELDS = frozenset({
    "job_key", "provider", "base_model", "method", "hyperparameters", "suffix", "attempt",
    "dataset_sha256", "validation_sha256", "train_file", "validation_file", "train_ref", "validation_ref",
    "job_id", "status", "model_id", "error", "console_url", "seed", "base_model_revision", "metrics",
    "duplicates_cancelled",  # other jobs found for the key after create, cancelled before they trained
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
        raise ValueError(f"{path}: not valid JSON ({e}); fix it (git checkout -- {path}) or delete it and re-run"
                         ) from None


def _read_record(path: Path) -> dict[str, Any] | None:
    """One job record; a corrupt one raises ValueError naming the file and the fix."""
    rec = _read_json(path)
    if rec is None:
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("job_key"), str) or not isinstance(rec.get("provider"), str):
        raise ValueError(f"{path}: not an ftlib job record (a JSON object with job_key and provider); restore it "
                         f"(git checkout -- {path}) or delete it and re-run")
    if rec.get("job_id") is not None and not isinstance(rec["job_id"], str):
        raise ValueError(f"{path}: job_id must be a string, got {rec['job_id']!r}; write it in quotes or delete the "
                         "file and re-run")
    return rec


class Ledger:
    """Ledger operations; every write holds one lock so concurrent providers cannot clobber registry.json."""

    def __init__(self, root: Path | str = Path("models")) -> None:
        self.root = Path(root)
        # Beside the ledger (never in $TMPDIR, so processes with different TMPDIRs share it), outside models/ so
        # it never shows up in git.
        self.lock_path = lock_dir(self.root) / f"ledger-{self.root.resolve().name}.lock"
        self._lock = FileLock(self.lock_path, timeout=60)
        self.skipped: list[str] = []  # corrupt records met by records(): one warning each, listed for callers

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
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            yield

    # job records
    def get(self, provider: str, key: str) -> dict[str, Any] | None:
        """The record of one key; if that very record is corrupt, ValueError says which file and how to fix it."""
        return _read_record(self.job_path(provider, key))

    def save(self, record: dict[str, Any]) -> dict[str, Any]:
        unknown = set(record) - RECORD_FIELDS
        if unknown:
            raise ValueError(f"registry record has unknown fields {sorted(unknown)}; allowed: {sorted(RECORD_FIELDS)}")
        with self.locked():
            write_json_atomic(self.job_path(record["provider"], record["job_key"]), record)
            self._rebuild_index()
        return record

    def update(self, provider: str, key: str, /, **fields: Any) -> dict[str, Any]:
        """Merge fields into the record (created if absent); a no-op change does not rewrite files."""
        with self.locked():
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
                try:
                    rec = _read_record(path)
                except ValueError as e:  # one damaged file must not block every other job of the provider
                    if str(path) not in self.skipped:
                        self.skipped.append(str(path))
                        _warn(f"skipped {e}")
                    continue
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
    def _uploads(self, provider: str) -> dict[str, str]:
        """The upload cache; a damaged one is only a cache: warn, start empty, upload again."""
        path = self._uploads_path(provider)
        try:
            cache = _read_json(path)
        except ValueError as e:
            _warn(f"ignored the upload cache (files will be uploaded again): {e}")
            return {}
        return cache if isinstance(cache, dict) else {}

    def upload_ref(self, provider: str, sha256: str) -> str | None:
        return self._uploads(provider).get(sha256)

    def record_upload(self, provider: str, sha256: str, ref: str) -> None:
        with self.locked():
            cache = self._uploads(provider)
            if cache.get(sha256) != ref:
                cache[sha256] = ref
                write_json_atomic(self._uploads_path(provider), cache)

    def forget_upload(self, provider: str, sha256: str) -> None:
        with self.locked():
            cache = self._uploads(provider)
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
