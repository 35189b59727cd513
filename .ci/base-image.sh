#!/usr/bin/env bash
# A Debian base image for chatdock's Dockerfile, made locally (there is no registry to pull one from here):
# debootstrap a minimal bookworm with python3, venv and CA certificates, import it, tag it BASE_IMAGE.
# Cached by tag: when the tag exists, nothing is done (a second CI run skips the ~40 s debootstrap).
#
#   bash .ci/base-image.sh [TAG]        (default local/chatdock-base:bookworm; as root)
set -euo pipefail
TAG="${1:-${BASE_IMAGE:-local/chatdock-base:bookworm}}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "base image $TAG is already there"
    exit 0
fi
command -v debootstrap >/dev/null 2>&1 || {
    [ "$(id -u)" -eq 0 ] || { echo "debootstrap is missing and not running as root to install it" >&2; exit 1; }
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
}
ROOT="$(mktemp -d /tmp/chatdock-base.XXXXXX)"
trap 'rm -rf "$ROOT"' EXIT
echo "debootstrap bookworm into $ROOT (about a minute)"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$ROOT" "$MIRROR" \
    >"$ROOT.log" 2>&1 || { tail -n 30 "$ROOT.log" >&2; exit 1; }
rm -f "$ROOT.log"
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*
tar -C "$ROOT" -c . | docker import -c 'CMD ["/bin/bash"]' -c 'ENV LANG=C.UTF-8' - "$TAG" >/dev/null
echo "base image $TAG imported"
