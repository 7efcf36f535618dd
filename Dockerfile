# syntax=docker/dockerfile:1
# Build: docker build -t netbox-toolkit .
# Run:   docker run -p 8080:8080 -e NBT_NETBOX__URL=... -e NBT_NETBOX__TOKEN=... \
#          -e NBT_CREDENTIALS__USERNAME=... -e NBT_CREDENTIALS__PASSWORD=... netbox-toolkit

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and build artefacts between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin netbox-toolkit \
    && install -m 0755 target/release/netbox-toolkit /usr/local/bin/netbox-toolkit

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/netbox-toolkit --create-home toolkit
COPY --from=build /usr/local/bin/netbox-toolkit /usr/local/bin/netbox-toolkit
COPY config/commands.toml /etc/netbox-toolkit/commands.toml
COPY docker/config.toml /etc/netbox-toolkit/config.toml
USER toolkit
WORKDIR /var/lib/netbox-toolkit
EXPOSE 8080
ENV NBT_CONFIG=/etc/netbox-toolkit/config.toml
HEALTHCHECK --interval=30s --timeout=3s CMD ["netbox-toolkit", "health", "--url", "http://127.0.0.1:8080/api/v1/health"]
ENTRYPOINT ["netbox-toolkit"]
CMD ["serve"]
