# parlor: one binary, one container (docs/DEPLOY.md, "Docker").
# Build: docker build -t parlor .
# Run, configured by environment variables (PARLOR_<SECTION>__<KEY>, see config/default.toml):
#   docker run -d --name parlor -p 8080:8080 -p 50000:50000/udp -p 50000:50000/tcp \
#     -e PARLOR_MEDIA__ANNOUNCE_IPS='["203.0.113.7"]' parlor
# Run, configured by a file of your own mounted over the image's (it must then set server.listen itself):
#   docker run -d --name parlor -p 8080:8080 -p 50000:50000/udp -p 50000:50000/tcp \
#     -v /etc/parlor/parlor.toml:/etc/parlor/parlor.toml:ro parlor
# Announce the address browsers reach the host at: inside the container parlor sees only its private
# bridge address, and Docker's port mapping is a 1:1 NAT in front of it. Check from the host with
#   docker exec parlor parlor check --config /etc/parlor/parlor.toml

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# aws-lc-sys (str0m's crypto) compiles C.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc g++ make \
 && rm -rf /var/lib/apt/lists/*
COPY . .
# The README's `cargo run --release`, without the run: the same command and profile, with the
# repository's Cargo.lock.
RUN cargo build --release

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/parlor --create-home parlor \
 && mkdir -p /etc/parlor
COPY --from=build /src/target/release/parlor /usr/local/bin/parlor
# The image's configuration: the built-in defaults plus what a container needs (listen on every
# interface). A file mounted here replaces it; PARLOR_* variables override either.
RUN printf '%s\n' \
      '# Layered over the built-in defaults (config/default.toml in the source).' \
      '[server]' \
      'listen = "0.0.0.0:8080"' \
      '[games]' \
      'log_dir = "/var/lib/parlor/games"' \
      > /etc/parlor/parlor.toml
USER parlor
WORKDIR /var/lib/parlor
# HTTP (and /ws), media over UDP, ICE-TCP (media.tcp_port "same": the UDP port's number).
EXPOSE 8080/tcp 50000/udp 50000/tcp
# Reads the same configuration as the server (the file and PARLOR_* variables, not serve's flags):
# a changed server.listen or TLS is followed.
HEALTHCHECK --interval=15s --timeout=5s --start-period=5s --retries=3 \
  CMD ["parlor", "healthcheck", "--config", "/etc/parlor/parlor.toml"]
ENTRYPOINT ["parlor"]
CMD ["serve", "--config", "/etc/parlor/parlor.toml"]
