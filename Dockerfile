# Kiosk: multi-stage build, slim runtime, non-root user, database on a volume.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them. Cargo reads every target
# the manifest declares before building any, so the bench files come along (they are
# not compiled here); a failure in this step stops the build instead of hiding.
COPY Cargo.toml Cargo.lock build.rs ./
COPY benches benches
RUN mkdir src && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
    && mkdir -p locales migrations \
    && cargo build --release --locked --bin kiosk
COPY src src
COPY migrations migrations
COPY locales locales
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin kiosk

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin kiosk \
    && mkdir -p /data && chown kiosk /data
COPY --from=build /src/target/release/kiosk /usr/local/bin/kiosk
USER kiosk
WORKDIR /data
VOLUME ["/data"]
ENV KIOSK_DATABASE_URL=sqlite:///data/kiosk.db \
    KIOSK_LISTEN=0.0.0.0:8443 \
    RUST_LOG=info
EXPOSE 8443
# tini forwards SIGTERM so the shop finishes updates in flight before exiting.
ENTRYPOINT ["/usr/bin/tini", "--", "kiosk"]
CMD ["run"]
