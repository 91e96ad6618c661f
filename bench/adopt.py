"""Adopting a compose app: `deployer plan` vs `docker-compose up -d` (Debian's 1.29), both
deciding that the app docker-compose started is up to date.

Needs the test environment (scripts/testenv.sh up). Run from the repository root:

    .venv/bin/python bench/adopt.py [--runs N] [--fixture shop|voting|blog]

docker-compose starts a fixture app (tests/docker/compose_fixtures/) under a unique
project name; then, interleaved, fresh processes of `docker-compose up -d` (its no-op
check) and `deployer plan --detailed-exitcode` on the manifest that reads the same compose
files (exit 0 is required: every adopted service must come out unchanged). Everything is
removed afterwards (`docker-compose down -v`, then anything left labelled for the project).
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

from bench.plan import timed  # noqa: E402
from tests.testenv import TestEnv, cleanup, client, unique_app  # noqa: E402

ENV = "bench"
FILES = {
    "shop": ["docker-compose.yml"],
    "voting": ["docker-compose.yml", "docker-compose.prod.yml"],
    "blog": ["docker-compose.yml"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--fixture", choices=sorted(FILES), default="shop")
    args = ap.parse_args()
    t = TestEnv.load()
    dc = client(t.engine_host)
    app = unique_app()
    work = Path(tempfile.mkdtemp(prefix="bench-adopt-")) / args.fixture
    shutil.copytree(ROOT / "tests" / "docker" / "compose_fixtures" / args.fixture, work)
    files = FILES[args.fixture]
    (work / ".env").write_text(
        f"COMPOSE_PROJECT_NAME={app}\nWEB_IMAGE={t.image_v1}\nBASE_IMAGE={t.image_base}\n"
        f"CONTENT_DIR={work / 'content'}\n"
    )
    (work / "deploy.yml").write_text(
        f"app: {app}\ncompose: [{', '.join(files)}]\nenvironments:\n  {ENV}: {{}}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "SSH_"))}
    env["DOCKER_HOST"] = t.engine_host
    compose = ["docker-compose", "-p", app] + [a for f in files for a in ("-f", f)]
    deployer = str(ROOT / ".venv" / "bin" / "deployer")
    plan = [deployer, "plan", "-f", "deploy.yml", "--env", ENV, "--detailed-exitcode"]
    compose_times: list[float] = []
    plan_times: list[float] = []
    try:
        timed([*compose, "up", "-d"], env, work)
        timed(plan, env, work)  # warm caches; exit 0: nothing to do
        for _ in range(args.runs):  # interleaved, so both see the same machine load
            compose_times.append(timed([*compose, "up", "-d"], env, work))
            plan_times.append(timed(plan, env, work))
    finally:
        subprocess.run(
            [*compose, "down", "-v", "-t", "1"], env=env, cwd=work, capture_output=True, check=False
        )
        cleanup({"engine": dc}, app)
        dc.close()
        shutil.rmtree(work.parent, ignore_errors=True)

    c_med, p_med = statistics.median(compose_times), statistics.median(plan_times)
    print(f"{args.fixture}: {len(files)} compose file(s), app started by docker-compose, "
          f"unchanged; median of {args.runs} runs (fresh processes):")
    print(f"  {'docker-compose up -d (no-op)':36} {c_med:7.3f} s   "
          f"(min {min(compose_times):.3f}, max {max(compose_times):.3f})")
    print(f"  {'deployer plan (adopted, no changes)':36} {p_med:7.3f} s   "
          f"(min {min(plan_times):.3f}, max {max(plan_times):.3f})")
    print(f"  ratio deployer / compose: median {p_med / c_med:.2f}, best "
          f"{min(plan_times) / min(compose_times):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
