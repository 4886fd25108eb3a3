# syntax=docker/dockerfile:1
# A minimal, non-root image: the static parts of Debian 12 (glibc, CA certificates) and the
# binary. Build: docker build --build-arg GIT_COMMIT="$(git rev-parse --short=12 HEAD)" -t gitea-ci-autoscaler .
# (the build context holds no .git, so --version names the commit only when it is passed).

FROM rust:1.95-bookworm AS build
ARG GIT_COMMIT=""
ENV GCA_GIT_COMMIT=${GIT_COMMIT}
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p autoscaler-bin \
 && cp target/release/gitea-ci-autoscaler /gitea-ci-autoscaler

# distroless/cc: glibc and /etc/ssl/certs/ca-certificates.crt (rustls reads the system roots),
# no shell, user 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /gitea-ci-autoscaler /usr/local/bin/gitea-ci-autoscaler
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/gitea-ci-autoscaler"]
CMD ["run"]
