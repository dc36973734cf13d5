# Builds every process of the workspace into one small image; docker-compose.yml runs each
# process from it with a different command.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --workspace --bins \
 && mkdir /out \
 && cp target/release/trainer target/release/generator target/release/detector target/release/inspector /out/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
WORKDIR /app
ENV RUST_LOG=info
