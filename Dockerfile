# syntax=docker/dockerfile:1

# Dockerfile builds flystorage for Fly (fly.toml, fly.sqlite.toml) and for
# docker compose. internal/deploy's tests read this file: they build both
# binaries with the exact `go build` lines below, check that the results are
# statically linked, and check that fly.toml's release_command names one of
# them. Keep one `go build` per binary, with its flags on the line.

# The builder is the official Go image at go.mod's Go version.
FROM golang:1.26-bookworm AS build
WORKDIR /src

# Dependencies first, so that a change to the code alone reuses this layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

# CGO_ENABLED=0 gives static binaries (modernc.org/sqlite is pure Go), so
# the runtime image needs no C library of a particular version; -trimpath
# and -s -w leave out local paths and symbol tables.
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /app/app ./cmd/app && \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /app/migrate ./cmd/migrate

# The runtime is debian:bookworm-slim rather than scratch or distroless:
# it gives ca-certificates (TLS to Tigris and to Supabase or Neon),
# setpriv from util-linux (below), and a shell for `fly ssh console`.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# The app runs as the unprivileged user app (uid and gid 10001), yet must
# write to a Fly volume, and Fly mounts a fresh volume owned by root
# (flyctl issue 1400), so `USER app` alone would leave it read-only to the
# app. The container therefore starts as root, and docker-entrypoint.sh
# gives app whatever under /data it does not own yet, then runs the command
# through `setpriv --reuid --regid --init-groups`, which execs it as app
# with no capabilities left: the app itself never runs as root. /data is
# where fly.sqlite.toml mounts the volume; /app/data holds the embedded
# default (data/app.db relative to /app) when nothing is mounted.
RUN groupadd --gid 10001 app \
 && useradd --uid 10001 --gid app --no-log-init --home-dir /app --no-create-home --shell /usr/sbin/nologin app \
 && mkdir -p /data /app/data \
 && chown app:app /data /app/data

COPY --from=build /app/app /app/migrate /app/
COPY --chmod=0755 scripts/docker-entrypoint.sh /app/docker-entrypoint.sh
WORKDIR /app

# The app listens on PORT (8080 unless set) on every interface.
EXPOSE 8080
ENTRYPOINT ["/app/docker-entrypoint.sh"]
CMD ["/app/app", "serve"]
