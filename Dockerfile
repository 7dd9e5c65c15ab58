# syntax=docker/dockerfile:1
# flowvi image: flowvi-server and the flowvi CLI on Debian bookworm.
#
#   docker build -t flowvi .
#   docker run -p 50051:50051 -p 9464:9464 -v flowvi-data:/var/lib/flowvi flowvi
#
# Both stages install packages with the project's own deploy/install-deps.sh, so the image is
# built from exactly what `make test` uses. Without a Docker engine, buildah builds it the same
# way (`--format docker` keeps the HEALTHCHECK); `make test-deploy` does that and runs it.

FROM debian:bookworm-slim AS build
# Where the sources are built. `make test-deploy` passes the host checkout's own path and mounts
# the host's ccache at CCACHE_DIR: identical command lines then reuse what `make test` compiled.
ARG FLOWVI_SRC_DIR=/src
ARG CCACHE_DIR=/root/.cache/ccache
# ccache hashes the locale variables too: test-deploy passes the host's, unset stays unset.
ARG LANG
ARG LC_ALL
ARG LC_CTYPE
ARG LC_MESSAGES
# Empty: apt's own cache (a cache mount below). test-deploy points it at the host's .deb files.
ARG FLOWVI_APT_ARCHIVES=
WORKDIR ${FLOWVI_SRC_DIR}
COPY deploy/install-deps.sh deploy/install-deps.sh
RUN --mount=type=cache,target=/var/cache/apt/archives,sharing=locked \
    deploy/install-deps.sh --compile && rm -rf /var/lib/apt/lists/*
COPY . .
# Only what the image ships (the server, the CLI) and the unit tests of the engine, the server
# and the CLI, which run here; the slow convergence tests and the end-to-end tests (Python) run
# in `make test`, not in every image build.
RUN --mount=type=cache,target=/root/.cache/ccache \
    export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1 \
 && cmake --preset release -DFLOWVI_BUILD_BENCH=OFF >/dev/null \
 && cmake --build --preset release \
      --target flowvi-server flowvi engine_tests server_tests client_tests \
 && build/tests/engine/engine_tests --gtest_brief=1 --gtest_filter='-*Convergence*' \
 && build/tests/server/server_tests --gtest_brief=1 \
 && build/tests/client/client_tests --gtest_brief=1 \
 && mkdir -p /out \
 && install -s build/server/flowvi-server build/client/flowvi /out/

FROM debian:bookworm-slim AS runtime
ARG FLOWVI_APT_ARCHIVES=
COPY deploy/install-deps.sh /tmp/install-deps.sh
# A fixed uid/gid (10001), matched by deploy/k8s (runAsUser, fsGroup) and checked by test-deploy.
RUN --mount=type=cache,target=/var/cache/apt/archives,sharing=locked \
    /tmp/install-deps.sh --runtime \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /tmp/install-deps.sh \
 && groupadd --system --gid 10001 flowvi \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/flowvi --create-home \
            --shell /usr/sbin/nologin flowvi
COPY --from=build /out/ /usr/local/bin/

# Inside a container the server listens on all interfaces; the data directory is the volume.
ENV FLOWVI_LISTEN=0.0.0.0:50051 \
    FLOWVI_METRICS_LISTEN=0.0.0.0:9464 \
    FLOWVI_DATA_DIR=/var/lib/flowvi
# The server will refuse a non-loopback listen address without TLS unless told it is meant
# (plain gRPC behind a trusted network, e.g. a compose network or a cluster's service mesh).
# For TLS instead: mount the certificate, key and token files read-only (e.g. under
# /etc/flowvi/tls) and set FLOWVI_TLS_CERT, FLOWVI_TLS_KEY, FLOWVI_TOKENS_FILE (and
# FLOWVI_METRICS_AUTH_FILE) in place of this one; the HEALTHCHECK then needs `--tls --ca ...`.
ENV FLOWVI_INSECURE=1

USER 10001:10001
WORKDIR /var/lib/flowvi
VOLUME ["/var/lib/flowvi"]
# gRPC (API and grpc.health.v1), Prometheus /metrics.
EXPOSE 50051 9464
# Asks the server's own health service on the port FLOWVI_LISTEN names.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD flowvi health --timeout 4 --server "127.0.0.1:${FLOWVI_LISTEN##*:}" >/dev/null
# The server handles SIGTERM itself (health NOT_SERVING, checkpoint, drain within
# FLOWVI_SHUTDOWN_GRACE_S, default 10 s); orchestrators should wait longer than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/flowvi-server"]
