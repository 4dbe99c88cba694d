"""moto's server (S3 + Bedrock) in-process on 127.0.0.1, with the AWS environment pointing the real boto3 at it.

The server runs in this process, so tests can move a Bedrock job's status in moto's backend (jobs never leave
InProgress on their own) while the code under test talks HTTP to it like it would to AWS.
"""

from __future__ import annotations

import logging
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

ACCOUNT = "123456789012"  # moto's default account
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
}
# Anything that could point boto3 somewhere else (a real profile, a session token, a per-service endpoint).
_CLEARED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL_S3",
            "AWS_ENDPOINT_URL_BEDROCK", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "ANTHROPIC_BEDROCK_BASE_URL",
            "AWS_BEARER_TOKEN_BEDROCK", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI")


@contextmanager
def moto_server() -> Iterator[str]:
    """Start ThreadedMotoServer on a free loopback port, yield its URL, stop it; moto's state starts empty."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request is noise in tests
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        reset(url)
        yield url
    finally:
        server.stop()


def reset(url: str) -> None:
    """Empty every moto backend: they are module globals shared by all servers in this process."""
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()


def aws_env(url: str) -> dict[str, str]:
    """The environment that sends boto3 (and subprocesses) to the server at `url` with fake credentials."""
    return {**FAKE_AWS_ENV, "AWS_ENDPOINT_URL": url}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """One server per test module (stopping one takes 0.5 s); moto_aws empties it before every test."""
    with moto_server() as url:
        yield url


@pytest.fixture
def moto_aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty moto; AWS_ENDPOINT_URL and fake credentials are set for the test and restored after.

    Import both fixtures into the test module: `from emulators.moto_server import moto_aws, moto_url`.
    """
    reset(moto_url)
    for var in _CLEARED:
        monkeypatch.delenv(var, raising=False)
    for var, value in aws_env(moto_url).items():
        monkeypatch.setenv(var, value)
    return moto_url


def bedrock_jobs(region: str) -> dict[str, Any]:
    """moto's Bedrock jobs for `region`, by job name (ModelCustomizationJob objects with a settable .status)."""
    from moto.bedrock.models import bedrock_backends

    return bedrock_backends[ACCOUNT][region].model_customization_jobs


def set_job_status(region: str, job_name: str, status: str, failure_message: str | None = None) -> None:
    """Move a job the way Bedrock would (InProgress -> Completed | Failed | Stopped)."""
    job = bedrock_jobs(region)[job_name]
    job.status = status
    if failure_message is not None:
        job.failure_message = failure_message


def make_bucket(bucket: str, region: str) -> None:
    """Create `bucket` in `region` through the real boto3 (outside us-east-1 S3 needs a LocationConstraint)."""
    import boto3

    s3 = boto3.client("s3", region_name=region)
    config = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket, **config)


@contextmanager
def atomic_conditional_writes() -> Iterator[None]:
    """S3 evaluates If-None-Match / If-Match and the write as one step; moto checks, then writes, so two requests
    can both pass the check. Serialising moto's object writes and deletes gives S3's behaviour to lease tests."""
    from moto.s3.responses import S3Response

    lock = threading.Lock()
    originals = {name: getattr(S3Response, name) for name in ("put_object", "delete_object")}

    def serialised(fn: Any) -> Any:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            with lock:
                return fn(self, *args, **kwargs)
        return call

    for name, fn in originals.items():
        setattr(S3Response, name, serialised(fn))
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(S3Response, name, fn)
