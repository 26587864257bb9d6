# The s360-sync image: a release build on the Rust image, then the binary
# alone on Debian slim, run as an unprivileged user.
#
#   docker build -t s360-sync:0.1.0 .
#   docker run --rm -v "$PWD/pipelines:/etc/s360-sync:ro" s360-sync:0.1.0 validate /etc/s360-sync/sync-orders.yaml
#
# The build needs nothing beyond crates.io: SQLite is bundled and TLS is
# rustls. deploy/kubernetes/cronjob.yaml runs this image every 15 minutes;
# tests/it/deploy.rs has a long test that builds it and runs the demo in it.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the target folder between builds
# (BuildKit); the binary is copied out of the cached target folder.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin s360-sync \
    && cp target/release/s360-sync /usr/local/bin/s360-sync

FROM debian:bookworm-slim
# CA roots for HTTPS to the CRM and object stores; nothing else: time zones
# are built into the binary.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/s360-sync /usr/local/bin/s360-sync
# The state (SQLite) and reports go to /var/lib/s360-sync, a volume.
RUN mkdir -p /var/lib/s360-sync && chown 65532:65532 /var/lib/s360-sync
USER 65532:65532
ENV S360_SYNC_STATE_DIR=/var/lib/s360-sync
WORKDIR /var/lib/s360-sync
ENTRYPOINT ["s360-sync"]
CMD ["--help"]
