"""Wall time to update 10 services to a new image: the deployer vs docker-compose up -d.

Ten services of a tiny web server (busybox httpd, exits at once on SIGTERM), all moved
from v1 to v2. The image has a HEALTHCHECK (every 0.5 s), so both tools run the same
containers. The deployer rolls them start-first, health-gated (each new container must
pass its healthcheck before the old one leaves the alias and stops),
the ten services in parallel (one wave: no depends_on). docker-compose 1.29 `up -d`
recreates them (stop old, start new) and waits for nothing. Target: ours <= 1.0x.

Where our time goes (10 services on 2 cores, one engine): besides what compose does, each
service waits for its healthcheck, moves the service alias with two network reconnects
(the new container gets it once healthy; the old one leaves it keeping its IP), and
drains the old one before stopping it. Those are what make the update lose no request.
Per-call timings of one update (2 cores, the 10 services at once): the 10 starts take
0.7-2.6 s each (compose pays the same), the healthcheck's first probe comes 0.5 s after
start (0.9 s under that load), the 40 network reconnects are mostly serialised by the
engine (about 0.08 s each: 2-3 s from the first to the last), then the 1 s drain and
the stop. Polling health every 0.1 s instead of 0.25 s changes nothing measurable
(--poll); a larger client pool neither (10 concurrent calls fit the SDK's default).
The drain is chosen with bench/rollout_downtime.py --drain: 0.5 s lost a request in 3 of
4 rounds, 1 s none in 12.

Usage: .venv/bin/python bench/rollout_10.py [--rounds N] [--drain S] [--interval S] [--poll S]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rollout_probe import deploy, ensure_web, remove_app
from deployer.docker.host import connect_host
from deployer.manifest.model import (
    Environment,
    Healthcheck,
    Manifest,
    RolloutPolicy,
    Service,
)

N = 10


def manifest(app: str, image: str, drain: float, interval: float | None = None) -> Manifest:
    # None: the image's own HEALTHCHECK (every 0.5 s), which compose's containers run too
    hc = None if interval is None else Healthcheck(interval=interval)
    services = tuple(Service(f"s{i}", image, pull_policy="never", healthcheck=hc) for i in range(N))
    return Manifest(
        path="bench",
        app=app,
        environment=Environment("bench"),
        services=services,
        rollout=RolloutPolicy(health_timeout=60, drain=drain),
    )


def ours(v1: str, v2: str, drain: float, interval: float, client: docker.DockerClient) -> float:
    app = "bench" + secrets.token_hex(4)
    host = connect_host("unix:///var/run/docker.sock", {})
    try:
        deploy(host, manifest(app, v1, drain, interval))
        started = time.monotonic()
        deploy(host, manifest(app, v2, drain, interval))
        return time.monotonic() - started
    finally:
        remove_app(client, app)
        host.close()


def compose(v1: str, v2: str) -> float:
    if not shutil.which("docker-compose"):
        raise SystemExit("docker-compose is missing: apt-get install docker-compose")
    project = "bench" + secrets.token_hex(4)
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "docker-compose.yml"
        body = "version: '3.7'\nservices:\n" + "".join(
            f"  s{i}:\n    image: ${{IMAGE}}\n" for i in range(N)
        )
        f.write_text(body)
        env = {**os.environ, "IMAGE": v1}
        run = ["docker-compose", "-p", project, "-f", str(f)]
        try:
            subprocess.run([*run, "up", "-d"], env=env, check=True, capture_output=True)
            env["IMAGE"] = v2
            started = time.monotonic()
            subprocess.run([*run, "up", "-d"], env=env, check=True, capture_output=True)
            return time.monotonic() - started
        finally:
            subprocess.run([*run, "down", "-t", "10"], check=False, env=env, capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--drain", type=float, default=1.0, help="the deployer's drain (default 1)")
    ap.add_argument("--interval", type=float, help="healthcheck interval (default: the image's)")
    ap.add_argument("--poll", type=float, help="the deployer's health polling period (A/B runs)")
    args = ap.parse_args()
    if args.poll:
        from deployer.docker import health

        health.POLL = args.poll
    client = docker.DockerClient(base_url="unix:///var/run/docker.sock")
    v1, v2 = ensure_web(client, "v1"), ensure_web(client, "v2")
    print(
        f"update {N} services v1 → v2        deployer (health-gated)   docker-compose up -d   ratio"
    )
    for _ in range(args.rounds):
        ours_s = ours(v1, v2, args.drain, args.interval, client)
        comp_s = compose(v1, v2)
        print(f"{'':33}{ours_s:18.2f}s {comp_s:21.2f}s {ours_s / comp_s:7.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
