"""Settings of a replica on another S3 server, as an operator would write them."""

from tests.support.s3server import S3Server


def replica_env(
    server: S3Server, bucket: str, name: str = "OFFSITE", path: str = "far"
) -> dict[str, str]:
    return {
        f"REPLICA_{name}_{setting}": value
        for setting, value in server.moonflower_env(bucket, path).items()
    }
