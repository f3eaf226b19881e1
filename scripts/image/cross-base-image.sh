#!/usr/bin/env bash
# A builder base image that can cross-compile for arm64 from here, for the multi-arch proof.
#
# Usage: scripts/image/cross-base-image.sh IMAGE
#
# The pinned toolchain's std for aarch64 comes from rustup's servers, which this machine cannot
# reach; Debian builds the same Rust release (rustc 1.95.0, trixie-backports) and ships its std for
# every architecture (libstd-rust-dev:arm64). Debian's std only links with Debian's rustc, so this
# image is Debian trixie with Debian's rustc/cargo 1.95.0 and both std's (amd64, arm64), laid out
# like the rust image where the Dockerfile relies on it (CARGO_HOME=/usr/local/cargo). The
# Dockerfile's cross step finds the arm64 std in the sysroot and skips `rustup target add`; it
# installs the cross gcc and glibc itself. 1.95.0 has left the backports index, so the .debs are
# fetched from the pool by name (they are cached under $IMAGE_CACHE).
set -euo pipefail
trap 'echo "$0: failed at line $LINENO" >&2' ERR
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/image/env.sh
source "$HERE/env.sh"
# shellcheck source=scripts/image/rootfs.sh
source "$HERE/rootfs.sh"
IMAGE=${1:?usage: cross-base-image.sh IMAGE}

SUITE=trixie
MIRROR=${DEALPAY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CHANNEL=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$REPO/rust-toolchain.toml")
DEBIAN_RUST="$CHANNEL+dfsg1-2~bpo13+1"
DEBS=("rustc_${DEBIAN_RUST}_amd64" "cargo_${DEBIAN_RUST}_amd64" "libstd-rust-${CHANNEL%.*}_${DEBIAN_RUST}_amd64"
  "libstd-rust-dev_${DEBIAN_RUST}_amd64")
STD_ARM64="libstd-rust-dev_${DEBIAN_RUST}_arm64"
# rustc's and cargo's dependencies that trixie has (libllvm21 comes from trixie-backports below)
PACKAGES=ca-certificates,gcc,libc6-dev,binutils,bash,libcurl4t64,libgit2-1.9,libsqlite3-0,libssh2-1t64,libssl3t64
HOST_CAS=/usr/local/share/ca-certificates
DEB_DIR="$IMAGE_CACHE/debian-rustc-$CHANNEL"

log() { echo "[cross-base-image] $*" >&2; }

mkdir -p "$DEB_DIR"
for d in "${DEBS[@]}" "$STD_ARM64"; do
  [[ -s $DEB_DIR/$d.deb ]] && continue
  log "fetching $d.deb"
  curl -sSf -o "$DEB_DIR/$d.deb.tmp" "$MIRROR/pool/main/r/rustc/$d.deb"
  mv "$DEB_DIR/$d.deb.tmp" "$DEB_DIR/$d.deb"
done

rootfs_key=$(printf '%s\n' "$SUITE" "$MIRROR" "$PACKAGES" | sha256sum | cut -c1-16)
ROOTFS_TAR="$IMAGE_CACHE/rootfs-$SUITE-$rootfs_key.tar"
base_key=$( { echo "$rootfs_key $DEBIAN_RUST v1"; cat "$HOST_CAS"/*.crt 2>/dev/null || true; } | sha256sum | cut -c1-16)
exit_if_current
ensure_rootfs_tar
t0=$SECONDS
open_rootfs_container
printf 'deb %s %s main\ndeb %s %s-backports main\n' "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" \
  >"$mnt/etc/apt/sources.list"
mkdir -p "$mnt/tmp/debs" "$mnt/usr/local/cargo/bin"
for d in "${DEBS[@]}"; do cp "$DEB_DIR/$d.deb" "$mnt/tmp/debs/"; done
# Only the arm64 rlibs are needed (a static link takes nothing from Debian's libstd .so), so the
# package is unpacked rather than installed with its arm64 runtime dependencies.
dpkg-deb -x "$DEB_DIR/$STD_ARM64.deb" "$mnt"
buildah umount "$ctr" >/dev/null

buildah run "$ctr" -- sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends /tmp/debs/*.deb >/dev/null \
  && rm -rf /tmp/debs /var/lib/apt/lists/* /var/cache/apt/archives/*.deb'
buildah config \
  --env CARGO_HOME=/usr/local/cargo \
  --env PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env RUST_VERSION="$CHANNEL" --cmd /bin/bash --label dev.dealpay.base-key="$base_key" \
  --label org.opencontainers.image.description="Debian $SUITE with Debian's rustc $DEBIAN_RUST and its arm64 std (scripts/image/cross-base-image.sh)" \
  "$ctr"
# shellcheck disable=SC2016 # expanded in the container
buildah run "$ctr" -- sh -c 'rustc --version && cargo --version \
  && ls -d "$(rustc --print sysroot)/lib/rustlib/aarch64-unknown-linux-gnu/lib"'
buildah commit --rm --quiet "$ctr" "$IMAGE" >/dev/null
trap - EXIT
log "committed $IMAGE in $((SECONDS - t0))s"
