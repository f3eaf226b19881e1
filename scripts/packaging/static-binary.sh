# shellcheck shell=bash
# The image's binary without an image: hadolint on the Dockerfile, then the Dockerfile's cargo
# command and flags run on the host in a copy of the Docker build context (.dockerignore): a static
# binary (--no-default-features: no `sandbox` subcommand, no simulator code) that runs in an empty
# chroot as 65532 (--version; `crd` equals crds/), and pays against the checkout's `dealpay sandbox`
# (target/debug/dealpay) over HTTPS with only --ca-file (no CA bundle, no /dev, no /etc), also by
# host name via /etc/hosts, and refuses the sandbox without the CA. Fast once cached, so it runs in
# every test run; scripts/image-check builds the real image with buildah. Sourced; the payments
# are in chroot-pay.sh.

RUST_TARGET=x86_64-unknown-linux-gnu
# The Dockerfile's RUSTFLAGS (dockerfile-facts checks that they are the same).
STATIC_RUSTFLAGS='-C target-feature=+crt-static --cfg getrandom_backend="linux_getrandom"'
TARGET_DIR="${PACKAGING_TARGET_DIR:-$CACHE/target-static}"
CTX="${PACKAGING_CONTEXT_DIR:-$CACHE/docker-context}"
BIN="$OUT/dealpay"
CHROOT=$(command -v chroot || echo /usr/sbin/chroot)
TIMEOUT=$(command -v timeout || echo /usr/bin/timeout)
# shellcheck source=chroot-pay.sh
. "$(dirname "${BASH_SOURCE[0]}")/chroot-pay.sh"

dockerfile_facts() { # what the chart and the host reproduction rely on
  local f="$REPO/Dockerfile" rc=0 want
  for want in \
      '^FROM (--platform=\$\{BUILDPLATFORM\} )?\$\{RUST_IMAGE\} AS builder' '^ARG RUST_IMAGE=rust:1\.95-bookworm$' '^FROM scratch$' \
      '^USER 65532:65532$' '^ENTRYPOINT \["/dealpay"\]$' '^CMD \["run"\]$' '^EXPOSE 8080$' \
      "^ARG TARGET=$RUST_TARGET\$" \
      'cargo build --release --locked --no-default-features --target "\$\{TARGET\}"' 'cargo fetch --locked' \
      'org\.opencontainers\.image\.title' 'org\.opencontainers\.image\.version' \
      'org\.opencontainers\.image\.source|org\.opencontainers\.image\.revision' 'org\.opencontainers\.image\.licenses'; do
    if grep -Eq -- "$want" "$f"; then echo "ok: $want"; else echo "MISSING: $want"; rc=1; fi
  done
  local dockerfile_flags
  dockerfile_flags=$(sed -n 's/^ *RUSTFLAGS="\(.*\)"$/\1/p' "$f" | sed 's/\\"/"/g')
  if [[ $dockerfile_flags == "$STATIC_RUSTFLAGS" ]]; then echo "ok: RUSTFLAGS $dockerfile_flags"
  else echo "RUSTFLAGS in the Dockerfile ($dockerfile_flags) != the host build's ($STATIC_RUSTFLAGS)"; rc=1; fi
  # the scratch stage copies exactly one file
  [[ $(awk '/^FROM scratch/{s=1} s && /^COPY/' "$f" | wc -l) -eq 1 ]] || { echo "scratch stage must COPY only the binary"; rc=1; }
  # .dockerignore: everything out ("*"), then only the build inputs back in
  local paths
  paths=$(dockerignore_paths) || rc=1
  # only build inputs (crates/: the workspace's member crates), and at least the root package's
  local p
  for p in $paths; do
    [[ " Cargo.toml Cargo.lock benches crates src " == *" $p "* ]] || { echo ".dockerignore lets in $p"; rc=1; }
  done
  for p in Cargo.toml Cargo.lock src; do
    [[ " $(echo $paths) " == *" $p "* ]] || { echo ".dockerignore keeps out $p"; rc=1; }
  done
  echo ".dockerignore lets in:" $paths
  return $rc
}

