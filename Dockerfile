# syntax=docker/dockerfile:1
#
# dealpay-operator image: one static binary in an empty (scratch) image.
#
#   docker build -t dealpay-operator:0.1.0 .
#   docker build --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" -t ... .
#
# The binary is linked statically against glibc (crt-static on the gnu target); TLS is rustls with
# ring, and the public CA roots are compiled in (webpki-roots), so the image needs no libc, no
# OpenSSL and no CA bundle. --no-default-features leaves out the `sandbox` feature: the image's
# binary has no simulator (no `dealpay sandbox`, no `pay --sandbox`, no rcgen or TLS server code).
# scripts/packaging-check reproduces the build command below on the host and runs the binary in an
# empty chroot, as it would run here.

ARG RUST_IMAGE=rust:1.95-bookworm

FROM ${RUST_IMAGE} AS builder
ARG TARGET=x86_64-unknown-linux-gnu
# Set by BuildKit/buildx per platform (`--platform linux/amd64,linux/arm64`, as the release workflow
# builds): arm64 builds the aarch64 target in the arm64 builder image (emulated); unset or amd64 keeps
# TARGET. A native cross build through $BUILDPLATFORM is future work (issue 13).
ARG TARGETARCH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
# crt-static: glibc linked in. getrandom_backend: the getrandom crates (0.3+) find getrandom(2)
# with dlsym, which a static binary cannot do, and would fall back to /dev/urandom; this makes
# them call getrandom(2) directly, so the binary needs no /dev at all.
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0 \
    RUSTFLAGS="-C target-feature=+crt-static --cfg getrandom_backend=\"linux_getrandom\""

# rust-toolchain.toml is not copied: it pins the same 1.95 release the image ships, and its
# rustfmt/clippy components are not needed to build. benches/ only because Cargo.toml names them.
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches

# Dependencies first, from the manifests only: this layer is reused until Cargo.toml/Cargo.lock
# change. Stub lib and main let cargo compile every dependency without the sources.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    mkdir -p src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo fetch --locked \
    && if [ "${TARGETARCH:-}" = arm64 ]; then TARGET=aarch64-unknown-linux-gnu; fi \
    && cargo build --release --locked --no-default-features --target "${TARGET}" \
    && rm -rf src

COPY src ./src

# The real build; the cache mount keeps the compiled dependencies between builds, so the binary is
# copied out of it in the same step, and checked to be static (no NEEDED shared library) and to run.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    touch src/main.rs src/lib.rs \
    && if [ "${TARGETARCH:-}" = arm64 ]; then TARGET=aarch64-unknown-linux-gnu; fi \
    && cargo build --release --locked --no-default-features --target "${TARGET}" \
    && install -D -m 0755 "target/${TARGET}/release/dealpay" /out/dealpay \
    && ! readelf -d /out/dealpay | grep -q '(NEEDED)' \
    && /out/dealpay --version

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
