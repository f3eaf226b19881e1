#!/usr/bin/env bash
# The Dockerfile's builder base image (RUST_IMAGE), assembled locally because the registries that
# host rust:1.95-bookworm are not reachable here: a debootstrap'd Debian bookworm with the C
# toolchain the build needs (gcc, libc6-dev for the static glibc, binutils for readelf), plus the
# Rust toolchain that rust-toolchain.toml pins, copied from this machine's rustup in the layout of
# the official rust image (RUSTUP_HOME=/usr/local/rustup, CARGO_HOME=/usr/local/cargo, both on PATH).
#
# Usage: scripts/image/base-image.sh IMAGE     (sourced settings: scripts/image/env.sh)
#
# Idempotent: the debootstrap rootfs is cached as a tarball under $IMAGE_CACHE, and the image is
# rebuilt only when its inputs (package list, toolchain, host CA bundle) change: their hash is the
# image's dev.dealpay.base-key label.
set -euo pipefail
trap 'echo "$0: failed at line $LINENO" >&2' ERR
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/image/env.sh
source "$HERE/env.sh"
# shellcheck source=scripts/image/rootfs.sh
source "$HERE/rootfs.sh"
IMAGE=${1:?usage: base-image.sh IMAGE}

SUITE=bookworm
MIRROR=${DEALPAY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What rust:1.95-bookworm gives a cargo build of this crate: a C compiler and linker (ring, the
# rustc link step), glibc's static archives (crt-static), readelf (the Dockerfile checks the binary
# has no NEEDED entry), CA roots and bash (the Dockerfile's SHELL).
PACKAGES=ca-certificates,gcc,libc6-dev,binutils,bash
CHANNEL=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$REPO/rust-toolchain.toml")
HOST_TRIPLE=x86_64-unknown-linux-gnu
TOOLCHAIN="$CHANNEL-$HOST_TRIPLE"
RUSTUP_SRC="${RUSTUP_HOME:-$HOME/.rustup}"
RUSTUP_BIN="$(command -v rustup)"

log() { echo "[base-image] $*" >&2; }

# The egress CA that this machine's network needs for crates.io is in the host's bundle; the
# base image trusts what the host trusts (the official image trusts Debian's bundle, which here
# would not reach crates.io). The build itself never needs more than the registry.
HOST_CAS=/usr/local/share/ca-certificates

toolchain_dir="$(readlink -f "$RUSTUP_SRC/toolchains/$TOOLCHAIN")"
[[ -x $toolchain_dir/bin/cargo ]] || { log "toolchain $TOOLCHAIN not installed in $RUSTUP_SRC"; exit 1; }
"$toolchain_dir/bin/rustc" --version | grep -q "^rustc $CHANNEL " \
  || { log "$toolchain_dir is not rustc $CHANNEL"; exit 1; }

rootfs_key=$(printf '%s\n' "$SUITE" "$MIRROR" "$PACKAGES" | sha256sum | cut -c1-16)
ROOTFS_TAR="$IMAGE_CACHE/rootfs-$SUITE-$rootfs_key.tar"
base_key=$( {
  echo "$rootfs_key v2"
  "$toolchain_dir/bin/rustc" --version --verbose
  "$toolchain_dir/bin/cargo" --version
  cat "$HOST_CAS"/*.crt 2>/dev/null || true
} | sha256sum | cut -c1-16)

exit_if_current
ensure_rootfs_tar
t0=$SECONDS
open_rootfs_container

# The pinned toolchain, without its HTML docs (the official image installs the minimal profile).
RH="$mnt/usr/local/rustup"
CH="$mnt/usr/local/cargo"
mkdir -p "$RH/toolchains/$TOOLCHAIN" "$CH/bin"
tar -C "$toolchain_dir" --exclude=./share/doc -cf - . | tar -C "$RH/toolchains/$TOOLCHAIN" -xf -
sed -i '/^rust-docs-/d' "$RH/toolchains/$TOOLCHAIN/lib/rustlib/components"
printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\nauto_self_update = "disable"\n' \
  "$TOOLCHAIN" >"$RH/settings.toml"
install -m 0755 "$RUSTUP_BIN" "$CH/bin/rustup"
for p in cargo rustc rustdoc rust-gdb rust-lldb; do ln -sf rustup "$CH/bin/$p"; done
chmod -R a+rX "$RH" "$CH"
# The cargo of a build resolves crates.io the way this machine does (no mirror or proxy setting
# exists on the host; the CA above is what it takes). Copy a host config if one appears.
for f in "${CARGO_HOME:-$HOME/.cargo}/config.toml" "${CARGO_HOME:-$HOME/.cargo}/config"; do
  [[ -f $f ]] && cp "$f" "$CH/"
done

buildah umount "$ctr" >/dev/null

buildah config \
  --env RUSTUP_HOME=/usr/local/rustup --env CARGO_HOME=/usr/local/cargo \
  --env PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env RUST_VERSION="$CHANNEL" --env RUSTUP_AUTO_INSTALL=0 \
  --cmd /bin/bash --label dev.dealpay.base-key="$base_key" \
  --label org.opencontainers.image.description="local stand-in for rust:$CHANNEL-$SUITE (scripts/image/base-image.sh)" \
  "$ctr"
buildah run "$ctr" -- sh -c 'rustc --version && cargo --version && cc --version | head -n 1'
buildah commit --rm --quiet "$ctr" "$IMAGE" >/dev/null
trap - EXIT
log "committed $IMAGE in $((SECONDS - t0))s"