hadolint_clean() {
  local out
  out=$("$VENV/bin/hadolint" --no-color "$REPO/Dockerfile" 2>&1); local rc=$?
  echo "$out"
  [[ $rc -eq 0 && -z $out ]]
}

dockerignore_paths() { # the "!path" lines of .dockerignore, which must start with "*"
  local line first=""
  while IFS= read -r line || [[ -n $line ]]; do
    line="${line%%#*}"; line="${line//[[:space:]]/}"
    [[ -z $line ]] && continue
    if [[ -z $first ]]; then
      first=$line
      [[ $first == '*' ]] || { echo ".dockerignore must start with '*' (got '$line')" >&2; return 1; }
      continue
    fi
    [[ $line == '!'* ]] || { echo ".dockerignore: only '!path' lines after '*' are supported (got '$line')" >&2; return 1; }
    line="${line#!}"
    echo "${line%/}"
  done <"$REPO/.dockerignore"
}

sync_file() { # SRC DST: copy only when the content differs, so unchanged files keep their mtime
  if [[ -f $2 ]] && cmp -s "$1" "$2"; then return 0; fi
  mkdir -p "$(dirname "$2")"
  cp "$1" "$2"
}

docker_context() {
  # Exactly what .dockerignore lets into the build context, synced into $CTX (in the cache) by
  # content: files that did not change keep their mtime, so cargo reuses the previous build even
  # from a fresh clone, and rebuilds when a source really changed.
  local paths p f
  paths=$(dockerignore_paths) || return 1
  mkdir -p "$CTX"
  : >"$OUT/docker-context.files"
  for p in $paths; do
    [[ -e $REPO/$p ]] || { echo "missing in the repo: $p"; return 1; }
    (cd "$REPO" && find "$p" -type f) >>"$OUT/docker-context.files"
  done
  # The image's Rust is the same 1.95 that rust-toolchain.toml pins for the host build.
  echo rust-toolchain.toml >>"$OUT/docker-context.files"
  while IFS= read -r f; do sync_file "$REPO/$f" "$CTX/$f" || return 1; done <"$OUT/docker-context.files"
  # drop what is no longer in the context
  (cd "$CTX" && find . -type f ! -path './target/*' | sed 's|^\./||') | sort >"$OUT/docker-context.have"
  sort "$OUT/docker-context.files" | comm -23 "$OUT/docker-context.have" - | while IFS= read -r f; do
    rm -f "$CTX/$f"
  done
  echo "context $CTX: $(wc -l <"$OUT/docker-context.files") files from:" $paths
  if ! grep -q "fn main() {}" "$REPO/Dockerfile"; then
    (cd "$CTX" && cargo fetch --locked) && echo "dependency step: cargo fetch --locked in the context"
    return
  fi
  # the Dockerfile's dependency layer: manifests and benches/, with stub sources
  local stage1="$OUT/docker-stage1"
  rm -rf "$stage1"; mkdir -p "$stage1/src"
  cp -a "$CTX/Cargo.toml" "$CTX/Cargo.lock" "$CTX/rust-toolchain.toml" "$stage1/"
  [[ -d $CTX/benches ]] && cp -a "$CTX/benches" "$stage1/"
  echo 'fn main() {}' >"$stage1/src/main.rs"; : >"$stage1/src/lib.rs"
  (cd "$stage1" && cargo fetch --locked) || {
    echo "the Dockerfile's dependency step (cargo fetch on the manifests + stub sources) fails"; return 1; }
  echo "dependency step: cargo fetch --locked works on the manifests with stub sources"
}

static_build() {
  # The Dockerfile's build command and flags, run in a copy of its build context; nice: the
  # machine is shared. cargo reuses $TARGET_DIR: only changed sources are rebuilt.
  (cd "$CTX" && RUSTFLAGS="$STATIC_RUSTFLAGS" CARGO_INCREMENTAL=0 \
    nice -n 10 cargo build --release --locked --no-default-features --target "$RUST_TARGET" --target-dir "$TARGET_DIR") || return 1
  install -m 0755 "$TARGET_DIR/$RUST_TARGET/release/dealpay" "$BIN"
  ls -l "$BIN"
}

