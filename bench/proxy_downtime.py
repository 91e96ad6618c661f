"""Downtime of one public service's update, side by side: failed requests, longest gap.

A probe (bench/proxy_probe.py: a GET every 10 ms on one keep-alive connection, a new one
after a failure) hits the public port of a tiny web server (busybox httpd, exits at once
on SIGTERM, 2 replicas where the tool allows) during its update v1 → v2, in one run:

  1. the deployer, start-first, through its edge proxy (Caddy; the route switches);
  2. the deployer, stop-first, the service publishing the fixed host port itself;
  3. Docker Compose v2 `docker compose up -d` recreating the service with that port.

Each tool runs as a fresh process, as in CI. Ports 18360-18362 on 127.0.0.1.

Usage: .venv/bin/python bench/proxy_downtime.py [--rounds N] [--new-connections]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.installed import compile_package  # noqa: E402
from bench.proxy_probe import ProxyProbe, get  # noqa: E402
from bench.rollout_probe import ensure_web, remove_app  # noqa: E402
from tests.composev2 import binary as compose_binary  # noqa: E402

PROXY_PORT, STOP_PORT, COMPOSE_PORT = 18360, 18361, 18362

MANIFEST = """\
app: {app}
environments:
  bench:
    hosts: ["unix:///var/run/docker.sock"]
    proxy: {{http: "127.0.0.1:{proxy_port}", https: false, image: "{proxy_image}",
             name: {app}-edge, drain_timeout: 10s}}
services:
  web:
    image: ${{WEB_IMAGE}}
    pull_policy: never
    init: true
{public}
rollout: {{health_timeout: 60s, healthy_after: 1s}}
"""
PROXIED = "    proxy: {host: web.bench.test, port: 8080}\n    deploy: {replicas: 2}"
PUBLISHED = '    ports: ["127.0.0.1:{port}:8080"]'


def build_proxy_image() -> str:
    out = subprocess.run(
        [str(ROOT / "scripts" / "build-proxy-image")],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def measured(
    address: str, host: str, keep_alive: bool, update: Callable[[], None]
) -> tuple[ProxyProbe, float]:
    deadline = time.monotonic() + 60
    while get(address, host)[0] != 200:
        if time.monotonic() > deadline:
            raise SystemExit(f"nothing answers on {address} before the update")
        time.sleep(0.2)
    probe = ProxyProbe(address, host, keep_alive=keep_alive).start()
    time.sleep(0.5)
    t0 = time.monotonic()
    try:
        update()
    finally:
        took = time.monotonic() - t0
        time.sleep(0.5)
        probe.stop()
    return probe, took


def deployer(manifest: Path, image: str, *, app: str = "", timeout: float = 600) -> None:
    """`deployer deploy` of ``manifest``'s `bench` environment with ``WEB_IMAGE=image``, on
    the local default engine; exits the bench with the deployer's output if it fails.
    The proxy benches (fleet, throughput) deploy through this too."""
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    env["WEB_IMAGE"] = image
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "deployer", "deploy", "-f", str(manifest), "--env", "bench"),
            *("--report-dir", str(manifest.parent)),  # beside the manifest, not in the checkout
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
        check=False,
    )
    if proc.returncode != 0:
        of = f" of {app}" if app else ""
        raise SystemExit(f"deployer deploy{of} failed:\n{proc.stdout[-3000:]}{proc.stderr}")


def remove_proxied(client: docker.DockerClient, app: str) -> None:
    """The app, its edge proxy container and the proxy's volumes."""
    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(f"{app}-edge").remove(force=True)
    remove_app(client, app)
    for vol in (f"{app}-edge-config", f"{app}-edge-data"):
        with contextlib.suppress(docker.errors.NotFound):
            client.volumes.get(vol).remove(force=True)


