"""Uploads through the real S3 API of a moto server: multipart, checksums, verification."""

import hashlib
import os
from pathlib import Path

import pytest

from moonflower.config.model import ChecksumMode, S3Config
from moonflower.core.errors import StorageError
from moonflower.storage.gateway import Storage
from moonflower.storage.objects import MULTIPART_THRESHOLD
from tests.support.s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server
from tests.support.waiting import eventually


def storage_for(s3: S3Server, bucket: str, checksum: str = "when_supported") -> Storage:
    config = S3Config(
        endpoint=s3.endpoint,
        region=REGION,
        bucket=bucket,
        prefix="",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        checksum=ChecksumMode(checksum),
        max_attempts=2,
    )
    return Storage(config)


def random_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        remaining = size
        while remaining:
            chunk = os.urandom(min(remaining, 1 << 20))
            handle.write(chunk)
            digest.update(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


@pytest.mark.slow
def test_multipart_upload_is_complete_and_recorded(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "big.sql.gz"
    expected = random_file(source, MULTIPART_THRESHOLD + 3 * 1024 * 1024)

    uploaded = storage_for(s3, bucket).upload(source, "big.sql.gz", "application/gzip")

    assert uploaded.sha256 == expected
    head = s3.client().head_object(Bucket=bucket, Key="big.sql.gz")
    assert head["ContentLength"] == source.stat().st_size
    assert head["Metadata"]["sha256"] == expected
    assert "-" in head["ETag"], "expected a multipart upload"
    body = s3.client().get_object(Bucket=bucket, Key="big.sql.gz")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == expected
    assert s3.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_when_required_mode_uploads_without_flexible_checksums(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "small.sql.gz"
    expected = random_file(source, 4096)

    storage_for(s3, bucket, checksum="when_required").upload(source, "small", "application/gzip")

    head = s3.client().head_object(Bucket=bucket, Key="small", ChecksumMode="ENABLED")
    assert head["Metadata"]["sha256"] == expected
    assert "ChecksumSHA256" not in head


def test_missing_bucket_is_not_retried_and_is_named(s3: S3Server, tmp_path: Path) -> None:
    source = tmp_path / "x"
    random_file(source, 10)

    with pytest.raises(StorageError, match='bucket "mf-test-absent" does not exist'):
        storage_for(s3, "mf-test-absent").upload(source, "x", "application/gzip")


UPLOAD_IN_A_CHILD = """
import sys
from pathlib import Path
from moonflower.config.model import S3Config
from moonflower.core.shutdown import Shutdown
from moonflower.storage.gateway import Storage
endpoint, region, bucket, access, secret, source = sys.argv[1:]
shutdown = Shutdown()
shutdown.install()
storage = Storage(
    S3Config(
        endpoint=endpoint,
        region=region,
        bucket=bucket,
        prefix="",
        access_key=access,
        secret_key=secret,
    )
)
try:
    with shutdown.working():
        storage.upload(Path(source), "interrupted", "application/gzip")
except BaseException as error:
    print(type(error).__name__)
    sys.exit(143)
"""


@pytest.mark.slow
def test_sigterm_during_a_multipart_upload_leaves_no_parts(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys

    source = tmp_path / "big"
    random_file(source, 200 * 1024 * 1024)
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            UPLOAD_IN_A_CHILD,
            s3.endpoint,
            REGION,
            bucket,
            ACCESS_KEY,
            SECRET_KEY,
            str(source),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    client = s3.client()

    def started_or_done() -> bool:
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads")
        return child.poll() is not None or bool(uploads)

    started = eventually(started_or_done)
    assert started, "the multipart upload never started"
    assert child.poll() is None, "the upload finished before it could be interrupted"

    child.send_signal(signal.SIGTERM)
    output, _ = child.communicate(timeout=60)

    assert child.returncode == 143
    assert output.strip() == "Terminated"
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert s3.keys(bucket) == []
