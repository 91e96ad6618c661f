"""A large wave on one small host, with one failing service: does the rollback hold?

N services x R replicas (default 30 x 2) of a tiny web server, all in one wave, moved from
v1 to v2 on the local engine; the last service's new containers crash at start. The
deploy must fail with exit 1 (not 5), every old container must serve again, and no step
may fail with "Address already in use" (a drained container was reconnected with a pinned
IP; once stopped, another new container could take that address and the rollback could
not start it again: deployer/docker/containers.py ``start`` releases it then).

Printed: the first deploy's time, the failing update's time to the failure, the rollback's
time, the exit code, old containers running afterwards, "Address already in use" count,
and the most services starting new containers at once (``START_PARALLEL`` in
deployer/rollout/state.py, 10 per host by default; ``--parallel 0`` lifts the bound for a
comparison).

Measured once (2026-11-29, 30 x 2, 4 starts at once, load average 58-80 on the shared 2
cores): first deploy 147 s, update to the failure 341 s, rollback 416 s, exit 1, 60/60 old
containers running, 0 "Address already in use". No unbounded comparison was run: at that
load it would not have said what the bound of 4 helps.

Usage: .venv/bin/python bench/rollout_load.py [--services 30] [--replicas 2] [--parallel N]
"""

from __future__ import annotations

import argparse
import dataclasses
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rollout_probe import WEB_CMD, WEB_HEALTHCHECK, ensure_web, remove_app  # noqa: E402
from deployer import labels as L  # noqa: E402
from deployer.context import Context  # noqa: E402
from deployer.docker.host import DockerHost, connect_host  # noqa: E402
from deployer.manifest.model import (  # noqa: E402
    Environment,
    Manifest,
    RolloutPolicy,
    Service,
    UpdateConfig,
)
from deployer.plan import make_plan  # noqa: E402
from deployer.rollout import PrintLog, Rollout  # noqa: E402
from deployer.rollout import state as rollout_state  # noqa: E402

ENV = "bench"
# The web image's check, patient: on an overloaded small host a 2 s timeout fails checks
# of healthy containers, and this bench is about the rollback, not about the checks.
PATIENT = dataclasses.replace(WEB_HEALTHCHECK, interval=1.0, timeout=10.0, retries=5)


@dataclass
class LoadResult:
    first_seconds: float
    update_seconds: float  # from the start of the failing update to its rollback
    rollback_seconds: float
    exit_code: int
    old_running: int
    old_expected: int
    address_in_use: int


def _manifest(app: str, image: str, services: int, replicas: int, failing: bool) -> Manifest:
    out = []
    for i in range(1, services + 1):
        crash = failing and i == services
        out.append(
            Service(
                f"s{i:02d}",
                image,
                pull_policy="never",
                replicas=replicas,
                healthcheck=PATIENT,
                command=("sh", "-c", "echo crash >&2; exit 1") if crash else tuple(WEB_CMD),
                update_config=UpdateConfig(monitor=0.0),  # this is about the rollback
            )
        )
    return Manifest(
        path="deploy.yml",
        app=app,
        environment=Environment(ENV),
        services=tuple(out),
        rollout=RolloutPolicy(health_timeout=300.0, healthy_after=1.0, drain=1.0),
    )


def _deploy(host: DockerHost, m: Manifest, lines: list[str]) -> Rollout:
    observed = {host.name: host.observe(m.app, ENV)}
    digests = {s.name: host.resolve(s.image, None, pull_policy="never") for s in m.services}
    plan = make_plan(m, list(observed.values()), digests)
    r = Rollout(m, plan, {host.name: host}, observed, Context(user="bench"), PrintLog(lines.append))
    r.run()
    return r


def run_load(
    client: docker.DockerClient,
    host: DockerHost,
    app: str,
    services: int = 30,
    replicas: int = 2,
    log: bool = False,
) -> LoadResult:
    """Deploy v1, then the failing v2; the app's containers are left for the caller."""
    v1, v2 = ensure_web(client, "v1"), ensure_web(client, "v2")
    lines: list[str] = []
    started = time.monotonic()
    first = _deploy(host, _manifest(app, v1, services, replicas, False), lines)
    first_seconds = time.monotonic() - started
    if first.error is not None:
        failed = [line for line in lines if "FAILED" in line or "new container is" in line]
        raise RuntimeError(f"the first deploy failed: {first.result.error}\n" + "\n".join(failed))
    old = {
        c["Id"]
        for c in client.api.containers(filters={"label": [f"{L.APP}={app}"]})
        if (c.get("Labels") or {}).get(L.SERVICE)
    }
    lines.clear()
    started = time.monotonic()
    r = _deploy(host, _manifest(app, v2, services, replicas, True), lines)
    total = time.monotonic() - started
    rollback = sum(s.seconds for s in r.result.steps if s.kind == "rollback")
    if log:
        print("\n".join(lines))
    now = {c["Id"] for c in client.api.containers(filters={"label": [f"{L.APP}={app}"]})}
    return LoadResult(
        first_seconds=first_seconds,
        update_seconds=total - rollback,
        rollback_seconds=rollback,
        exit_code=r.error.exit_code if r.error is not None else 0,
        old_running=len(old & now),
        old_expected=len(old),
        address_in_use=sum("Address already in use" in line for line in lines),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", type=int, default=30)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=rollout_state.START_PARALLEL,
                    help="services starting new containers at once per host (0: no bound)")
    ap.add_argument("--log", action="store_true", help="print the failing update's log")
    args = ap.parse_args()
    rollout_state.START_PARALLEL = args.parallel or args.services
    client = docker.from_env()
    host = connect_host("unix:///var/run/docker.sock", {})
    app = "bench-load-" + secrets.token_hex(3)
    try:
        res = run_load(client, host, app, args.services, args.replicas, args.log)
    finally:
        host.close()
        remove_app(client, app)
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"{args.services} services x {args.replicas} replicas, one wave, "
          f"{rollout_state.START_PARALLEL} starting at once, load average {' '.join(load)}")
    print(f"  first deploy        {res.first_seconds:7.1f} s")
    print(f"  update to failure   {res.update_seconds:7.1f} s")
    print(f"  rollback            {res.rollback_seconds:7.1f} s")
    print(f"  exit code           {res.exit_code}")
    print(f"  old running again   {res.old_running}/{res.old_expected}")
    print(f"  'Address already in use'  {res.address_in_use}")


if __name__ == "__main__":
    main()
