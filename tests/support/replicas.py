"""Settings of a replica on another S3 server, as an operator would write them."""

from tests.support.s3server import S3Server


def replica_env(
    server: S3Server, bucket: str, name: str = "OFFSITE", path: str = "far"
) -> dict[str, str]:
    return {
        f"REPLICA_{name}_{setting}": value
        for setting, value in server.moonflower_env(bucket, path).items()
    }


def stored_facts(server: S3Server, bucket: str, key: str) -> dict[str, object]:
    """An object's metadata and its Object Lock date, as the S3 server reports them."""
    found = server.client().head_object(Bucket=bucket, Key=key)
    return {**found["Metadata"], "retain": found.get("ObjectLockRetainUntilDate")}
