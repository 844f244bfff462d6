# syntax=docker/dockerfile:1
# The oxka images, built the usual way (docker build / buildx; kind loads the result):
#
#   docker build -t oxka:0.1.0 .                                       # broker and coordinator (default target)
#   docker build --target oxka-operator -t oxka-operator:0.1.0 .       # the operator
#
# Tags follow the crate version (Cargo.toml's workspace.package.version): the Helm chart's default
# operator image is oxka-operator:<appVersion> and a KafkaCluster's default image is oxka:<version>.
#
# Both targets share one build stage (one cargo build). The runtime is FROM scratch plus exactly what
# e2e/image/rootfs.sh lays out: the binary, the glibc/libgcc libraries it links (what distroless/cc
# carries), /etc/passwd and /etc/group, /tmp and /var/lib/oxka. e2e/image/build.sh builds the same
# images without a daemon from the same script; e2e/image/compare.sh checks that the two agree.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p oxka-broker --bin oxka -p oxka-operator --bin oxka-operator \
 && sh e2e/image/rootfs.sh target/release/oxka /out/oxka --distribution \
 && sh e2e/image/rootfs.sh target/release/oxka-operator /out/oxka-operator

# The operator (the Helm chart's Deployment runs `oxka-operator run ...`). Non-root: nonroot (65532).
FROM scratch AS oxka-operator
COPY --from=build /out/oxka-operator/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin
USER 65532:65532
WORKDIR /
ENTRYPOINT ["/usr/local/bin/oxka-operator"]

# The broker and coordinator image (pods run `oxka broker FILE` / `oxka coordinator FILE`). Non-root:
# oxka (1000), the uid the operator's pods run as. Last, so that a plain `docker build .` builds it.
# It holds the release archive's layout in /opt/oxka, the working directory, so that
# `kubectl exec POD -- bin/kafka-topics.sh ...` works as in a Kafka image (bin/ names link to oxka).
FROM scratch AS oxka
COPY --from=build /out/oxka/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin
USER 1000:1000
WORKDIR /opt/oxka
ENTRYPOINT ["/usr/local/bin/oxka"]
