"""Wall time to update 10 services to a new image: `deployer deploy` vs `docker compose up -d`.

Ten services of a tiny web server (busybox httpd, exits at once on SIGTERM), all moved
from v1 to v2, one engine on the local socket, every tool run as a fresh process (the
deployer's CLI with a manifest; Docker Compose v2, the compose teams run today, with a
compose file; Debian's docker-compose 1.29 as a second, older reference). The image has a
HEALTHCHECK (every 0.5 s), so every tool runs the same containers. Columns:

- deployer start-first: the default for services without a fixed host port. Each new
  container starts beside the old one, must pass its healthcheck, takes over the
  service alias (the old one leaves it keeping its IP), the old one drains 1 s, then
  stops. No request is lost (bench/rollout_downtime.py).
- deployer stop-first: compose's order (stop old, start new), health-gated.
- v2 up -d: Compose v2 stops old, starts new, waits for nothing.
- v2 up -d --wait: the same, then waits until every container is healthy: the peer of the
  deployer's health-gated rollout (ratios are against this column).
- 1.29 up -d / 1.29 + healthy: docker-compose 1.29, and the same followed by polling
  `inspect` every 0.1 s until every new container is healthy (1.29 has no `--wait`).

The deployer waits for no full healthcheck interval: while a container starts, it runs the
container's healthcheck itself (deployer/docker/health.py), as `start_interval` does on
engines with API >= 1.44. No post-switch monitoring window (`update_config.monitor: 0s`;
the default watches each new container for 5 s after its switch), as compose has none.

Where start-first's time goes (one traced run, 2 cores, 7.7 s in all): 0.5 s to start
the CLI and connect; the 10 starts end at 4.0 s (each start takes 1-4 s beside the 10
running old containers and their healthchecks); all new containers are healthy at 4.3 s;
the 40 network reconnects that move the service aliases (two per container: the new one
gets the alias once healthy, the old one leaves it keeping its IP, so requests in flight
to it survive) run from 2.4 s to 6.2 s: the engine serialises them, about 0.1 s each
under that load (0.05 s for a disconnect, 0.03 s for a connect on an idle engine;
serialising them ourselves made it slower); then the 1 s drain, the stops and retention.
bench/rollout_downtime.py --drain chose that drain: 0.5 s lost a request in 3 of 4
rounds. No Engine API version changes an endpoint's aliases in place. A start-first switch
is now four reconnects, not six: a stopped old container gives up its pinned address
only when a rollback's start finds it taken.

Where stop-first's time went (one traced run, 2026-11-29, load average ~23, 16.9 s in
all): 1.55 s before the first Engine API call (interpreter, imports, manifest and its
schema, the CI context), 0.6 s more to the first container change (connect, resolve,
observe, plan, lock, pull checks); then a wave rolled at most 4 services at once and each
held its slot through its health wait, so the 10 services took three rounds ending at
6.6, 12.0 and 16.6 s (each start 2.5-4 s, each health check 0.3-1.7 s beside the others
under that load); release record and retention 0.3 s. Now only the starts queue (4 at
once per host: create, stop the old one, start); the health waits, switches and the
watch after them run for every service at once, as `up --wait` waits for all, and the
health gate polls after 0.05, 0.1, 0.2 s, then every 0.25 s. Measured side by side
(2026-11-29, 3 interleaved rounds, load average 55, 37, 28; medians): stop-first before
these changes 16.7 s (2.81x `up -d --wait`), after 9.8 s (1.66x), Compose v2 `up -d
--wait` 5.9 s; after was faster in every round (19.3 -> 16.6, 16.7 -> 9.8, 8.2 -> 7.0 s).
This script, 2 rounds at load 43 and 36: start-first 18.6 s (2.55x), stop-first 16.4 s
(2.25x), v2 `up -d` 6.0 s, v2 `up -d --wait` 7.3 s, 1.29 `up -d` 11.1 s (1.53x).

Then (idle machine, 3 rounds, load 5-8) stop-first took 3.66 s against 3.53 s for `up -d
--wait` (1.04x). Traced once more (2026-11-29, idle, 3.4 s in all): 0.48 s before the
first Engine API call, every create done at 0.72 s, the old containers stopping from 0.6
to 1.5 s, starts from 0.95 to 3.0 s, the last rename at 3.29 s, exit at 3.40 s; a steady
deploy then pruned the release before last one container at a time (0.25 s for 10). Changes
since: a host starts up to 10 new containers at once (was 4: a 10-service app
started in three rounds), the benches run the deployer from bytecode as an installed
deployer does (a checkout under PYTHONDONTWRITEBYTECODE=1 compiled 96 modules on every
run: bench/installed.py), the command ends without tearing the interpreter down
(60-120 ms), retention removes containers 8 at once, and a service's config parts are
computed once. This script, two runs of 5 interleaved rounds each on the idle machine
(2026-11-29, load 6-11, medians): stop-first 3.28 s and 3.15 s against `up -d --wait`
3.58 s and 3.52 s (0.92x and 0.89x; faster in all 10 rounds), start-first 6.29 s and
6.30 s (1.76x, 1.79x), v2 `up -d` 2.34 s and 2.42 s. CPU per update: the deployer 0.42 s,
Compose v2 0.08 s.

On a shared machine the CPU row matters: the deployer's own process spends about 0.4 s of
CPU on such an update (mostly starting: the Docker SDK with requests, jsonschema and the
manifest's model), Compose v2 about 0.1 s; at a load average L on 2 cores a runnable
process gets about 2/L of a core, so each CPU second can cost up to L/2 s of wall time
and the ratio grows with the load.

Usage: .venv/bin/python bench/rollout_10.py [--rounds N] [--drain S]
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.installed import compile_package  # noqa: E402
from bench.plan import compose_v2, timed  # noqa: E402
from bench.rollout_probe import ensure_web, remove_app  # noqa: E402

N = 10
ENGINE = "unix:///var/run/docker.sock"
DEPLOYER = str(Path(sys.executable).with_name("deployer"))


def manifest_text(app: str, order: str, drain: float) -> str:
    services = "".join(
        f"  s{i}:\n    image: ${{IMAGE}}\n    pull_policy: never\n"
        f"    deploy:\n      update_config:\n        order: {order}\n        monitor: 0s\n"
        for i in range(N)
    )
    return (
        f"app: {app}\nenvironments:\n  bench: {{}}\n"
        f"rollout:\n  drain: {drain}s\n  health_timeout: 60s\nservices:\n{services}"
    )


def child_cpu() -> float:
    """CPU seconds (user + system) of the child processes that ended so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def ours(
    v1: str, v2: str, order: str, drain: float, client: docker.DockerClient
) -> tuple[float, float]:
    app = "bench" + secrets.token_hex(4)
    with tempfile.TemporaryDirectory() as d:
        Path(d, "deploy.yml").write_text(manifest_text(app, order, drain))
        env = {**os.environ, "DOCKER_HOST": ENGINE, "IMAGE": v1}
        cmd = [DEPLOYER, "deploy", "--env", "bench", "--report-dir", str(Path(d, "reports"))]
        try:
            timed(cmd, env, Path(d))
            cpu = child_cpu()
            took = timed(cmd, {**env, "IMAGE": v2}, Path(d))
            return took, child_cpu() - cpu
        finally:
            remove_app(client, app)


