"""gcp-storage-emulator in-process on 127.0.0.1, with STORAGE_EMULATOR_HOST pointing the real GCS SDK at it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from gcp_storage_emulator.server import create_server


@contextmanager
def gcs_emulator(bucket: str | None = "ftlib-test") -> Iterator[str]:
    """Yield the emulator's URL with STORAGE_EMULATOR_HOST set (and restored after); `bucket` is created up front."""
    server = create_server("127.0.0.1", 0, in_memory=True, default_bucket=bucket)
    server.start()
    host, port = server._api._httpd.server_address[:2]  # port 0: ask the bound socket
    url = f"http://{host}:{port}"
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = url
    try:
        yield url
    finally:
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous
        server.stop()


@pytest.fixture
def gcs_server() -> Iterator[str]:
    """A fresh in-memory GCS with bucket `ftlib-test`; the URL is also in STORAGE_EMULATOR_HOST."""
    with gcs_emulator() as url:
        yield url


def storage_client():  # -> google.cloud.storage.Client
    """The client tests use against the emulator (PROVIDERS.md: anonymous credentials, project "test")."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project="test", credentials=AnonymousCredentials())
