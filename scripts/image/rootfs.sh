# shellcheck shell=bash
# shellcheck disable=SC2154 # IMAGE, base_key, ROOTFS_TAR... are set by the sourcing script
# Steps both base images share (sourced by base-image.sh and cross-base-image.sh after env.sh):
# the up-to-date check, the cached debootstrap rootfs, and a mounted container holding it that
# trusts what the host trusts. Callers set IMAGE, SUITE, MIRROR, PACKAGES, HOST_CAS, ROOTFS_TAR,
# base_key and log().

# Exits 0 when IMAGE already carries base_key: nothing to rebuild.
exit_if_current() {
  local have
  have=$(buildah inspect --type image --format '{{index .OCIv1.Config.Labels "dev.dealpay.base-key"}}' "$IMAGE" 2>/dev/null || true)
  if [[ $have == "$base_key" ]]; then
    log "$IMAGE is up to date (base-key $base_key)"
    exit 0
  fi
}

# debootstrap SUITE with PACKAGES into ROOTFS_TAR, once.
ensure_rootfs_tar() {
  [[ -s $ROOTFS_TAR ]] && return 0
  log "debootstrap $SUITE ($PACKAGES) from $MIRROR"
  local t0=$SECONDS
  work=$(mktemp -d "$IMAGE_CACHE/debootstrap.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/root" "$MIRROR" >"$work/log" 2>&1 \
    || { tail -n 30 "$work/log" "$work/root/debootstrap/debootstrap.log" 2>/dev/null; exit 1; }
  # apt lists and package caches are not part of an image, as in Debian's own images
  rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"* "$work/root/debootstrap"
  tar -C "$work/root" --numeric-owner -cf "$ROOTFS_TAR.tmp" .
  mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  rm -rf "$work"; trap - EXIT
  log "debootstrap done in $((SECONDS - t0))s: $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1))"
}

# Sets ctr and mnt: a scratch container with ROOTFS_TAR unpacked, removed on exit unless committed.
open_rootfs_container() {
  log "assembling $IMAGE (base-key $base_key)"
  ctr=$(buildah from --pull-never scratch)
  trap 'buildah umount "$ctr" >/dev/null 2>&1 || true; buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
  mnt=$(buildah mount "$ctr")
  tar -C "$mnt" --numeric-owner -xf "$ROOTFS_TAR"
  # Trust what the host trusts (see HOST_CAS), then rebuild the bundle inside the rootfs.
  cp "$HOST_CAS"/*.crt "$mnt/usr/local/share/ca-certificates/" 2>/dev/null || true
  TMPDIR=/tmp chroot "$mnt" /usr/sbin/update-ca-certificates --fresh >/dev/null 2>&1
}
