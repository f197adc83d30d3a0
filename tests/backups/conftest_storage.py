"""A real local S3-compatible server for the backup storage tests: moto in server mode, run as
a child process on a free local port (tests/receivers.py lets the test process reach it).

Not a conftest.py: test modules that need it import `MotoServer` and make their own fixture.
"""

import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from tests.receivers import free_port

ACCESS_KEY = "moto-test-access-key"
SECRET_KEY = "moto-test-secret-key"
REGION = "us-east-1"


class MotoServer:
    """`python -m moto.server` on 127.0.0.1; `stop()` takes it down (a storage outage)."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_listening(log)

    def _wait_until_listening(self, log: Path, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited: {log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not listen within {timeout} s")

    def client(self) -> Any:
        """A boto3 S3 client for the test itself (setting up and tampering with objects)."""
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(retries={"max_attempts": 2, "mode": "standard"}),
        )

    def new_bucket(self) -> str:
        name = f"backups-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def environment(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """The BACKUP_S3_* variables that point config/settings.py at this server."""
        return {
            "BACKUP_S3_BUCKET": bucket,
            "BACKUP_S3_ENDPOINT_URL": self.url,
            "BACKUP_S3_REGION": REGION,
            "BACKUP_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "BACKUP_S3_SECRET_ACCESS_KEY": SECRET_KEY,
            "BACKUP_S3_PREFIX": prefix,
            "BACKUP_S3_ADDRESSING_STYLE": "path",
        }

    def storages_entry(self, bucket: str, prefix: str = "") -> dict[str, Any]:
        """STORAGES["backups"] as config/settings.py builds it from `environment()`
        (test_storage.py's test_settings_from_the_environment checks that they agree)."""
        return {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": self.url,
                "region_name": REGION,
                "access_key": ACCESS_KEY,
                "secret_key": SECRET_KEY,
                "location": prefix,
                "addressing_style": "path",
                "file_overwrite": False,
                "object_parameters": {"ContentType": "application/octet-stream"},
            },
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
