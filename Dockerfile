# The container image of Pixelmill: the service `pixelmill` (the entrypoint, `serve` by default)
# and the load generator `pixelmill-load`, both in /usr/local/bin, on distroless (glibc, libgcc,
# CA certificates; no shell, no package manager), run as the non-root user 10001 that the Helm
# chart's securityContext names.
#
#   cargo xtask image build        (docker, else buildah, else podman; tags and labels from git)
#   cargo xtask image smoke        (no engine needed: replays the runtime stage below with
#                                   buildah and probes the running service; see ARCHITECTURE.md)
#
# Stages: `chef` (toolchain, build tools, cargo-chef) -> `planner` (the dependency recipe) ->
# `builder` (dependencies in their own layer, then the two binaries) -> `runtime`.
# Base images are pinned by digest (multi-arch index digests); bump them together with the
# workspace's rust-version. The runtime stage has no RUN: what it needs is prepared in `builder`
# under /out and copied from there, which is also what `cargo xtask image smoke` relies on.

FROM rust:1.95.0-slim-bookworm@sha256:d7482085ff5b415f84dba5647ae71606650bdef00db7aeb69f4b3d170c3e4082 AS chef
# cmake and nasm build libjpeg-turbo with its SIMD code (turbojpeg) and rav1e's assembly; make
# drives the cmake build; gcc (in the base image) builds libwebp, SQLite, mimalloc and aws-lc.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        cmake=3.25.1-1 \
        make=4.3-4.1 \
        nasm=2.16.01-1 \
        pkg-config=1.8.1-1 \
    && rm -rf /var/lib/apt/lists/* \
    && cargo install cargo-chef --locked --version 0.1.78 \
    && rm -rf "$CARGO_HOME/registry"
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Dependencies only: this layer is rebuilt when a manifest or Cargo.lock changes, not when the
# project's own code does.
RUN cargo chef cook --release --locked --recipe-path recipe.json -p pixelmill -p pixelmill-load
COPY . .
# The binaries without their debug sections (they are most of the size; the symbol table stays,
# so a backtrace still names its functions), the non-root user, and the embedded default's data
# directory, laid out under /out as the runtime stage takes them.
RUN cargo build --release --locked -p pixelmill -p pixelmill-load \
    && mkdir -p /out/usr/local/bin /out/etc /out/var/lib/pixelmill \
    && objcopy --strip-debug target/release/pixelmill /out/usr/local/bin/pixelmill \
    && objcopy --strip-debug target/release/pixelmill-load /out/usr/local/bin/pixelmill-load \
    && printf '%s\n' \
        'root:x:0:0:root:/root:/sbin/nologin' \
        'pixelmill:x:10001:10001:pixelmill:/var/lib/pixelmill:/sbin/nologin' >/out/etc/passwd \
    && printf '%s\n' \
        'root:x:0:' \
        'pixelmill:x:10001:' >/out/etc/group

FROM gcr.io/distroless/cc-debian12@sha256:471dbca9cad607b9a32c10e9c31fb09ffaeb2d460e0afbff86c27abbc80b1b98 AS runtime
LABEL org.opencontainers.image.title="pixelmill" \
      org.opencontainers.image.description="Pixelmill image service (pixelmill) and its load generator (pixelmill-load)" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.source="https://github.com/pixelmill/pixelmill" \
      org.opencontainers.image.vendor="Pixelmill"
COPY --from=builder /out/etc/passwd /out/etc/group /etc/
COPY --from=builder /out/usr/local/bin/ /usr/local/bin/
# Where the embedded default (SQLite and blobs) lives when neither DATABASE_URL nor
# PIXELMILL_STORAGE is set, as in `docker run`. The chart sets both and mounts only /tmp
# writable (readOnlyRootFilesystem), so there this directory stays unused.
COPY --from=builder --chown=10001:10001 /out/var/lib/pixelmill /var/lib/pixelmill
# Listen on every interface (the container's own network); off loopback the service refuses to
# start without API keys for writes, hence auth on. The chart's ConfigMap sets the same values.
ENV PIXELMILL_LISTEN=0.0.0.0:8080 \
    PIXELMILL_AUTH=true \
    PIXELMILL_DATA_DIR=/var/lib/pixelmill
USER 10001:10001
EXPOSE 8080/tcp
ENTRYPOINT ["/usr/local/bin/pixelmill"]
CMD ["serve"]
