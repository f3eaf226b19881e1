# syntax=docker/dockerfile:1
#
# dealpay-operator image: one static binary in an empty (scratch) image, for linux/amd64 and
# linux/arm64.
#
#   docker build -t dealpay-operator:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=0.1.0 \
#     --build-arg REVISION="$(git rev-parse HEAD)" -t ... .
#   scripts/image-check    (buildah, with a locally assembled RUST_IMAGE; see docs/image.md)
#
# The binary is linked statically against glibc (crt-static on the gnu target); TLS is rustls with
# ring, and the public CA roots are compiled in (webpki-roots), so the image needs no libc, no
# OpenSSL and no CA bundle. --no-default-features leaves out the `sandbox` feature: the image's
# binary has no simulator (no `dealpay sandbox`, no `pay --sandbox`, no rcgen or TLS server code).

ARG RUST_IMAGE=rust:1.95-bookworm

# The builder always runs on the build machine's own platform and cross-compiles for the target
# platform: no emulated compiler, whose arm64 build would take hours. BuildKit sets BUILDPLATFORM
# and TARGETARCH (buildx --platform linux/amd64,linux/arm64); buildah 1.28 leaves BUILDPLATFORM
# unset in FROM lines unless it is passed as a build argument (scripts/image-check does).
FROM --platform=${BUILDPLATFORM} ${RUST_IMAGE} AS builder
# The target when TARGETARCH is unset (a builder without platform arguments).
ARG TARGET=x86_64-unknown-linux-gnu
ARG TARGETARCH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
# crt-static: glibc linked in. getrandom_backend: the getrandom crates (0.3+) find getrandom(2)
# with dlsym, which a static binary cannot do, and would fall back to /dev/urandom; this makes
# them call getrandom(2) directly, so the binary needs no /dev at all. The linkers are Debian's
# <triple>-gcc names, which are the native gcc on the matching architecture and the cross gcc
# elsewhere; cc-rs finds the same names for ring's C and assembly.
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0 \
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=x86_64-linux-gnu-gcc \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    RUSTFLAGS="-C target-feature=+crt-static --cfg getrandom_backend=\"linux_getrandom\""

# The Rust target of TARGETARCH, and for a cross build Debian's cross gcc and glibc (linker and
# libc.a) plus Rust's std for the target (rustup, unless the base image already has that std).
# The cross packages are Debian's own for the base image's release: no version pin to go stale.
# hadolint ignore=DL3008
RUN case "${TARGETARCH:-}" in \
      "") ;; \
      amd64) TARGET=x86_64-unknown-linux-gnu ;; \
      arm64) TARGET=aarch64-unknown-linux-gnu ;; \
      *) echo "unsupported TARGETARCH ${TARGETARCH}" >&2; exit 1 ;; \
    esac \
    && echo "${TARGET}" >/target \
    && if [ "${TARGET}" != "$(rustc -vV | sed -n 's/^host: //p')" ]; then \
         case "${TARGET}" in \
           aarch64-*) gcc=gcc-aarch64-linux-gnu libc=libc6-dev-arm64-cross ;; \
           x86_64-*) gcc=gcc-x86-64-linux-gnu libc=libc6-dev-amd64-cross ;; \
         esac \
         && apt-get update \
         && apt-get install -y --no-install-recommends "${gcc}" "${libc}" \
         && rm -rf /var/lib/apt/lists/* \
         && { [ -d "$(rustc --print sysroot)/lib/rustlib/${TARGET}/lib" ] || rustup target add "${TARGET}"; }; \
       fi \
    && echo "building for ${TARGET} on $(uname -m)"

# The build context is exactly what .dockerignore lets in: the workspace's manifests, Cargo.lock,
# benches/ (named in Cargo.toml) and the sources of the root package and of every crate under
# crates/, so a new member crate needs no change here. There is no dependency-only layer built
# from stub sources (it would need a stub per member crate): the cache mounts below keep the
# registry and the compiled dependencies between builds instead.
COPY . .

# Only the operator's binary: the workspace's default members include dealpay-sandbox, which the
# image must not even compile. The cache mount keeps compiled dependencies between builds, so the
# binary is copied out of it in the same step. The workspace's own sources are touched first:
# cargo decides freshness by mtime, and a checkout of an older commit would otherwise look older
# than the cached build. The binary is then checked to be static (no NEEDED shared library), of
# the target's machine, and to run when the builder can run it.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    TARGET="$(cat /target)" \
    && find . -path ./target -prune -o -name '*.rs' -exec touch {} + \
    && cargo fetch --locked --target "${TARGET}" \
    && cargo build --release --locked --no-default-features --target "${TARGET}" --package dealpay-operator --bin dealpay \
    && install -D -m 0755 "target/${TARGET}/release/dealpay" /out/dealpay \
    && ! readelf -d /out/dealpay | grep -q '(NEEDED)' \
    && readelf -h /out/dealpay | grep 'Machine:' \
    && if [ "${TARGET}" = "$(rustc -vV | sed -n 's/^host: //p')" ]; then /out/dealpay --version; fi

FROM scratch
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="dealpay-operator" \
      org.opencontainers.image.description="Kubernetes operator that pays Tencent Cloud orders declared as DealPayment resources" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="dealpay" \
      org.opencontainers.image.documentation="docs/install.md" \
      org.opencontainers.image.base.name="scratch"

COPY --from=builder /out/dealpay /dealpay

# A fixed non-root UID/GID (the chart's securityContext runs as the same 65532).
USER 65532:65532
# /metrics, /healthz and /readyz (DEALPAY_METRICS_ADDR, default 0.0.0.0:8080).
EXPOSE 8080
ENTRYPOINT ["/dealpay"]
CMD ["run"]
