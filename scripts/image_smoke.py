"""The part of `make image-smoke` that runs after the image filesystem is built: start
PostgreSQL 15 and S3 on loopback, back up from inside the chroot, check the object."""

import gzip
import logging
import shutil
import subprocess
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CHECKOUT))

from tests.support.pgserver import PgServer  # noqa: E402
from tests.support.s3server import S3Server  # noqa: E402

DEBIAN_15 = Path("/usr/lib/postgresql/15/bin")
TIMEOUT_SECONDS = 600


def main(root: Path) -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with PgServer(bin_dir=DEBIAN_15) as pg, S3Server() as s3:
        pg.create_database("smoke")
        pg.psql(
            "CREATE TABLE hello (word text); INSERT INTO hello VALUES ('from the image');", "smoke"
        )
        bucket = s3.new_bucket()
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "BACKUP_SPOOL_DIR": "/var/spool/moonflower",
            "BACKUP_STATE_DIR": "/var/lib/moonflower",
            "AWS_EC2_METADATA_DISABLED": "true",
            **pg.moonflower_env("smoke"),
            **s3.moonflower_env(bucket, "smoke"),
        }
        command = [
            shutil.which("chroot") or "/usr/sbin/chroot",
            "--userspec=moonflower:moonflower",
            str(root),
            "/opt/moonflower/bin/moonflower",
            "backup",
        ]
        result = subprocess.run(command, env=env, timeout=TIMEOUT_SECONDS, check=False)
        if result.returncode != 0:
            print(f"image-smoke: the backup inside the image failed ({result.returncode})")
            return 1
        [key] = s3.keys(bucket)
        body = gzip.decompress(s3.client().get_object(Bucket=bucket, Key=key)["Body"].read())
        if b"from the image" not in body:
            print("image-smoke: the object does not hold the data")
            return 1
        print(f"image-smoke: ok, s3://{bucket}/{key} made inside the image holds the data")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
