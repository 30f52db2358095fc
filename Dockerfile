# restore-operator image: a static musl binary on distroless, running as non-root.
# Build: docker build -t restore-operator:0.1.0 .
FROM rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p restore-operator --bin restore-operator \
 && strip target/release/restore-operator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/target/release/restore-operator /usr/local/bin/restore-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/restore-operator"]
CMD ["--help"]
