#!/usr/bin/env bash
# Make sure a Docker engine answers on the local socket: use the one that answers,
# else install Debian's docker.io (when dockerd is missing) and start dockerd.
# Usage: scripts/engine.sh            (idempotent; prints the socket it made sure of)
set -euo pipefail

SOCK="${DEPLOYER_ENGINE_SOCKET:-/var/run/docker.sock}"
STATE="${DEPLOYER_ENGINE_STATE:-/var/lib/deployer-engine}"

answers() { DOCKER_HOST="unix://$SOCK" timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if answers; then
  echo "engine: using the Docker engine that answers on $SOCK"
  exit 0
fi

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v dockerd >/dev/null 2>&1; then
  echo "engine: installing Debian's docker.io (dockerd, containerd, runc)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    docker.io iptables >/dev/null
fi
if ! command -v docker >/dev/null 2>&1; then
  echo "engine: no docker client found" >&2
  exit 3
fi

as_root mkdir -p "$STATE"
echo "engine: starting dockerd on $SOCK (data in $STATE, log in $STATE/dockerd.log)"
as_root bash -c "nohup dockerd --host 'unix://$SOCK' --data-root '$STATE/data' \
  --exec-root '$STATE/exec' --pidfile '$STATE/dockerd.pid' >'$STATE/dockerd.log' 2>&1 &"

for _ in $(seq 1 120); do
  if answers; then
    echo "engine: ready"
    exit 0
  fi
  sleep 0.5
done
echo "engine: dockerd did not answer within 60 s; its log:" >&2
tail -n 30 "$STATE/dockerd.log" >&2 || true
exit 3
