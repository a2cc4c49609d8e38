"""One replica's settings read and checked, with the primary's where it sets none."""

from typing import TYPE_CHECKING

from moonflower.config import settings as s
from moonflower.config.model import ChecksumMode, ReplicaConfig, S3Config
from moonflower.config.replicas import OPTIONAL, replica_setting
from moonflower.config.retention import retention_config
from moonflower.config.settings import Setting
from moonflower.config.values import (
    boolean,
    endpoint_url,
    member_of,
    period,
    region_name,
    s3_prefix,
    secret_text,
    text,
    whole_number,
)

if TYPE_CHECKING:
    from moonflower.config.loader import Validator

MAX_ATTEMPTS_RANGE = (1, 20)


def replica_config(validator: "Validator", primary: S3Config, name: str) -> ReplicaConfig:
    def spelt(base: Setting) -> Setting:
        return replica_setting(name, base)

    bucket = validator.required(spelt(s.S3_BUCKET), text)
    access_key = validator.optional(spelt(s.S3_ACCESS_KEY), text, None)
    secret_key = validator.optional(spelt(s.S3_SECRET_KEY), secret_text, None)
    if (access_key is None) != (secret_key is None):
        missing = spelt(s.S3_SECRET_KEY if secret_key is None else s.S3_ACCESS_KEY).env
        validator.problems.append(
            f"{missing}: required when the replica's other S3 key is set (or set neither to "
            "use the primary's keys)"
        )
    if access_key is None or secret_key is None:
        access_key, secret_key = primary.access_key, primary.secret_key
    low, high = MAX_ATTEMPTS_RANGE
    config = S3Config(
        endpoint=validator.optional(spelt(s.S3_ENDPOINT), endpoint_url, primary.endpoint),
        region=validator.optional(spelt(s.S3_REGION), region_name, primary.region),
        bucket=bucket or "",
        prefix=validator.optional(spelt(s.S3_PATH), s3_prefix, primary.prefix),
        access_key=access_key,
        secret_key=secret_key,
        checksum=validator.optional(
            spelt(s.S3_CHECKSUM), member_of(ChecksumMode), primary.checksum
        ),
        max_attempts=validator.optional(
            spelt(s.S3_MAX_ATTEMPTS), whole_number(low, high), primary.max_attempts
        ),
        governance=validator.optional(spelt(s.S3_GOVERNANCE), period, primary.governance),
        expires_in=validator.optional(spelt(s.S3_EXPIRES_IN), period, primary.expires_in),
        retention=retention_config(validator, spelt, primary.retention),
    )
    optional = validator.optional(spelt(OPTIONAL), boolean, False)
    return ReplicaConfig(name=name, s3=config, optional=optional)