def wrk(url: str, seconds: int, host: str) -> tuple[float, int, str]:
    """wrk (2 threads, 32 connections) on ``url`` with ``Host: host`` for ``seconds``:
    (requests a second, requests, its output)."""
    exe = shutil.which("wrk")
    if exe is None:
        raise SystemExit("wrk is missing: apt-get install wrk (scripts/testenv.sh installs it)")
    out = subprocess.run(
        [exe, "-t2", "-c32", f"-d{seconds}s", "-H", f"Host: {host}", url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    if rate is None or count is None or int(count.group(1)) == 0:
        raise SystemExit(f"wrk printed no rate for {url}:\n{out}")
    return float(rate.group(1)), int(count.group(1)), out


def ours(
    client: docker.DockerClient, v1: str, v2: str, proxied: bool, keep_alive: bool, proxy_image: str
) -> tuple[ProxyProbe, float]:
    app = "bench" + secrets.token_hex(4)
    public = PROXIED if proxied else PUBLISHED.format(port=STOP_PORT)
    with tempfile.TemporaryDirectory() as d:
        m = Path(d) / "deploy.yml"
        m.write_text(
            MANIFEST.format(app=app, proxy_port=PROXY_PORT, proxy_image=proxy_image, public=public)
        )
        try:
            deployer(m, v1, app=app, timeout=300)
            address = f"127.0.0.1:{PROXY_PORT if proxied else STOP_PORT}"
            return measured(
                address,
                "web.bench.test",
                keep_alive,
                lambda: deployer(m, v2, app=app, timeout=300),
            )
        finally:
            remove_proxied(client, app)


def compose(v1: str, v2: str, keep_alive: bool) -> tuple[ProxyProbe, float]:
    project = "bench" + secrets.token_hex(4)
    exe = str(compose_binary())
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "compose.yml"
        f.write_text(
            "services:\n  web:\n    image: ${IMAGE}\n    init: true\n"
            f"    ports: ['127.0.0.1:{COMPOSE_PORT}:8080']\n"
        )
        env = {**os.environ, "IMAGE": v1, "DOCKER_HOST": "unix:///var/run/docker.sock"}
        run = [exe, "-p", project, "-f", str(f)]
        try:
            subprocess.run(
                [*run, "up", "-d"], env=env, check=True, capture_output=True, timeout=300
            )

            def update() -> None:
                env["IMAGE"] = v2
                subprocess.run(
                    [*run, "up", "-d"], env=env, check=True, capture_output=True, timeout=300
                )

            return measured(f"127.0.0.1:{COMPOSE_PORT}", "web.bench.test", keep_alive, update)
        finally:
            subprocess.run(
                [*run, "down", "-t", "10"], env=env, check=False, capture_output=True, timeout=300
            )


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument(
        "--new-connections",
        action="store_true",
        help="the probe opens a connection per request instead of keeping one",
    )
    args = ap.parse_args()
    compile_package()  # run from bytecode, as an installed deployer does
    keep = not args.new_connections
    client = docker.DockerClient(base_url="unix:///var/run/docker.sock")
    v1, v2 = ensure_web(client, "v1"), ensure_web(client, "v2")
    image = build_proxy_image()
    rows: dict[str, list[tuple[ProxyProbe, float]]] = {}
    names = (
        "deployer, through the edge proxy",
        "deployer, published port (stop-first)",
        "Compose v2 up -d, published port",
    )
    for _ in range(args.rounds):
        rows.setdefault(names[0], []).append(ours(client, v1, v2, True, keep, image))
        rows.setdefault(names[1], []).append(ours(client, v1, v2, False, keep, image))
        rows.setdefault(names[2], []).append(compose(v1, v2, keep))
    mode = "one keep-alive connection" if keep else "a connection per request"
    print(f"probe: a GET every 10 ms, {mode}; {args.rounds} round(s) each")
    print(
        f"{'update of one service v1 → v2':40} {'requests':>8} {'failed':>7} "
        f"{'longest gap':>12} {'update took':>12}"
    )
    for name in names:
        runs = rows[name]
        req = sum(p.requests for p, _ in runs)
        failed = sum(p.failed for p, _ in runs)
        gap = max(p.longest_gap for p, _ in runs)
        took = sum(t for _, t in runs) / len(runs)
        print(f"{name:40} {req:8d} {failed:7d} {gap * 1000:10.0f}ms {took:11.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
