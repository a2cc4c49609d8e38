# Moonflower: PostgreSQL backups to S3-compatible storage.
#
#   docker build -t moonflower .
#   docker build --build-arg PG_CLIENT_VERSION=17 -t moonflower:pg17 .
#
# pg_dump must be at least as new as the servers it backs up: the client comes from
# PostgreSQL's own apt repository, newest major by default.
FROM debian:bookworm-slim

ARG PG_CLIENT_VERSION=18
ENV PG_CLIENT_VERSION=${PG_CLIENT_VERSION} \
    BACKUP_SPOOL_DIR=/var/spool/moonflower \
    BACKUP_STATE_DIR=/var/lib/moonflower \
    PYTHONDONTWRITEBYTECODE=1 \
    LANG=C.UTF-8

COPY . /opt/moonflower
RUN SOURCE=/opt/moonflower PG_CLIENT_SOURCE=pgdg /opt/moonflower/scripts/image-install.sh

USER moonflower
WORKDIR /var/lib/moonflower
# A config file mounted here is read automatically: -v ./moonflower.toml:/etc/moonflower/moonflower.toml:ro
HEALTHCHECK --interval=1m --timeout=10s --start-period=30s CMD ["/opt/moonflower/bin/moonflower", "health"]
ENTRYPOINT ["/opt/moonflower/bin/moonflower"]
