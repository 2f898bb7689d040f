# syntax=docker/dockerfile:1
# The whole backend on one machine (`chatroom`: the embedded Spin host
# running the REST and page components, and the Socket.IO sidecar, on one
# port) as a container image. Build from the repository root:
#
#     docker build -f deploy/chatroom.Dockerfile -t chatroom .
#     docker run -p 3000:3000 -v chatroom-data:/data chatroom
#
# The database lives in the /data volume; compiled components are cached
# in /var/cache/chatroom (a start with a warm cache does not recompile).
# On SIGTERM it drains for up to CHATROOM_SHUTDOWN_GRACE_SECS (10 s), as
# long as `docker stop` waits by default: give it more with `-t 15`.

FROM rust:1.95-bookworm AS builder
# Pinned, not a floating `rust:1`: rust-toolchain.toml names "stable", so
# the pin is the workspace's `rust-version` (Cargo.toml, 1.95), and
# tests/deploy.rs fails when the two part. Use the image's own toolchain
# instead of downloading another, with the target the components need
# (native/chatroom/build.rs builds them by spin.toml's build commands).
ENV RUSTUP_TOOLCHAIN=${RUST_VERSION}
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p chatroom \
    && install -D -m 0755 target/release/chatroom /out/chatroom \
    && install -D -m 0644 spin.toml /out/app/spin.toml \
    && install -D -m 0644 target/wasm/wasm32-wasip2/release/chatroom_rest.wasm \
        /out/app/target/wasm/wasm32-wasip2/release/chatroom_rest.wasm \
    && install -D -m 0644 target/wasm/wasm32-wasip2/release/chatroom_page.wasm \
        /out/app/target/wasm/wasm32-wasip2/release/chatroom_page.wasm

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 chatroom \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin chatroom \
    && mkdir -p /data /var/cache/chatroom \
    && chown 10001:10001 /data /var/cache/chatroom
COPY --from=builder /out/chatroom /usr/local/bin/chatroom
# The manifest and the .wasm files at the paths spin.toml names (relative
# to the manifest).
COPY --from=builder /out/app /app
USER 10001:10001
VOLUME /data
EXPOSE 3000
# Exec form: SIGTERM reaches chatroom, which shuts down gracefully. Other
# settings (CHATROOM_AUTH_SECRET, CHATROOM_CORS_ORIGINS, the limits) come
# from the environment. (No HEALTHCHECK: the slim image has no HTTP client.)
ENTRYPOINT ["/usr/local/bin/chatroom", "--listen", "0.0.0.0:3000", "--manifest", "/app/spin.toml", "--state-dir", "/data", "--compile-cache", "/var/cache/chatroom"]
