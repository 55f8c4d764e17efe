# Distribuerad container image.
#
#   podman build -t distribuerad .        (or: docker build -t distribuerad .)
#   docker run -p 3333:3333 -v distribuerad-data:/data distribuerad
#
# Two stages: the first compiles on debian:bookworm with the -dev packages, the
# second is debian:bookworm-slim with only the shared libraries the binary
# links (libh2o-evloop and its own dependencies), libpq5 (which the server
# loads at start only for -database-url), libcurl for the dq client
# (also the health check of docker-compose.yml) and tzdata, which cron jobs
# need for CRON_TZ=/TZ= zones. The man pages distribuerad(8) and dq(1) are in
# /usr/local/share/man. Configure the server with
# DISTRIBUERAD_* environment variables or flags after the image name; see
# `docker run --rm distribuerad -help`. `make image-test` builds this file and
# tests the result (tests/image/run.sh).

FROM debian:bookworm AS build
# The packages first, so that a change to the sources keeps this layer cached.
# libssl-dev is named because h2o.h includes <openssl/ssl.h> but Debian's
# libh2o-evloop-dev does not depend on it.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential pkg-config libh2o-evloop-dev libssl-dev libpq-dev libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY src ./src
COPY man ./man
RUN make -j"$(nproc)" CFLAGS=-O2 distribuerad dq \
 && strip --strip-unneeded distribuerad dq \
 && ./distribuerad -version \
 && ./dq --help >/dev/null \
 && gzip -9n man/dq.1 man/distribuerad.8

FROM debian:bookworm-slim
# The image label's version: the same as src/base/version.h, which
# tests/blackbox/test_version.py checks.
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="distribuerad" \
      org.opencontainers.image.description="HTTP event queue: immediate, delayed and expiring events, leases and cron jobs over channels" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="debian:bookworm-slim"
# One layer: runtime libraries, tzdata, the user and /data; then apt's lists
# and caches go, as nothing in the image runs apt again. (The slim base
# already keeps dpkg from installing docs and man pages.)
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libh2o-evloop0.13 libpq5 libcurl4 tzdata \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/lib/dpkg/*-old \
           /var/log/apt /var/log/dpkg.log \
 && groupadd --gid 10001 distribuerad \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /data \
        --shell /usr/sbin/nologin distribuerad \
 && install -d -o 10001 -g 10001 -m 0750 /data
COPY --from=build /src/distribuerad /src/dq /usr/local/bin/
COPY --from=build /src/man/dq.1.gz /usr/local/share/man/man1/
COPY --from=build /src/man/distribuerad.8.gz /usr/local/share/man/man8/
ENV DISTRIBUERAD_DATA_DIR=/data
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 3333
# The server stops gracefully on SIGTERM: it stops accepting, finishes
# in-flight requests, flushes and fsyncs its log and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/distribuerad"]
