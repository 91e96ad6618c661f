"""Files from the repository: `deployer deploy` vs `docker compose up -d --wait` (Compose v2)
on one compose app whose services mount a relative file, a relative directory, a config
and a secret.

Needs the test environment (scripts/testenv.sh up). Run from the repository root:

    .venv/bin/python bench/files.py [--runs N] [--static-kib N]

Per run, each under its own project/app name: the first start (compose `up -d --wait`;
deployer `deploy`, which ships the files through the Docker API), then one file changed
and applied again (compose recreates the service mounting it; the deployer replaces it).
The deployer's shipping step (networks, volumes and files) is read from its report.
Everything is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.installed import compile_package  # noqa: E402
from bench.plan import compose_v2, timed  # noqa: E402
from tests.testenv import TestEnv, cleanup, client, unique_app  # noqa: E402

COMPOSE = """\
services:
  web:
    image: {image}
    init: true
    volumes:
      - ./conf/app.conf:/etc/app/app.conf:ro
      - ./static:/srv/static:ro
    configs:
      - source: extra
        target: /etc/app/extra.yml
    secrets:
      - api_key
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/version"]
      interval: 1s
      timeout: 5s
      retries: 60
  worker:
    image: {image}
    init: true
    volumes:
      - ./conf/worker.conf:/etc/worker.conf:ro
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/version"]
      interval: 1s
      timeout: 5s
      retries: 60
configs:
  extra:
    content: "greeting: hello"
secrets:
  api_key:
    environment: API_KEY
"""

MANIFEST = """\
app: {app}
compose: docker-compose.yml
environments:
  bench: {{}}
rollout:
  health_timeout: 120s
  healthy_after: 1s
  drain: 0s
"""


def checkout(work: Path, image: str, app: str, static_kib: int) -> None:
    (work / "conf").mkdir(parents=True)
    (work / "static").mkdir()
    (work / "conf" / "app.conf").write_text("version=1\n")
    (work / "conf" / "worker.conf").write_text("worker=1\n")
    for i in range(max(1, static_kib // 64)):
        (work / "static" / f"f{i}.bin").write_bytes(os.urandom(64 * 1024))
    (work / "docker-compose.yml").write_text(COMPOSE.format(image=image))
    (work / "deploy.yml").write_text(MANIFEST.format(app=app))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--static-kib", type=int, default=1024)
    args = ap.parse_args()
    compile_package()  # run from bytecode, as an installed deployer does
    t = TestEnv.load()
    dc = client(t.engine_host)
    deployer = str(ROOT / ".venv" / "bin" / "deployer")
    rows: dict[str, list[float]] = {k: [] for k in ("c1", "c2", "d1", "d2", "ship")}
    for _ in range(args.runs):
        for peer in ("compose", "deployer"):
            app = unique_app()
            work = Path(tempfile.mkdtemp(prefix="bench-files-")) / app
            checkout(work, t.image_v1, app, args.static_kib)
            env = {
                **os.environ,
                "DOCKER_HOST": t.engine_host,
                "API_KEY": "bench-secret-value",
                "COMPOSE_PROJECT_NAME": app,
            }
            try:
                if peer == "compose":
                    up = [*compose_v2(), "up", "-d", "--wait"]
                    rows["c1"].append(timed(up, env, work))
                    (work / "conf" / "app.conf").write_text("version=2\n")
                    rows["c2"].append(timed(up, env, work))
                else:
                    reports = work / "reports"
                    cmd = [deployer, "deploy", "--report-dir", str(reports)]
                    rows["d1"].append(timed(cmd, env, work))
                    report = json.loads((reports / "deploy-report.json").read_text())
                    rows["ship"] += [
                        float(s.get("seconds") or 0)
                        for s in report.get("steps", [])
                        if s.get("kind") == "infrastructure"
                    ]
                    (work / "conf" / "app.conf").write_text("version=2\n")
                    rows["d2"].append(timed(cmd, env, work))
            finally:
                if peer == "compose":
                    timed([*compose_v2(), "down", "-v"], env, work)
                cleanup({"main": dc}, app)

    def med(k: str) -> str:
        return f"{statistics.median(rows[k]):.2f} s" if rows[k] else "-"

    print(f"runs: {args.runs}, static directory: {args.static_kib} KiB")
    print(f"{'':34}{'compose v2 up -d --wait':>26}{'deployer deploy':>18}")
    print(f"{'first start (ships the files)':34}{med('c1'):>26}{med('d1'):>18}")
    print(f"{'one file changed':34}{med('c2'):>26}{med('d2'):>18}")
    print(f"deployer step 'networks and volumes' (shipping): {med('ship')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
