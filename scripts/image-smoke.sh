#!/usr/bin/env bash
# `make image-smoke`: build the container image's filesystem without Docker and run a real
# backup from inside it. debootstrap lays down the Dockerfile's base (Debian bookworm), the
# Dockerfile's own install script runs in a chroot (with Debian's PostgreSQL client, as
# PostgreSQL's apt repository is out of reach here), then bin/moonflower runs in the chroot,
# as the image's unprivileged user, against a PostgreSQL 15 server and an S3 server on
# loopback. Needs root, debootstrap and Debian's postgresql-15 (installed when missing).
set -euo pipefail
checkout="$(cd "$(dirname "$0")/.." && pwd)"
root="${IMAGE_ROOT:-$checkout/.image-root}"

if [[ $(id -u) -ne 0 ]]; then
    echo "image-smoke needs root (debootstrap and chroot)" >&2
    exit 2
fi
missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
[[ -x /usr/lib/postgresql/15/bin/postgres ]] || missing+=(postgresql-15)
if ((${#missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

cleanup() {
    for mount in proc dev; do
        mountpoint -q "$root/$mount" && umount -l "$root/$mount" || true
    done
}
trap cleanup EXIT

rm -rf "$root"
debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian
mkdir -p "$root/opt/moonflower"
git -C "$checkout" ls-files -z | (cd "$checkout" && xargs -0 cp --parents -t "$root/opt/moonflower")
cp /etc/resolv.conf "$root/etc/resolv.conf"
# Trust what this host trusts (some networks inspect HTTPS with their own authority).
host_ca=/etc/ssl/certs/ca-certificates.crt
pip_cert=()
if [[ -f $host_ca ]]; then
    cp "$host_ca" "$root/etc/ssl/host-ca-bundle.crt" 2>/dev/null \
        || { mkdir -p "$root/etc/ssl" && cp "$host_ca" "$root/etc/ssl/host-ca-bundle.crt"; }
    pip_cert=(PIP_CERT=/etc/ssl/host-ca-bundle.crt)
fi
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    "${pip_cert[@]}" SOURCE=/opt/moonflower PG_CLIENT_SOURCE=debian \
    /opt/moonflower/scripts/image-install.sh

"$checkout/.venv/bin/python" "$checkout/scripts/image_smoke.py" "$root"
