# parlor: one binary, one container.
# Build: docker build -t parlor .
# Run:   docker run --rm -p 8080:8080 -p 50000:50000/udp \
#          -e PARLOR_MEDIA__ANNOUNCE_IPS='["203.0.113.7"]' parlor
#        (announce the address browsers reach the host at; see config/default.toml)

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# aws-lc-sys (str0m's crypto) compiles C.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc g++ make \
 && rm -rf /var/lib/apt/lists/*
COPY . .
# The same build as the README's `cargo run --release`.
RUN cargo build --release --locked --bin parlor

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/parlor --create-home parlor
COPY --from=build /src/target/release/parlor /usr/local/bin/parlor
COPY config/default.toml /etc/parlor/parlor.toml
USER parlor
WORKDIR /var/lib/parlor
# Inside a container the server must listen on every interface; mount your own file over
# /etc/parlor/parlor.toml or set PARLOR_<SECTION>__<KEY> variables to change anything else.
ENV PARLOR_SERVER__LISTEN=0.0.0.0:8080
EXPOSE 8080/tcp 50000/udp
HEALTHCHECK --interval=15s --timeout=5s --start-period=5s --retries=3 \
  CMD ["parlor", "healthcheck", "--addr", "127.0.0.1:8080"]
ENTRYPOINT ["parlor", "serve", "--config", "/etc/parlor/parlor.toml"]
