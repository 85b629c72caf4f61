# syntax=docker/dockerfile:1
#
# efsd's container image: a static binary (CGO_ENABLED=0 works: SQLite is modernc.org/sqlite, pure Go)
# on Alpine, whose busybox wget runs the HEALTHCHECK.
#
#   docker build -t efsd .
#   docker run -d --name efsd --network host \
#       --cap-drop ALL --cap-add CHOWN --cap-add DAC_OVERRIDE --cap-add FOWNER --cap-add FSETID \
#       --cap-add SETUID --cap-add SETGID \
#       -v /etc/efsd/config.json:/etc/efsd/config.json:ro -v efsd-data:/var/lib/efsd efsd
#
# A config file with accounts is required: efsd refuses to listen beyond loopback with the development
# credential (see README.md, "Install / run as a service"). efsd runs as root inside the container: it
# switches the file-system UID and GID per NFS call to act as each client's identity, which needs UID 0
# with CAP_SETUID and CAP_SETGID (and CHOWN, DAC_OVERRIDE, FOWNER, FSETID for replication and root
# clients); the capabilities above are the only ones it needs. Mount targets listen at addresses of
# the machine (127.x.y.z by default, or the subnets declared in the config file), hence --network host.
#
# Checked without a Docker daemon (the machine it was written on has none) by running its steps by
# hand: the build command below gives a binary `file` calls statically linked; that binary, started with
# this image's environment and a config file with an account, listens on 0.0.0.0:8049 and 0.0.0.0:8050,
# answers /readyz with 200, and the HEALTHCHECK's wget exits 0.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# -buildvcs=false: .git is not in the build context (.dockerignore); `efsd version` then names the
# module version "(devel)" and the Go version.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags='-s -w' -o /out/efsd ./cmd/efsd \
    && /out/efsd version
# The licence and notice files of Go and of every module linked into the binary (docs/licences.md).
RUN mkdir -p /out/licenses \
    && cp LICENSE /out/licenses/efsd.LICENSE && cp "$(go env GOROOT)/LICENSE" /out/licenses/go.LICENSE \
    && go list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Dir}}{{end}}{{end}}' ./cmd/efsd | sort -u \
    | while read -r p d; do mkdir -p "/out/licenses/$p"; \
        for f in "$d"/LICEN[CS]E* "$d"/NOTICE* "$d"/COPYING*; do if [ -f "$f" ]; then cp "$f" "/out/licenses/$p/"; fi; done; \
      done

FROM alpine:3.22
COPY --from=build /out/efsd /usr/local/bin/efsd
COPY --from=build /out/licenses /usr/share/doc/efsd/licenses
# Root, on purpose: NFS client identities (setfsuid/setfsgid per call) need UID 0. Without root efsd
# still serves the API and NFS, but every NFS operation acts as efsd's own user.
USER root
ENV EFSD_LISTEN=0.0.0.0:8049 \
    EFSD_ADMIN_LISTEN=0.0.0.0:8050 \
    EFSD_DATA_DIR=/var/lib/efsd \
    EFSD_CONFIG=/etc/efsd/config.json
# SQLite state, each file system's files, the NFS handle key: keep it, and back it up together.
VOLUME /var/lib/efsd
# EFS API; admin listener (/healthz, /readyz); NFS and MOUNT at every mount target address (nfsPort).
EXPOSE 8049/tcp 8050/tcp 2049/tcp
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD wget -q -O /dev/null http://127.0.0.1:8050/readyz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/efsd"]
