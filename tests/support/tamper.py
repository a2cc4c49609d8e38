"""What someone with write access to the bucket can do to a stored object."""

from typing import Any


def flip_a_middle_byte(client: Any, bucket: str, key: str) -> None:
    """Rewrite `key` with one byte in its middle changed and its metadata (the checksum
    Moonflower recorded) kept. Not the last byte: gzip's last is often zero already."""
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    metadata = client.head_object(Bucket=bucket, Key=key)["Metadata"]
    middle = len(body) // 2
    changed = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1 :]
    client.put_object(Bucket=bucket, Key=key, Body=changed, Metadata=metadata)
