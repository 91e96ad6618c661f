"""Requests per second through the edge proxy vs straight to the container, and where the
CPU goes, side by side in one run (wrk, from Debian's packages).

The deployer deploys one proxied service (1 replica) with the edge proxy exactly as a
deploy configures it; then, in interleaved rounds, wrk (2 threads, 32 connections) runs:

  direct        to the container's address on the app's network (port 8080)
  proxy         to the edge proxy's address on the same network (port 80, Host header):
                the same network path as `direct`, one proxy hop more
  public port   to the proxy's published port on 127.0.0.1: on loopback Docker's
                userland proxy (docker-proxy) relays it, a hop external clients, which
                reach a published port through the kernel's DNAT, do not pay

Per row: median requests/s, its ratio to `direct`, and the CPU microseconds per request
of the app container, the proxy container and wrk (cgroup and rusage counters: these
show where a request's cost goes even on a shared, noisy machine). The load average
is printed: these machines are shared, read the figures as relative.

Two upstreams: busybox httpd (forks per connection and closes it after each answer, so
the proxy opens a connection to it per request) and a keep-alive server (Caddy's
`respond`, a Go server: the proxy reuses its connections).

Port 19620 on 127.0.0.1. Usage: .venv/bin/python bench/proxy_throughput.py [--rounds N]
[--seconds S] [--upstream httpd|keepalive|both]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.proxy_downtime import MANIFEST, build_proxy_image, deployer, remove_proxied  # noqa: E402
from bench.proxy_downtime import wrk as run_wrk  # noqa: E402
from bench.proxy_probe import get  # noqa: E402
from bench.rollout_probe import ensure_web  # noqa: E402

PORT = 19620
HOST = "web.throughput.test"
UPSTREAMS = {
    "httpd": "busybox httpd (a connection per request)",
    "keepalive": "Caddy respond (keep-alive)",
}



@dataclass
class Row:
    rates: list[float] = field(default_factory=list)
    cpu: list[tuple[float, float, float]] = field(default_factory=list)  # app, proxy, wrk
    errors: list[str] = field(default_factory=list)


def container_cpu(client: docker.DockerClient, name: str) -> float:
    stats = client.api.stats(name, stream=False)
    return float(stats["cpu_stats"]["cpu_usage"]["total_usage"]) / 1e9


def wrk(
    client: docker.DockerClient, url: str, seconds: int, app_c: str, proxy_c: str
) -> tuple[float, tuple[float, float, float], str]:
    a0, p0 = container_cpu(client, app_c), container_cpu(client, proxy_c)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    rate, n, out = run_wrk(url, seconds, HOST)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    a1, p1 = container_cpu(client, app_c), container_cpu(client, proxy_c)
    wrk_cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    per = ((a1 - a0) / n * 1e6, (p1 - p0) / n * 1e6, wrk_cpu / n * 1e6)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    errors = ", ".join(
        x for x in (f"{bad.group(1)} non-2xx" if bad else "", sock.group(1) if sock else "") if x
    )
    return rate, per, errors


def address(client: docker.DockerClient, name: str, network: str) -> str:
    info: dict[str, Any] = client.api.inspect_container(name)
    return str(info["NetworkSettings"]["Networks"][network]["IPAddress"])


def measure(
    client: docker.DockerClient, upstream: str, proxy_image: str, rounds: int, seconds: int
) -> tuple[dict[str, Row], list[float]]:
    app = "bench" + secrets.token_hex(4)
    if upstream == "httpd":
        image, command = ensure_web(client, "v1"), ""
    else:
        image = proxy_image
        command = '    command: ["caddy", "respond", "--listen", ":8080", "v1"]\n'
    rows = {"direct": Row(), "proxy": Row(), "public port": Row()}
    loads: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        m = Path(d) / "deploy.yml"
        m.write_text(
            MANIFEST.format(
                app=app,
                proxy_port=PORT,
                proxy_image=proxy_image,
                public=f"{command}    proxy: {{host: {HOST}, port: 8080}}",
            )
        )
        try:
            deployer(m, image)
            deadline = time.monotonic() + 60
            while get(f"127.0.0.1:{PORT}", HOST)[0] != 200:
                if time.monotonic() > deadline:
                    raise SystemExit("the route does not answer through the proxy")
                time.sleep(0.2)
            app_c, proxy_c, network = f"{app}-bench-web-1", f"{app}-edge", f"{app}-bench"
            urls = {
                "direct": f"http://{address(client, app_c, network)}:8080/version",
                "proxy": f"http://{address(client, proxy_c, network)}:80/version",
                "public port": f"http://127.0.0.1:{PORT}/version",
            }
            for _ in range(rounds):
                for name, url in urls.items():
                    rate, per, errors = wrk(client, url, seconds, app_c, proxy_c)
                    rows[name].rates.append(rate)
                    rows[name].cpu.append(per)
                    if errors:
                        rows[name].errors.append(errors)
                    loads.append(os.getloadavg()[0])
        finally:
            remove_proxied(client, app)
    return rows, loads


def report(upstream: str, rows: dict[str, Row], loads: list[float], seconds: int) -> None:
    rounds = len(rows["direct"].rates)
    print(
        f"\n{UPSTREAMS[upstream]}: wrk -t2 -c32 -d{seconds}s, {rounds} interleaved rounds, "
        f"medians; load average (1 min) median {statistics.median(loads):.1f} "
        f"(min {min(loads):.1f}, max {max(loads):.1f}) on {os.cpu_count()} cores"
    )
    print(f"  {'':13} {'requests/s':>10} {'ratio':>6}   CPU µs per request: app  proxy  wrk  sum")
    direct = statistics.median(rows["direct"].rates)
    for name, row in rows.items():
        rate = statistics.median(row.rates)
        cpu = [statistics.median(c[i] for c in row.cpu) for i in range(3)]
        proxy = f"{cpu[1]:6.0f}" if name != "direct" else f"{'-':>6}"
        print(
            f"  {name:13} {rate:10.0f} {rate / direct:6.2f}   {'':19}{cpu[0]:4.0f} {proxy} "
            f"{cpu[2]:4.0f} {cpu[0] + cpu[1] + cpu[2]:4.0f}"
        )
        if row.errors:
            print(f"  {'':13} wrk errors: {'; '.join(row.errors)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--upstream", choices=["httpd", "keepalive", "both"], default="both")
    args = ap.parse_args()
    client = docker.DockerClient(base_url="unix:///var/run/docker.sock")
    proxy_image = build_proxy_image()
    kinds = ["httpd", "keepalive"] if args.upstream == "both" else [args.upstream]
    for kind in kinds:
        rows, loads = measure(client, kind, proxy_image, args.rounds, args.seconds)
        report(kind, rows, loads, args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
