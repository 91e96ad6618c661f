"""A start-first update of one service: the deployer in container mode vs in Swarm mode.

Side by side in one run, for the same images (a tiny busybox httpd that exits at once on
SIGTERM, pushed to the test registry so Swarm can pull it by digest) and the same
healthcheck (every 0.5 s):

  1. the deployer, ``engine: container``, start-first; the probe GETs the service's
     network alias ``web`` on the app's bridge network;
  2. the deployer, ``engine: swarm``, start-first (Swarm's rolling update, monitor 1 s);
     the probe GETs ``tasks.<app>_web`` on the app's overlay network (DNS round robin:
     the service VIP needs IPVS, which does not work on these machines);
  3. for reference, ``docker service update --update-order start-first --detach=false``
     on the same kind of service, without the deployer.

A probe (bench/rollout_probe.py) sends one GET every 10 ms from a container on the
network, bounded in count, and counts failed requests and the longest gap between two
successful ones. "update took" is the wall time of the update: for the deployer, plan
(digest lookup, observe) and apply until converged; for `docker service update`, until
the CLI returns.

Needs the test registry (scripts/testenv.sh up) and Swarm mode on the local engine
(initialised with --advertise-addr 127.0.0.1 when inactive, and left active).

Usage: .venv/bin/python bench/swarm_vs_container.py [--rounds N] [--registry HOST:PORT]
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import docker.errors

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
    RolloutPolicy,
    Service,
    UpdateConfig,
)
from deployer.naming import service_name
from deployer.swarm import SwarmTarget
from deployer.swarm.api import SwarmApi

ENV = "bench"
SOCKET = "unix:///var/run/docker.sock"


def manifest(app: str, image: str, engine: str) -> Manifest:
    svc = Service(
        "web",
        image,
        healthcheck=WEB_HEALTHCHECK,
        init=False,
        stop_grace_period=5.0,
        update_config=UpdateConfig(order="start-first", parallelism=1, monitor=1.0),
    )
    return Manifest(
        path="bench",
        app=app,
        environment=Environment(ENV, engine=engine),  # type: ignore[arg-type]
        services=(svc,),
        rollout=RolloutPolicy(health_timeout=30, drain=1.0, healthy_after=1.0),
    )


def push(client: docker.DockerClient, local: str, registry: str) -> str:
    """``local`` pushed as ``<registry>/deployer-bench/web:<tag>``."""
    tag = local.rsplit(":", 1)[1]
    ref = f"{registry}/deployer-bench/web:{tag}"
    client.api.tag(local, f"{registry}/deployer-bench/web", tag)
    for chunk in client.api.push(f"{registry}/deployer-bench/web", tag, stream=True, decode=True):
        if "error" in chunk:
            raise SystemExit(f"push of {ref} failed: {chunk['error']}")
    return ref


def ensure_swarm(client: docker.DockerClient) -> None:
    if client.info().get("Swarm", {}).get("LocalNodeState") != "active":
        client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")


def remove_swarm_app(client: docker.DockerClient, app: str) -> None:
    api: Any = client.api
    with contextlib.suppress(docker.errors.NotFound):
        SwarmApi(manifest(app, "x", "swarm"), client, SOCKET).remove_app()
    for cfg in api.configs():
        if cfg["Spec"]["Name"].startswith(app + "_"):
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_config(cfg["ID"])


def container_mode(client: docker.DockerClient, v1: str, v2: str) -> tuple[ProbeResult, float]:
    app = "bench" + secrets.token_hex(4)
    first, second = manifest(app, v1, "container"), manifest(app, v2, "container")
    return probe_deploys(
        client, first, second, "http://web:8080/version", default_network(app, ENV)
    )


def _swarm_deploy(client: docker.DockerClient, m: Manifest) -> None:
    target = SwarmTarget(SwarmApi(m, client, SOCKET))
    result = target.apply(target.plan(), lambda _line: None)
    if result.error:
        raise RuntimeError(f"swarm deploy failed: {result.error}")


def _raw_update(client: docker.DockerClient, app: str, image: str) -> None:
    """``docker service update`` start-first to ``image``, without the deployer."""
    target = SwarmTarget(SwarmApi(manifest(app, image, "swarm"), client, SOCKET))
    digest = target.resolve()["web"]
    subprocess.run(
        [
            "docker",
            "service",
            "update",
            "--detach=false",
            "--quiet",
            "--update-order",
            "start-first",
            "--update-monitor",
            "1s",
            "--update-failure-action",
            "rollback",
            "--image",
            digest,
            service_name(app, "web"),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def swarm_mode(
    client: docker.DockerClient, v1: str, v2: str, *, raw: bool
) -> tuple[ProbeResult, float]:
    app = "bench" + secrets.token_hex(4)
    try:
        _swarm_deploy(client, manifest(app, v1, "swarm"))
        net = f"{app}_default"
        url = f"http://tasks.{service_name(app, 'web')}:8080/version"

        def update() -> None:
            if raw:
                _raw_update(client, app, v2)
            else:
                _swarm_deploy(client, manifest(app, v2, "swarm"))

        return probe_update(client, url, net, {"com.docker.stack.namespace": app}, update)
    finally:
        remove_swarm_app(client, app)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--registry", default="127.0.0.1:5000")
    args = ap.parse_args()
    client = docker.DockerClient(base_url=SOCKET)
    ensure_swarm(client)
    v1 = push(client, ensure_web(client, "v1"), args.registry)
    v2 = push(client, ensure_web(client, "v2"), args.registry)
    modes = {
        "deployer, engine: container (start-first)": lambda: container_mode(client, v1, v2),
        "deployer, engine: swarm (start-first)": lambda: swarm_mode(client, v1, v2, raw=False),
        "docker service update (start-first)": lambda: swarm_mode(client, v1, v2, raw=True),
    }
    results: dict[str, list[tuple[ProbeResult, float]]] = {name: [] for name in modes}
    for _ in range(args.rounds):
        for name, run in modes.items():
            results[name].append(run())
    print(
        f"{'start-first update of one service v1 → v2':44} {'requests':>8} {'failed':>7} "
        f"{'longest gap':>12} {'update took (median)':>21}"
    )
    for name, runs in results.items():
        req = sum(r.requests for r, _ in runs)
        failed = sum(r.failed for r, _ in runs)
        gap = max(r.longest_gap_ms for r, _ in runs)
        took = statistics.median(t for _, t in runs)
        each = ", ".join(f"{t:.2f}" for _, t in runs)
        print(f"{name:44} {req:8d} {failed:7d} {gap:10d}ms {took:19.2f}s  ({each})")
    print(f"rounds: {args.rounds}; requests every 10 ms from a client container on the network")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
