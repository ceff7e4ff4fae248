"""An S3 endpoint for tests: moto in server mode on 127.0.0.1, reached over real HTTP.

Import the fixture into a test module with ``from tests.s3fixture import moto_s3_fixture``; tests
then ask for ``moto_s3``.
Credentials are dummies set for the session (so no client ever looks further for real ones).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import announced, wait_http

# the line moto's werkzeug server prints with the port it bound (``-p 0``)
MOTO_RUNNING = r"Running on (http://127\.0\.0\.1:[1-9][0-9]*)"

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing-key",
    "AWS_SECRET_ACCESS_KEY": "testing-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
_names = itertools.count()


@dataclass
class MotoS3:
    endpoint: str
    proc: subprocess.Popen
    log_path: Path

    @property
    def env(self) -> dict[str, str]:
        """The AWS environment a child process needs to reach this endpoint."""
        return {**AWS_ENV, "AWS_ENDPOINT_URL": self.endpoint}

    def client(self):  # noqa: ANN201 - a boto3 S3 client
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        )

    def new_bucket(self) -> str:
        name = f"feeds-{os.getpid()}-{next(_names)}"
        self.client().create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session", name="moto_s3")
def moto_s3_fixture(tmp_path_factory) -> Iterator[MotoS3]:
    saved = {k: os.environ.get(k) for k in AWS_ENV}
    os.environ.update(AWS_ENV)
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed with the process
    # port 0: moto binds a free port itself and names it in werkzeug's "Running on" line
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **AWS_ENV, "PYTHONUNBUFFERED": "1"},
    )
    try:
        endpoint = announced(log_path, proc, MOTO_RUNNING)
        server = MotoS3(endpoint.group(1), proc, log_path)
        wait_http(server.endpoint + "/moto-api/", proc)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
