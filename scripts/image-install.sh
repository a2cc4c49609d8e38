#!/bin/sh
# Installs Moonflower and what it runs (PostgreSQL client, GnuPG, igzip, pigz, zstd) into a Debian
# system: the Dockerfile's one RUN step, and what `make image-smoke` runs in a chroot, so
# the two cannot drift apart.
#
#   SOURCE             where the checkout was copied (default /opt/moonflower)
#   PG_CLIENT_SOURCE   pgdg (default): PostgreSQL's own apt repository, newest client
#                      debian: Debian's postgresql-client (for machines without the PGDG repo)
#   PG_CLIENT_VERSION  major version from PGDG (default 18)
set -eu

SOURCE="${SOURCE:-/opt/moonflower}"
PG_CLIENT_SOURCE="${PG_CLIENT_SOURCE:-pgdg}"
PG_CLIENT_VERSION="${PG_CLIENT_VERSION:-18}"
export DEBIAN_FRONTEND=noninteractive

apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    ca-certificates gnupg gzip isal pigz zstd python3 python3-venv coreutils
if [ "$PG_CLIENT_SOURCE" = pgdg ]; then
    apt-get install -y -qq --no-install-recommends curl
    install -d /usr/share/postgresql-common/pgdg
    curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
        https://www.postgresql.org/media/keys/ACCC4CF8.asc
    codename="$(. /etc/os-release && echo "$VERSION_CODENAME")"
    echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc]" \
        "https://apt.postgresql.org/pub/repos/apt ${codename}-pgdg main" \
        > /etc/apt/sources.list.d/pgdg.list
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "postgresql-client-${PG_CLIENT_VERSION}"
    apt-get purge -y -qq curl
else
    apt-get install -y -qq --no-install-recommends postgresql-client
fi

getent group moonflower >/dev/null || groupadd --system moonflower
getent passwd moonflower >/dev/null || useradd --system --gid moonflower \
    --home-dir /var/lib/moonflower --shell /usr/sbin/nologin moonflower
install -d -o moonflower -g moonflower -m 0750 /var/lib/moonflower /var/spool/moonflower
install -d -m 0755 /etc/moonflower

python3 -m venv "$SOURCE/.venv"
# The runtime dependencies exactly as requirements.lock pins them (versions and hashes), so
# two builds a week apart install the same; then Moonflower itself, adding nothing.
"$SOURCE/.venv/bin/pip" install --quiet --no-cache-dir --require-hashes -r "$SOURCE/requirements.lock"
"$SOURCE/.venv/bin/pip" install --quiet --no-cache-dir --no-deps "$SOURCE"
# bin/moonflower runs the package from $SOURCE, and the image never writes bytecode
# (PYTHONDONTWRITEBYTECODE): compiled once here, or every start pays ~0.1 s compiling it.
"$SOURCE/.venv/bin/python" -m compileall -q "$SOURCE/moonflower"
printf '#!/bin/sh\nexec %s/bin/moonflower "$@"\n' "$SOURCE" > /usr/local/bin/moonflower
chmod 0755 /usr/local/bin/moonflower

apt-get clean
rm -rf /var/lib/apt/lists/* /root/.cache
