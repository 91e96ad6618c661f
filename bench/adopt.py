"""Adopting a compose app: `deployer plan` vs `docker compose up -d` (Compose v2; Debian's
docker-compose 1.29 as a second column), both deciding that the app compose started is up to
date.

Needs the test environment (scripts/testenv.sh up). Run from the repository root:

    .venv/bin/python bench/adopt.py [--runs N] [--fixture shop|voting|blog]

For each compose (v2, then 1.29): it starts a fixture app (tests/docker/compose_fixtures/)
under a unique project name; then, interleaved, fresh processes of its `up -d` (its no-op
check) and `deployer plan --detailed-exitcode` on the manifest that reads the same compose
files (exit 0 is required: every adopted service must come out unchanged). Everything is
removed afterwards (`down -v`, then anything left labelled for the project).

Measured here (2026-11-29, shop fixture, 3 runs, medians, load average ~20 on 2 cores):
compose v2 no-op 0.96 s, `deployer plan` of the app v2 started 3.25 s (3.4x); compose 1.29
no-op 3.84 s, `deployer plan` of the app 1.29 started 2.71 s (0.71x). The deployer's time is
start-up imports and observation (see bench/plan.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.installed import compile_package  # noqa: E402
from bench.plan import compose_v2, timed  # noqa: E402
from tests.testenv import TestEnv, cleanup, client, unique_app  # noqa: E402

ENV = "bench"
FILES = {
    "shop": ["docker-compose.yml"],
    "voting": ["docker-compose.yml", "docker-compose.prod.yml"],
    "blog": ["docker-compose.yml"],
}


def one(peer: str, fixture: str, runs: int, t: TestEnv) -> tuple[list[float], list[float]]:
    """(compose's no-op times, deployer plan's times) for an app ``peer`` started."""
    dc = client(t.engine_host)
    app = unique_app()
    work = Path(tempfile.mkdtemp(prefix="bench-adopt-")) / fixture
    shutil.copytree(ROOT / "tests" / "docker" / "compose_fixtures" / fixture, work)
    files = FILES[fixture]
    (work / ".env").write_text(
        f"COMPOSE_PROJECT_NAME={app}\nWEB_IMAGE={t.image_v1}\nBASE_IMAGE={t.image_base}\n"
        f"CONTENT_DIR={work / 'content'}\n"
    )
    (work / "deploy.yml").write_text(
        f"app: {app}\ncompose: [{', '.join(files)}]\nenvironments:\n  {ENV}: {{}}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "SSH_"))}
    env["DOCKER_HOST"] = t.engine_host
    exe = compose_v2() if peer == "v2" else ["docker-compose"]
    compose = [*exe, "-p", app] + [a for f in files for a in ("-f", f)]
    deployer = str(ROOT / ".venv" / "bin" / "deployer")
    plan = [deployer, "plan", "-f", "deploy.yml", "--env", ENV, "--detailed-exitcode"]
    compose_times: list[float] = []
    plan_times: list[float] = []
    try:
        timed([*compose, "up", "-d"], env, work)
        timed(plan, env, work)  # warm caches; exit 0: nothing to do
        for _ in range(runs):  # interleaved, so both see the same machine load
            compose_times.append(timed([*compose, "up", "-d"], env, work))
            plan_times.append(timed(plan, env, work))
    finally:
        subprocess.run(
            [*compose, "down", "-v", "-t", "1"], env=env, cwd=work, capture_output=True, check=False
        )
        cleanup({"engine": dc}, app)
        dc.close()
        shutil.rmtree(work.parent, ignore_errors=True)
    return compose_times, plan_times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--fixture", choices=sorted(FILES), default="shop")
    args = ap.parse_args()
    compile_package()  # run from bytecode, as an installed deployer does
    t = TestEnv.load()
    files = FILES[args.fixture]
    print(f"{args.fixture}: {len(files)} compose file(s), app started by compose, unchanged; "
          f"median of {args.runs} runs (fresh processes):")
    for peer, label in (("v2", "docker compose v2"), ("1.29", "docker-compose 1.29")):
        compose_times, plan_times = one(peer, args.fixture, args.runs, t)
        c_med, p_med = statistics.median(compose_times), statistics.median(plan_times)
        print(f"  {label + ' up -d (no-op)':40} {c_med:7.3f} s   "
              f"(min {min(compose_times):.3f}, max {max(compose_times):.3f})")
        print(f"  {'deployer plan (adopted from ' + peer + ')':40} {p_med:7.3f} s   "
              f"(min {min(plan_times):.3f}, max {max(plan_times):.3f})   ratio "
              f"{p_med / c_med:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
