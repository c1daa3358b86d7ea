# syntax=docker/dockerfile:1
# Build: docker build -t ftpsgate .
# Run:   docker run -v /etc/ftpsgate:/etc/ftpsgate:ro -p 21:21 -p 990:990 -p 50000-50019:50000-50019 \
#          ftpsgate run --config /etc/ftpsgate/ftpsgate.yaml
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/ftpsgate ./cmd/ftpsgate

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/ftpsgate /ftpsgate
# A non-root user. Docker (20.10+) sets net.ipv4.ip_unprivileged_port_start=0
# in a container's network namespace, so it can still bind 21 and 990;
# elsewhere grant CAP_NET_BIND_SERVICE or listen on high ports.
USER 65532:65532
EXPOSE 21 990 50000-50019
ENTRYPOINT ["/ftpsgate"]
CMD ["run", "--config", "/etc/ftpsgate/ftpsgate.yaml"]
