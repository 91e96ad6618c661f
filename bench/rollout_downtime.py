"""Downtime of one service update, side by side: failed requests and the longest gap.

A probe (bench/rollout_probe.py) GETs the service every 10 ms during the update of a
tiny web server (busybox httpd that exits at once on SIGTERM) from v1 to v2:

  1. the deployer, start-first, the service reached through its network alias;
  2. the deployer, stop-first, the service reached through a published host port;
  3. Docker Compose v2 `up -d` recreating the same service with a published port (and
     `up -d --wait`, which waits for the new container's healthcheck);
  4. docker-compose 1.29 `up -d`, the same, as a second, older reference.

The deployer's start-first gives the new container the service alias only once it is
healthy, and takes the old one out of the alias by reconnecting it with the same IP
address: a request that was opening a connection to the old one at that moment waits
for one TCP retransmission (about 1 s, visible in "longest gap") but does not fail.

Measured here (2026-11-29, one round, load average ~30 on 2 cores):

  update of one service v1 → v2                requests  failed  longest gap  update took
  deployer start-first (network alias)              256       0       1060ms       14.98s
  deployer stop-first (published port)              193      18       2610ms        8.61s
  compose v2 up -d (published port)                  43      11       2750ms        2.36s
  compose v2 up -d --wait (published port)           73      21       2900ms        3.62s
  docker-compose 1.29 up -d (published port)        230      28       1460ms        5.22s

Usage: .venv/bin/python bench/rollout_downtime.py [--rounds N] [--port P]   (~30 s a round)
       .venv/bin/python bench/rollout_downtime.py --rounds 5 --drain 0.5 --drain 1 --drain 1.5
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rollout_probe import (
    WEB_HEALTHCHECK,
    ProbeResult,
    ensure_web,
    probe_deploys,
    probe_update,
)
from deployer.engine import default_network
from deployer.manifest.model import (
    Environment,
    Manifest,
    Port,
    RolloutPolicy,
    Service,
    UpdateConfig,
)

ENV = "bench"


DRAIN = 1.5  # > the 1 s TCP SYN retransmission


def manifest(app: str, image: str, port: int | None, drain: float = DRAIN) -> Manifest:
    order = "stop-first" if port else "start-first"
    svc = Service(
        "web",
        image,
        pull_policy="never",
        healthcheck=WEB_HEALTHCHECK,
        ports=(Port(8080, port, "127.0.0.1"),) if port else (),
        update_config=UpdateConfig(order=order),
    )
    return Manifest(
        path="bench",
        app=app,
        environment=Environment(ENV),
        services=(svc,),
        rollout=RolloutPolicy(health_timeout=30, drain=drain),
    )


def ours(
    client: docker.DockerClient, v1: str, v2: str, port: int | None, drain: float = DRAIN
) -> tuple[ProbeResult, float]:
    app = "bench" + secrets.token_hex(4)
    if port:
        url, net = f"http://127.0.0.1:{port}/version", None
    else:
        url, net = "http://web:8080/version", default_network(app, ENV)
    first, second = manifest(app, v1, port, drain), manifest(app, v2, port, drain)
    return probe_deploys(client, first, second, url, net)


def compose(
    client: docker.DockerClient, v1: str, v2: str, port: int, peer: str = "v2"
) -> tuple[ProbeResult, float]:
    """``peer``: "v2", "v2-wait" (``up -d --wait``) or "1.29"."""
    from bench.plan import compose_v2

    if peer == "1.29" and not shutil.which("docker-compose"):
        raise SystemExit("docker-compose is missing: apt-get install docker-compose")
    project = "bench" + secrets.token_hex(4)
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "docker-compose.yml"
        f.write_text(
            ("version: '3.7'\n" if peer == "1.29" else "")
            + "services:\n  web:\n    image: ${IMAGE}\n"
            f"    ports: ['127.0.0.1:{port}:8080']\n"
        )
        env = {**os.environ, "IMAGE": v1, "DOCKER_HOST": "unix:///var/run/docker.sock"}
        exe = ["docker-compose"] if peer == "1.29" else compose_v2()
        run = [*exe, "-p", project, "-f", str(f)]
        wait = ["--wait", "--wait-timeout", "60"] if peer == "v2-wait" else []
        try:
            subprocess.run([*run, "up", "-d", *wait], env=env, check=True, capture_output=True)

            def update() -> None:
                env["IMAGE"] = v2
                subprocess.run([*run, "up", "-d", *wait], env=env, check=True, capture_output=True)

            url = f"http://127.0.0.1:{port}/version"
            return probe_update(client, url, None, {"com.docker.compose.project": project}, update)
        finally:
            subprocess.run([*run, "down", "-t", "10"], check=False, env=env, capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument(
        "--drain",
        type=float,
        action="append",
        help="start-first only, once per drain given (repeatable): how long a drain must be",
    )
    ap.add_argument("--port", type=int, help="first of 4 host ports to use (default: random)")
    args = ap.parse_args()
    client = docker.DockerClient(base_url="unix:///var/run/docker.sock")
    v1, v2 = ensure_web(client, "v1"), ensure_web(client, "v2")
    port = args.port or 21000 + secrets.randbelow(8000)
    rows: list[tuple[str, ProbeResult, float]] = []
    for _ in range(args.rounds):
        if args.drain:
            for drain in args.drain:
                r, t = ours(client, v1, v2, None, drain)
                rows.append((f"deployer start-first, drain {drain:g}s", r, t))
            continue
        r, t = ours(client, v1, v2, None)
        rows.append(("deployer start-first (network alias)", r, t))
        r, t = ours(client, v1, v2, port)
        rows.append(("deployer stop-first (published port)", r, t))
        r, t = compose(client, v1, v2, port + 1, "v2")
        rows.append(("compose v2 up -d (published port)", r, t))
        r, t = compose(client, v1, v2, port + 2, "v2-wait")
        rows.append(("compose v2 up -d --wait (published port)", r, t))
        r, t = compose(client, v1, v2, port + 3, "1.29")
        rows.append(("docker-compose 1.29 up -d (published port)", r, t))
    print(
        f"{'update of one service v1 → v2':44} {'requests':>8} {'failed':>7} "
        f"{'longest gap':>12} {'update took':>12}"
    )
    for name, r, t in rows:
        print(f"{name:44} {r.requests:8d} {r.failed:7d} {r.longest_gap_ms:10d}ms {t:11.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
