"""Leases: one submitter at a time may look for, upload and create the job of one key.

Three kinds, each taken where it applies, always in this order (so two submitters never wait on each other in a
circle):
1. a lock file beside the ledger (`<project>/.ftlib/locks/`): every process on this machine that uses this ledger,
   whatever its TMPDIR;
2. a Prefect global concurrency limit of 1 named for the key, when the submitter runs inside a Prefect flow or task
   run: every worker of that Prefect server, on any machine;
3. an object created only if absent (S3 `If-None-Match: *`, GCS `if_generation_match=0`) next to the DVC remote,
   when the project's default remote is s3:// or gs://: every machine that shares the remote.

A lease is held from the lookup to the ledger write after create, so a second submitter waits and then finds the
job. Leases can expire (a killed holder), and two clones on two machines with local remotes share none: the
reconciliation after create (ftlib.jobs.submit) is the backstop that keeps one job per key in those cases.

FTLIB_LEASE selects: `auto` (default: every kind that applies), `file` (the lock file only), or an s3:// / gs://
URL to hold the object lease there instead of beside the DVC remote.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
from filelock import FileLock, Timeout

from ftlib.errors import ConfigError, ProviderError

log = logging.getLogger(__name__)

ENV = "FTLIB_LEASE"
FILE_ONLY = "file"  # FTLIB_LEASE=file: only the lock file beside the ledger
TTL_S = 60.0  # an object lease not renewed for this long belongs to a dead submitter and may be taken over
WAIT_S = 3600.0  # how long a submitter waits for another one to finish (uploads of large files take a while)
POLL_S = 1.0
LOCKS = Path(".ftlib") / "locks"  # beside the ledger's folder: untracked, shared by every TMPDIR
LEASES = ".ftlib-leases"  # under the DVC remote's URL


class LeaseTimeout(ProviderError):
    """Another submitter held the lease for too long; nothing was created by this one."""


def lock_dir(ledger_root: Path) -> Path:
    """`<project>/.ftlib/locks` for a ledger at `<project>/models`: beside the ledger, never under $TMPDIR."""
    return Path(ledger_root).resolve().parent / LOCKS


@contextmanager
def file_lock(path: Path, what: str, say: Callable[[str], None], wait_s: float | None = None) -> Iterator[None]:
    """An flock-based lock file: the kernel releases it when the holder dies, so kill -9 never leaves it held."""
    wait_s = WAIT_S if wait_s is None else wait_s
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        say(f"waiting for another submitter on this machine ({what}, lock {path})")
        try:
            lock.acquire(timeout=wait_s)
        except Timeout:
            raise LeaseTimeout(f"{what}: another submitter on this machine held {path} for {wait_s:g}s; "
                               "if none is running, delete that file and re-run") from None
    try:
        yield
    finally:
        lock.release()


# -- Prefect --------------------------------------------------------------------------------------

def in_prefect_run() -> bool:
    """True inside a Prefect flow or task run (the deployment's submit task), where the server's limits apply."""
    try:
        from prefect.context import FlowRunContext, TaskRunContext
    except ImportError:
        return False
    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


@contextmanager
def prefect_lease(name: str, say: Callable[[str], None], wait_s: float | None = None) -> Iterator[None]:
    """A slot of a global concurrency limit of 1 named `name` on the Prefect server this run reports to.

    The server leases the slot and the client renews it while held, so a killed worker frees it after the lease
    runs out instead of blocking the key forever.
    """
    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import concurrency

    wait_s = WAIT_S if wait_s is None else wait_s
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, 1)
    started = time.monotonic()
    try:
        with concurrency(name, occupy=1, timeout_seconds=wait_s, strict=True, lease_duration=TTL_S,
                         raise_on_lease_renewal_failure=False):
            waited = time.monotonic() - started
            say(f"holding Prefect concurrency limit {name!r}"
                + (f" after waiting {waited:.1f}s for another run" if waited > 0.5 else ""))
            yield
    except TimeoutError:
        raise LeaseTimeout(f"another Prefect run held the concurrency limit {name!r} for {wait_s:g}s; "
                           "see it under Concurrency in the Prefect UI") from None


# -- object stores --------------------------------------------------------------------------------

class ObjectStore(Protocol):
    """Conditional operations on one object; `version` is the S3 ETag or the GCS generation."""

    url: str

    def create(self, body: bytes) -> str | None:
        """Write the object only if it does not exist; its version, or None if it exists."""
        ...

    def replace(self, body: bytes, version: str) -> str | None:
        """Overwrite it only if it still has `version`; the new version, or None if it changed or vanished."""
        ...

    def read(self) -> tuple[str, float, bytes] | None:
        """(version, seconds since it was last written by the store's clock, body), or None if absent."""
        ...

    def delete(self, version: str) -> None:
        """Delete it only if it still has `version`."""
        ...


class S3Object:
    """An S3 object written with If-None-Match / If-Match (S3 conditional writes, 2024)."""

    def __init__(self, bucket: str, key: str, *, endpoint_url: str | None = None, region: str | None = None,
                 profile: str | None = None) -> None:
        import boto3

        self.url = f"s3://{bucket}/{key}"
        self.bucket, self.key = bucket, key
        session = boto3.session.Session(profile_name=profile, region_name=region)
        self.s3 = session.client("s3", endpoint_url=endpoint_url)

    @staticmethod
    def _code(err: Any) -> str:
        return str(err.response.get("Error", {}).get("Code", ""))

    def create(self, body: bytes) -> str | None:
        from botocore.exceptions import ClientError

        try:
            return self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=body, IfNoneMatch="*")["ETag"]
        except ClientError as e:
            if self._code(e) in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                return None
            raise

    def replace(self, body: bytes, version: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            return self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=body, IfMatch=version)["ETag"]
        except ClientError as e:
            if self._code(e) in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412", "409",
                                 "404"):
                return None
            raise

    def read(self) -> tuple[str, float, bytes] | None:
        from botocore.exceptions import ClientError

        try:
            got = self.s3.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as e:
            if self._code(e) in ("NoSuchKey", "404"):
                return None
            raise
        date = got["ResponseMetadata"].get("HTTPHeaders", {}).get("date")
        now = parsedate_to_datetime(date) if date else None
        age = (now - got["LastModified"]).total_seconds() if now is not None else 0.0
        return got["ETag"], age, got["Body"].read()

    def delete(self, version: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.s3.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=version)
        except ClientError as e:
            if self._code(e) not in ("PreconditionFailed", "NoSuchKey", "412", "404"):
                raise


