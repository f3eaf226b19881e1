# shellcheck shell=bash
# Shared settings of scripts/image-check and scripts/image/*.sh (sourced, not run).
# buildah keeps its own storage under the cache, so the image check neither uses nor disturbs
# a system-wide /var/lib/containers, and a driver change cannot clash with other images there.
# shellcheck disable=SC2034 # used by the scripts that source this
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
IMAGE_CACHE="${DEALPAY_CACHE:-/var/cache/dealpay}/image"
# vfs: overlay mounts are not available in every sandbox this runs in (see docs/image.md).
export STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}"
export BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"
mkdir -p "$IMAGE_CACHE/storage" "$IMAGE_CACHE/run"
export CONTAINERS_STORAGE_CONF="$IMAGE_CACHE/storage-$STORAGE_DRIVER.conf"
cat >"$CONTAINERS_STORAGE_CONF" <<CONF
[storage]
driver = "$STORAGE_DRIVER"
graphroot = "$IMAGE_CACHE/storage/$STORAGE_DRIVER"
runroot = "$IMAGE_CACHE/run/$STORAGE_DRIVER"
CONF
