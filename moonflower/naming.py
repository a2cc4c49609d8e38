"""Object key naming: one place for the scheme the old tool established.

`<S3_PATH>/<database>_<UTC time with milliseconds>Z<extension>`, e.g.
`nightly/app_2026-11-26T01:00:00.123Z.sql.gz`.
"""

import pendulum

PLAIN_GZIP_EXTENSION = ".sql.gz"
TIME_FORMAT = "YYYY-MM-DDTHH:mm:ss.SSS[Z]"


def timestamp(moment: pendulum.DateTime) -> str:
    return moment.in_timezone("UTC").format(TIME_FORMAT)


def backup_key(prefix: str, database: str, moment: pendulum.DateTime, extension: str) -> str:
    name = f"{database}_{timestamp(moment)}{extension}"
    return f"{prefix}/{name}" if prefix else name