def all_healthy(client: docker.DockerClient, project: str, image: str) -> bool:
    flt = {"label": [f"com.docker.compose.project={project}"]}
    found = client.api.containers(filters=flt)
    if len(found) != N or any(c["Image"] != image for c in found):
        return False
    return all("(healthy)" in c["Status"] for c in found)


def compose(
    v1: str, v2: str, client: docker.DockerClient, wait: bool, v1_29: bool
) -> tuple[float, float]:
    project = "bench" + secrets.token_hex(4)
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "docker-compose.yml"
        body = ("version: '3.7'\n" if v1_29 else "") + "services:\n" + "".join(
            f"  s{i}:\n    image: ${{IMAGE}}\n" for i in range(N)
        )
        f.write_text(body)
        env = {**os.environ, "IMAGE": v1, "DOCKER_HOST": ENGINE}
        run = [*(["docker-compose"] if v1_29 else compose_v2()), "-p", project, "-f", str(f)]
        up = [*run, "up", "-d"]
        if wait and not v1_29:
            up += ["--wait", "--wait-timeout", "60"]
        try:
            subprocess.run([*run, "up", "-d"], env=env, check=True, capture_output=True)
            env["IMAGE"] = v2
            started = time.monotonic()
            cpu = child_cpu()
            subprocess.run(up, env=env, check=True, capture_output=True)
            cpu = child_cpu() - cpu
            while wait and v1_29 and not all_healthy(client, project, v2):
                if time.monotonic() - started > 60:
                    raise SystemExit("compose's containers were not healthy after 60 s")
                time.sleep(0.1)
            return time.monotonic() - started, cpu
        finally:
            subprocess.run([*run, "down", "-t", "10"], check=False, env=env, capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--drain", type=float, default=1.0, help="the deployer's drain (default 1)")
    args = ap.parse_args()
    compile_package()  # run from bytecode, as an installed deployer does
    if not shutil.which("docker-compose"):
        raise SystemExit("docker-compose is missing: apt-get install docker-compose")
    client = docker.DockerClient(base_url=ENGINE)
    v1, v2 = ensure_web(client, "v1"), ensure_web(client, "v2")
    dr = args.drain
    runs: dict[str, Callable[[], tuple[float, float]]] = {
        "deployer start-first": lambda: ours(v1, v2, "start-first", dr, client),
        "deployer stop-first": lambda: ours(v1, v2, "stop-first", dr, client),
        "v2 up -d": lambda: compose(v1, v2, client, wait=False, v1_29=False),
        "v2 up -d --wait": lambda: compose(v1, v2, client, wait=True, v1_29=False),
        "1.29 up -d": lambda: compose(v1, v2, client, wait=False, v1_29=True),
        "1.29 + healthy": lambda: compose(v1, v2, client, wait=True, v1_29=True),
    }
    times: dict[str, list[float]] = {k: [] for k in runs}
    cpus: dict[str, list[float]] = {k: [] for k in runs}
    loads: list[float] = []
    print(f"update {N} services v1 → v2 (wall time, s)")
    print(f"{'round':16}" + "".join(f"{k:>22}" for k in runs) + "   load")
    for r in range(args.rounds):
        for name, fn in runs.items():  # interleaved: the machine's noise hits every column
            took, cpu = fn()
            times[name].append(took)
            cpus[name].append(cpu)
        loads.append(os.getloadavg()[0])
        print(
            f"{r + 1:<16}"
            + "".join(f"{times[k][-1]:22.2f}" for k in runs)
            + f"   {loads[-1]:.1f}"
        )
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{'median':16}" + "".join(f"{med[k]:22.2f}" for k in runs))
    base = med["v2 up -d --wait"]
    print(f"{'vs v2 --wait':16}" + "".join(f"{med[k] / base:21.2f}x" for k in runs))
    # CPU seconds of the tool's own process (not the engine's): on a shared machine each
    # one costs wall time in proportion to the load
    print(f"{'cpu s (median)':16}" + "".join(f"{statistics.median(cpus[k]):22.2f}" for k in runs))
    print(f"load average (1 min) during the rounds: {', '.join(f'{x:.1f}' for x in loads)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