class GCSObject:
    """A GCS object written with if_generation_match (0 = only if absent)."""

    def __init__(self, bucket: str, key: str, *, project: str | None = None) -> None:
        from google.cloud import storage

        self.url = f"gs://{bucket}/{key}"
        self.blob_name = key
        self.bucket = storage.Client(project=project).bucket(bucket)

    def create(self, body: bytes) -> str | None:
        return self._write(body, 0)

    def replace(self, body: bytes, version: str) -> str | None:
        return self._write(body, int(version))

    def _write(self, body: bytes, generation: int) -> str | None:
        from google.api_core import exceptions

        blob = self.bucket.blob(self.blob_name)
        try:
            blob.upload_from_string(body, content_type="application/json", if_generation_match=generation)
        except (exceptions.PreconditionFailed, exceptions.NotFound):
            return None
        return str(blob.generation)

    def read(self) -> tuple[str, float, bytes] | None:
        from datetime import UTC, datetime

        blob = self.bucket.get_blob(self.blob_name)
        if blob is None:
            return None
        body = blob.download_as_bytes(if_generation_match=blob.generation)
        age = (datetime.now(UTC) - blob.updated).total_seconds() if blob.updated else 0.0
        return str(blob.generation), age, body

    def delete(self, version: str) -> None:
        from google.api_core import exceptions

        with suppress(exceptions.PreconditionFailed, exceptions.NotFound):
            self.bucket.blob(self.blob_name).delete(if_generation_match=int(version))


def object_store(url: str, name: str, remote: dict[str, Any] | None = None) -> ObjectStore:
    """The lease object `name` under an s3:// or gs:// URL (options as in DVC's remote config)."""
    remote = remote or {}
    scheme, _, rest = url.partition("://")
    bucket, _, prefix = rest.partition("/")
    key = "/".join(p for p in (prefix.strip("/"), LEASES, name) if p)
    if scheme == "s3" and bucket:
        return S3Object(bucket, key, endpoint_url=remote.get("endpointurl"), region=remote.get("region"),
                        profile=remote.get("profile"))
    if scheme == "gs" and bucket:
        return GCSObject(bucket, key, project=remote.get("projectname"))
    raise ConfigError(f"{ENV}={url!r}: use auto, file, s3://bucket/prefix or gs://bucket/prefix")


