#!/bin/bash
# Container health probe: GET /healthz on the local HTTP port, healthy only on a 200.
# Pure bash (/dev/tcp) so the runtime image needs neither curl nor wget.
#   healthcheck.sh [PATH]   port from PAINPOINT_HTTP_PORT (default 8080), PATH default /healthz
set -euo pipefail
port="${PAINPOINT_HTTP_PORT:-8080}"
path="${1:-/healthz}"
exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
# Only the status line matters; a server that accepts but never answers must not hang
# the probe past Docker's own timeout.
read -r -t 2 _ status _ <&3
[[ "$status" == 200 ]]
