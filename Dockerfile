# Entry gateway image. Build: docker build -t entry .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/entry /usr/local/bin/entry
ENV ENTRY_LISTEN=0.0.0.0:8080 ENTRY_DATA_DIR=/var/lib/entry
VOLUME /var/lib/entry
EXPOSE 8080
ENTRYPOINT ["entry"]
CMD ["serve"]