class ObjectLease:
    """Held while the object exists with our body; renewed every TTL/3 so only a dead holder's lease expires."""

    def __init__(self, store: ObjectStore, what: str, say: Callable[[str], None], ttl_s: float | None = None,
                 wait_s: float | None = None, poll_s: float | None = None) -> None:
        self.store, self.what, self.say = store, what, say
        self.ttl_s = TTL_S if ttl_s is None else ttl_s
        self.wait_s = WAIT_S if wait_s is None else wait_s
        self.poll_s = POLL_S if poll_s is None else poll_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(6)}"
        self.version: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._beat = 0

    def _body(self) -> bytes:
        self._beat += 1  # a new body each time, so each write gets a new ETag
        return orjson.dumps({"owner": self.owner, "what": self.what, "beat": self._beat, "ttl_s": self.ttl_s})

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait_s
        told = False
        while True:
            version = self.store.create(self._body())
            if version is not None:
                self.version = version
                break
            current = self.store.read()
            if current is not None and current[1] > self.ttl_s:
                holder = _owner(current[2])
                version = self.store.replace(self._body(), current[0])  # take over only that stale version
                if version is not None:
                    self.say(f"took over the lease {self.store.url} from {holder}, silent for {current[1]:.0f}s")
                    self.version = version
                    break
            if current is not None and not told:
                self.say(f"waiting for another submitter ({_owner(current[2])}) holding {self.store.url}")
                told = True
            if time.monotonic() > deadline:
                raise LeaseTimeout(f"{self.what}: {self.store.url} stayed held for {self.wait_s:g}s; if no submitter "
                                   f"is running, delete that object and re-run")
            time.sleep(self.poll_s)
        self._renewer = threading.Thread(target=self._renew, daemon=True, name="ftlib-lease-renew")
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                version = self.store.replace(self._body(), self.version or "")
            except Exception as e:  # the network may blink; the next beat tries again
                log.warning("renewing lease %s failed: %s", self.store.url, e)
                continue
            if version is None:
                log.warning("lease %s was taken over; reconciliation after create still keeps one job",
                            self.store.url)
                return
            self.version = version

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=10)
        if self.version is not None:
            try:
                self.store.delete(self.version)
            except Exception as e:  # it expires on its own
                log.warning("releasing lease %s failed: %s", self.store.url, e)
            self.version = None

    def __enter__(self) -> ObjectLease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _owner(body: bytes) -> str:
    try:
        return str(orjson.loads(body).get("owner", "?"))
    except (orjson.JSONDecodeError, AttributeError):
        return "?"


# -- which leases apply ---------------------------------------------------------------------------

def dvc_remote(start: Path) -> tuple[str, dict[str, Any]] | None:
    """(url, options) of the default DVC remote of the project around `start`, if there is one."""
    here = Path(start).resolve()
    root = next((d for d in (here, *here.parents) if (d / ".dvc").is_dir()), None)
    if root is None:
        return None
    try:
        from dvc.config import Config

        config = Config(dvc_dir=str(root / ".dvc"))
        name = config["core"].get("remote")
        remote = dict(config["remote"][name]) if name else None
    except Exception as e:  # a broken config is dvc's to report; without it there is no remote lease
        log.debug("no DVC remote for leases: %s", e)
        return None
    if not remote or "url" not in remote:
        return None
    return str(remote["url"]), remote


def lease_url(ledger_root: Path) -> tuple[str, dict[str, Any]] | None:
    """Where the object lease lives: FTLIB_LEASE's URL, else the DVC remote when it is in S3 or GCS."""
    choice = os.environ.get(ENV, "auto").strip() or "auto"
    if choice == FILE_ONLY:
        return None
    if choice != "auto":
        if not choice.startswith(("s3://", "gs://")) or len(choice) <= len("s3://"):
            raise ConfigError(f"{ENV}={choice!r}: use auto, file, s3://bucket/prefix or gs://bucket/prefix")
        return choice, {}
    found = dvc_remote(ledger_root)
    if found and found[0].startswith(("s3://", "gs://")):
        return found
    return None


@contextmanager
def hold(ledger_root: Path, provider: str, key: str, say: Callable[[str], None]) -> Iterator[list[str]]:
    """Every lease that applies for (provider, key), in the fixed order; yields what is held, for messages."""
    what = f"{provider} job key {key}"
    held: list[str] = []
    with ExitStack() as stack:
        path = lock_dir(ledger_root) / f"submit-{provider}-{key}.lock"
        stack.enter_context(file_lock(path, what, say))
        held.append(f"lock file {path}")
        local_only = os.environ.get(ENV, "auto").strip() == FILE_ONLY
        if not local_only and in_prefect_run():
            name = f"ftlib-submit-{provider}-{key}"
            stack.enter_context(prefect_lease(name, say))
            held.append(f"Prefect concurrency limit {name}")
        found = lease_url(ledger_root)
        if found is not None:
            url, options = found
            lease = ObjectLease(object_store(url, f"{provider}-{key}.json", options), what, say)
            stack.enter_context(lease)
            held.append(f"object lease {lease.store.url}")
        yield held
