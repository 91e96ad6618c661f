"""The edge proxy's cost, side by side in one run: wall time to update 10 proxied
services v1 → v2 (`deployer deploy`, start-first through the edge proxy, probes through
the proxy on two of the routes counting failed requests) vs Docker Compose v2
`docker compose up -d --wait` updating the same 10 services (health-gated, stop-first,
no public port). Requests per second through the proxy: bench/proxy_throughput.py.

Every tool runs as a fresh process. The web server is busybox httpd (serves /version,
closes every connection, exits at once on SIGTERM), so the proxy opens a connection to it
per request, as every client hitting it directly does. Ports 18380-18381 on 127.0.0.1.

Where the update's time went (traced, 2026-11-29, load average ~28, 121 s in all, 0
failed requests): 56 s preparing the proxy route by route, about 45 `docker exec`s in
the proxy (its routes read per service, a PATCH per route, an exec per upstream file),
each 0.5-2.5 s under that load; then per service a start, a health check, six network
reconnects (the engine runs them one at a time), a switch exec and a drain that polled
the proxy with an exec every 0.2 s (2-6 s each, with no connection open), a wave rolling
4 services at a time. After reading the config once (one PATCH per listener, one read
and one write of the upstream files), the same run took 45 s: prepare 1 s. Then the
switch and the drain became one exec, four reconnects per service instead of six, and
every service of the wave waits for health, switches and drains at once. This script
then (2026-11-29, 3 rounds at load 15-20): 12.9 s (2.62x Compose v2 `up -d --wait`,
4.9 s), 0 failed of 1682 probe requests; 2 rounds at load 17-23: 10.1 s (2.46x). Traced
at load ~20 (14.3 s): 2.7 s before the first container change, the 10 starts 2.3 s each
(4 at a time), 41 network reconnects that the engine runs one at a time (26 s of API
time summed over the threads), 23 execs (10 health checks, 10 switches with their drain,
3 to prepare the proxy).

On the idle machine (2026-11-29, load 5-7, 3 rounds, medians), with up to 10 starts at
once per host (was 4): 6.46 s against 3.55 s for `up -d --wait` (1.82x), 0 failed of
1795 probe requests. Side by side one round each, 4 vs 10 starts at once: 6.94 / 7.54 s
vs 6.47 / 7.11 s. What is left is start-first's own work, which `up --wait` (stop-first)
does not do: the four network reconnects per service that move the internal aliases
(new container in once healthy, old one out keeping its address), which the engine runs
one at a time, and the starts made beside the running old containers.

2026-11-30, the switches of a wave in one exec in the proxy (the engine runs the execs of
one container one after the other: under load a switch waited 0.8-1.9 s for its exec,
batched 0.15-0.66 s): 7.26 s against 3.73 s (1.95x; load 0.5 at the start, 6 at the
end), 0 failed of 1908. Traced the same day: per service, network reconnects 1.1-2.2 s
(attach) and 1.2-2.2 s (detach) at load 20, one at a time in the engine; the same run
with the alias moves left out (an experiment, not a mode) took 1.55x.

Usage: .venv/bin/python bench/proxy_fleet.py [--rounds N] [--services N]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
import docker.errors

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.installed import compile_package  # noqa: E402
from bench.proxy_downtime import build_proxy_image, deployer, remove_proxied  # noqa: E402
from bench.proxy_probe import ProxyProbe  # noqa: E402
from bench.rollout_probe import ensure_web  # noqa: E402
from tests.composev2 import binary as compose_binary  # noqa: E402

PROXY_PORT = 18380


def manifest_text(app: str, n: int, image: str) -> str:
    svcs = "".join(
        f"  web{i}:\n    image: ${{WEB_IMAGE}}\n    pull_policy: never\n    init: true\n"
        f"    proxy: {{host: web{i}.{app}.test, port: 8080}}\n"
        # compose's --wait watches nothing after the switch: neither does this run
        "    deploy: {update_config: {monitor: 0s}}\n"
        for i in range(n)
    )
    return (
        f"app: {app}\nenvironments:\n  bench:\n"
        '    hosts: ["unix:///var/run/docker.sock"]\n'
        f'    proxy: {{http: "127.0.0.1:{PROXY_PORT}", https: false, image: "{image}", '
        f"name: {app}-edge, drain_timeout: 10s}}\n"
        f"services:\n{svcs}rollout: {{health_timeout: 60s, healthy_after: 1s}}\n"
    )


def ours(
    client: docker.DockerClient, v1: str, v2: str, n: int, image: str
) -> tuple[float, int, int]:
    app = "bench" + secrets.token_hex(4)
    with tempfile.TemporaryDirectory() as d:
        m = Path(d) / "deploy.yml"
        m.write_text(manifest_text(app, n, image))
        try:
            deployer(m, v1)
            addr = f"127.0.0.1:{PROXY_PORT}"
            probes = [ProxyProbe(addr, f"web{i}.{app}.test").start() for i in (0, n - 1)]
            t0 = time.monotonic()
            try:
                deployer(m, v2)
            finally:
                took = time.monotonic() - t0
                for p in probes:
                    p.stop()
            return took, sum(p.requests for p in probes), sum(p.failed for p in probes)
        finally:
            remove_proxied(client, app)


def compose(v1: str, v2: str, n: int) -> float:
    project = "bench" + secrets.token_hex(4)
    exe = str(compose_binary())
    svcs = "".join(f"  web{i}:\n    image: ${{IMAGE}}\n    init: true\n" for i in range(n))
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "compose.yml"
        f.write_text(f"services:\n{svcs}")
        env = {**os.environ, "IMAGE": v1, "DOCKER_HOST": "unix:///var/run/docker.sock"}
        run = [exe, "-p", project, "-f", str(f)]
        try:
            subprocess.run(
                [*run, "up", "-d", "--wait"], env=env, check=True, capture_output=True, timeout=600
            )
            env["IMAGE"] = v2
            t0 = time.monotonic()
            subprocess.run(
                [*run, "up", "-d", "--wait"], env=env, check=True, capture_output=True, timeout=600
            )
            return time.monotonic() - t0
        finally:
            subprocess.run(
                [*run, "down", "-t", "10"], env=env, check=False, capture_output=True, timeout=300
            )


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--services", type=int, default=10)
    args = ap.parse_args()
    compile_package()  # run from bytecode, as an installed deployer does
    client = docker.DockerClient(base_url="unix:///var/run/docker.sock")
    v1, v2 = ensure_web(client, "v1"), ensure_web(client, "v2")
    image = build_proxy_image()
    ours_t: list[float] = []
    comp_t: list[float] = []
    requests = failed = 0
    for _ in range(args.rounds):
        t, r, f = ours(client, v1, v2, args.services, image)
        ours_t.append(t)
        requests += r
        failed += f
        comp_t.append(compose(v1, v2, args.services))
    o, c = statistics.median(ours_t), statistics.median(comp_t)
    print(f"update of {args.services} services v1 → v2, {args.rounds} round(s), medians")
    print(
        f"  deployer start-first through the edge proxy  {o:6.2f}s  ({o / c:.2f}x)"
        f"  probes: {requests} requests, {failed} failed"
    )
    print(f"  Compose v2 up -d --wait                      {c:6.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
