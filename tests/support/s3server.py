"""A real HTTP S3 server (moto in server mode) on 127.0.0.1, and a boto3 client for it."""

import itertools
import os
from typing import Any

import boto3
from botocore.config import Config
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from moonflower.catalog.keys import parse_key

ACCESS_KEY = "mf-test-access"
SECRET_KEY = "mf-test-secret-Xy9/zz+q"
REGION = "us-west-1"
_bucket_numbers = itertools.count(1)


class S3Server:
    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = ""

    def start(self) -> "S3Server":
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> "S3Server":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}),
        )

    def new_bucket(self, object_lock: bool = False) -> str:
        name = f"mf-test-{os.getpid()}-{next(_bucket_numbers)}"
        arguments: dict[str, Any] = {
            "Bucket": name,
            "CreateBucketConfiguration": {"LocationConstraint": REGION},
        }
        if object_lock:
            arguments["ObjectLockEnabledForBucket"] = True
        self.client().create_bucket(**arguments)
        return name

    def keys(self, bucket: str) -> list[str]:
        paginator = self.client().get_paginator("list_objects_v2")
        return [
            item["Key"]
            for page in paginator.paginate(Bucket=bucket)
            for item in page.get("Contents", [])
        ]

    def databases(self, bucket: str, prefix: str) -> list[str]:
        """Whose backups lie directly under `prefix`, read by Moonflower's own key parser."""
        found = [parse_key(key, prefix) for key in self.keys(bucket)]
        return sorted({backup.database for backup in found if backup is not None})

    def no_uploads_left(self, bucket: str) -> bool:
        """No unfinished multipart upload (not even orphaned parts) in the bucket."""
        return self.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    def aws_environment(self) -> dict[str, str]:
        """The credentials and region as the AWS tools read them (for stock commands)."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }

    def moonflower_env(self, bucket: str, path: str = "") -> dict[str, str]:
        env = {
            "S3_ENDPOINT": self.endpoint,
            "S3_REGION": REGION,
            "S3_BUCKET": bucket,
            "S3_ACCESS_KEY": ACCESS_KEY,
            "S3_SECRET_KEY": SECRET_KEY,
        }
        if path:
            env["S3_PATH"] = path
        return env
