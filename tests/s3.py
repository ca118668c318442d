"""A real S3 HTTP API for the tests: moto's server on a free loopback port, once per session.

Registered from conftest.py as a plugin. Each test gets its own bucket, so tests never
see each other's objects. Dummy credentials and a region are set for the whole session
(and instance-metadata lookups disabled) so botocore never looks beyond this machine.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
PREFIX = "origin/test"
"""Every `s3_url` has a key prefix, so prefixing and stripping are always exercised."""


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", REGION)
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        env.setenv("AWS_CONFIG_FILE", "/nonexistent")
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            env.delenv(name, raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
def s3_raw(s3_endpoint: str) -> tuple[Any, str]:
    """A plain boto3 client and a fresh, empty bucket: to look behind the backend's back."""
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION)
    bucket = f"test-{uuid.uuid4().hex}"
    client.create_bucket(Bucket=bucket)
    return client, bucket


@pytest.fixture
def s3_url(s3_endpoint: str, s3_raw: tuple[Any, str]) -> str:
    """A storage URL for the fresh bucket, with a key prefix."""
    return f"s3://{s3_raw[1]}/{PREFIX}?endpoint_url={s3_endpoint}&region={REGION}"