is_static() {
  local f l
  f=$(file -b "$BIN"); echo "file: $f"
  l=$(ldd "$BIN" 2>&1); echo "ldd: $l"
  [[ $f == *"statically linked"* || $f == *"static-pie linked"* ]] || return 1
  [[ $f != *"dynamically linked"* ]] || return 1
  [[ $l == *"not a dynamic executable"* || $l == *"statically linked"* ]] || return 1
  # nothing that the dynamic loader would resolve
  ! readelf -d "$BIN" 2>/dev/null | grep -q NEEDED
}

new_root() { # DIR: an empty directory holding only /dealpay
  rm -rf "$1"; mkdir -p "$1"
  install -m 0755 "$BIN" "$1/dealpay"
}

chroot_version() {
  local root="$OUT/chroot-empty"
  new_root "$root"
  echo "chroot contents: $(cd "$root" && find . | tr '\n' ' ')"
  env -i "$CHROOT" --userspec=65532:65532 "$root" /dealpay --version
}

chroot_crd() {
  local root="$OUT/chroot-empty"
  new_root "$root"
  env -i "$CHROOT" --userspec=65532:65532 "$root" /dealpay crd >"$OUT/crd-from-chroot.yaml" || return 1
  cmp "$OUT/crd-from-chroot.yaml" "$CRD_FILE"
}

no_sandbox_in_binary() {
  local out rc=0
  if out=$("$BIN" sandbox --help 2>&1); then echo "\`dealpay sandbox\` exists in the production binary"; rc=1
  else echo "dealpay sandbox: $(head -n 1 <<<"$out")"; fi
  grep -q "unrecognized subcommand 'sandbox'" <<<"$out" || { echo "not refused as an unknown subcommand: $out"; rc=1; }
  out=$("$BIN" --help) || rc=1
  if grep -Eq '^ +sandbox' <<<"$out"; then echo "--help lists sandbox"; rc=1; fi
  out=$(env -i "$BIN" pay --sandbox -f "$REPO/examples/dealpayment.yaml" 2>&1); local prc=$?
  echo "pay --sandbox: exit $prc: $out"
  [[ $prc -eq 2 ]] && grep -q "built without the sandbox" <<<"$out" || { echo "pay --sandbox must exit 2 saying why"; rc=1; }
  # no simulator code linked in: its crates and sources leave their paths in panic locations
  local hits
  hits=$(grep -c -a -E 'rcgen-[0-9]|src/sandbox/|dealpay[-_]sandbox' "$BIN")
  echo "sandbox/rcgen strings in the binary: $hits"
  [[ $hits -eq 0 ]] || rc=1
  return $rc
}

docker_checks() {
  check dockerfile-facts dockerfile_facts
  check hadolint-zero-findings hadolint_clean
  if [[ ${PACKAGING_SKIP_BUILD:-0} == 1 ]]; then
    skip static-build "PACKAGING_SKIP_BUILD=1"
    return 0
  fi
  if [[ $(id -u) -ne 0 ]]; then
    record FAIL chroot "chroot needs root"
    return 0
  fi
  log "static release build (first time: several minutes; log $OUT/logs/static-build.log)"
  check docker-build-context docker_context || return 0
  check static-build static_build || return 0
  check binary-is-static is_static
  check chroot-empty-version chroot_version
  check chroot-empty-crd-equals-crds-dir chroot_crd
  check production-binary-has-no-sandbox no_sandbox_in_binary
  check sandbox-binary-of-the-checkout sandbox_bin || return 0
  if check sandbox-https-start start_sandbox; then
    check chroot-pay-https-with-ca-file chroot_pay
    check chroot-pay-https-by-hostname chroot_pay_by_hostname
    check chroot-pay-refuses-untrusted-cert chroot_pay_untrusted
  fi
  cleanup
}
