# syntax=docker/dockerfile:1
# The Socket.IO sidecar (`chatroom-sidecar`) as a container image, for edge
# mode next to a Spin deployment (README "Deploying at the edge").
# Build from the repository root:
#
#     docker build -f deploy/sidecar.Dockerfile -t chatroom-sidecar .
#
# Configure it with CHATROOM_* environment variables (README "With real
# Spin" lists them): CHATROOM_REST_UPSTREAM, CHATROOM_INTERNAL_TOKEN,
# CHATROOM_REDIS_URL, CHATROOM_NODE_ID, ... The listen address is fixed
# below; it answers GET /healthz on that port. On SIGTERM it drains for up
# to CHATROOM_SHUTDOWN_GRACE_SECS (10 s): stop it with `docker stop -t 15`.

FROM rust:1.95-bookworm AS builder
# Pinned, not a floating `rust:1`: rust-toolchain.toml names "stable", so
# the pin is the workspace's `rust-version` (Cargo.toml, 1.95), and
# tests/deploy.rs fails when the two part. Use the image's own toolchain
# instead of downloading another.
ENV RUSTUP_TOOLCHAIN=${RUST_VERSION}
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p chatroom-sidecar \
    && install -D -m 0755 target/release/chatroom-sidecar /out/chatroom-sidecar

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 chatroom \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin chatroom
COPY --from=builder /out/chatroom-sidecar /usr/local/bin/chatroom-sidecar
USER 10001:10001
EXPOSE 3001
# Exec form: SIGTERM reaches the sidecar, which closes its sockets and
# clears its presence before exiting. (No HEALTHCHECK: the slim image has
# no HTTP client. In deploy/spinkube/, readiness is GET /healthz and
# liveness a TCP connect to the port: /healthz answers 503 while the REST
# side is away, which a restart does not mend.)
ENTRYPOINT ["/usr/local/bin/chatroom-sidecar", "--listen", "0.0.0.0:3001"]
