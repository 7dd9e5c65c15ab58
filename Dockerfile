# flowvi image. Both stages start from Debian bookworm and install packages with the project's
# own deploy/install-deps.sh, so the image is built from exactly what `make test` uses.
# (The deploy issue completes this with the server, the CLI and the health check.)

FROM debian:bookworm-slim AS build
WORKDIR /src
COPY deploy/install-deps.sh deploy/install-deps.sh
RUN deploy/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake --preset release -DFLOWVI_BUILD_BENCH=OFF \
 && cmake --build --preset release \
 && ctest --preset release -E 'Convergence'

FROM debian:bookworm-slim AS runtime
COPY deploy/install-deps.sh /tmp/install-deps.sh
RUN /tmp/install-deps.sh --runtime && rm -rf /var/lib/apt/lists/* /tmp/install-deps.sh \
 && useradd --system --uid 10001 --home-dir /var/lib/flowvi --create-home flowvi
COPY --from=build /src/build/engine/flowvi-engine-demo /usr/local/bin/
USER flowvi
WORKDIR /var/lib/flowvi
VOLUME ["/var/lib/flowvi"]
ENTRYPOINT ["/usr/local/bin/flowvi-engine-demo"]
