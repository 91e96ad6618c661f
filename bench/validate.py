"""Time `deployer validate` on a generated 50-service manifest, side by side with Debian's
docker-compose 1.29 checking the equivalent compose file (`docker-compose config -q`).

Run: .venv/bin/python bench/validate.py [--services N] [--runs N]
Installs docker-compose with apt-get when it is missing (needs root), else skips the peer.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.installed import compile_package


def service(i: int, n: int) -> dict[str, object]:
    svc: dict[str, object] = {
        "image": f"registry.example.com/shop/svc{i}:${{CI_COMMIT_SHORT_SHA:-dev}}",
        "environment": {"LOG_LEVEL": "info", "SERVICE_INDEX": str(i), "DATABASE_URL": "${DB}"},
        "ports": [f"{20000 + i}:8080"],
        "volumes": [f"data{i}:/var/lib/svc", "/srv/shared:/shared:ro"],
        "networks": {"backend": {"aliases": [f"svc{i}-alias"]}},
        "healthcheck": {
            "test": ["CMD", "wget", "-qO-", "http://127.0.0.1:8080/up"],
            "interval": "5s",
            "timeout": "2s",
            "retries": 3,
        },
        "labels": {"com.example.team": "shop", "com.example.index": str(i)},
        "restart": "unless-stopped",
        "stop_grace_period": "30s",
        "deploy": {
            "replicas": 1,
            "resources": {"limits": {"cpus": "0.5", "memory": "256m"}},
            "update_config": {"order": "stop-first", "delay": "5s"},
        },
    }
    if i + 1 < n:
        svc["depends_on"] = [f"svc{i + 1}"]
    return svc


def dump(data: object) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


def files(directory: Path, n: int) -> tuple[Path, Path]:
    services = {f"svc{i}": service(i, n) for i in range(n)}
    volumes = {f"data{i}": {} for i in range(n)}
    networks = {"backend": {}}
    manifest = {
        "app": "bench",
        "environments": {"production": {"hosts": ["ssh://deploy@prod-1.example.com"]}},
        "services": services,
        "volumes": volumes,
        "networks": networks,
        "tasks": {"migrate": {"service": "svc0", "command": ["bin/migrate"]}},
        "rollout": {"health_timeout": "60s", "keep_releases": 3},
    }
    compose = {"version": "3.8", "services": services, "volumes": volumes, "networks": networks}
    m, c = directory / "deploy.yml", directory / "docker-compose.yml"
    m.write_text(dump(manifest))
    c.write_text(dump(compose))
    return m, c


def timed(argv: list[str], runs: int, env: dict[str, str]) -> tuple[float, float, int]:
    times, code = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        times.append(time.perf_counter() - start)
        code = proc.returncode
        if code != 0:
            sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-2000:])
    return statistics.median(times), min(times), code


def compose_binary() -> str | None:
    found = shutil.which("docker-compose")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing docker-compose (Debian package) ...", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "docker-compose"],
            check=False,
            capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    return shutil.which("docker-compose")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=50)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    compile_package()  # run from bytecode, as an installed deployer does
    env = {**os.environ, "CI_COMMIT_SHORT_SHA": "abc1234", "DB": "postgres://db/shop"}
    with tempfile.TemporaryDirectory() as d:
        manifest, compose = files(Path(d), args.services)
        lines = len(manifest.read_text().splitlines())
        print(f"{args.services} services, manifest {lines} lines; median (best) of {args.runs}")
        med, best, code = timed(
            [sys.executable, "-m", "deployer", "validate", "-f", str(manifest)], args.runs, env
        )
        print(
            f"  deployer validate               {med * 1000:7.1f} ms ({best * 1000:.1f})"
            f" exit {code}"
        )
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from deployer.manifest import check_manifest

        check_manifest(manifest, None, env)  # warm: schema loaded, validator built
        start = time.perf_counter()
        for _ in range(args.runs):
            report = check_manifest(manifest, None, env)
        inproc = (time.perf_counter() - start) / args.runs
        print(f"  check_manifest (in process)     {inproc * 1000:7.1f} ms  ok={report.ok}")
        peer = compose_binary()
        if peer:
            version = subprocess.run(
                [peer, "version", "--short"], capture_output=True, text=True, check=False
            ).stdout.strip()
            med, best, code = timed([peer, "-f", str(compose), "config", "-q"], args.runs, env)
            print(
                f"  docker-compose {version:<8} config -q {med * 1000:7.1f} ms "
                f"({best * 1000:.1f}) exit {code}"
            )
        else:
            print("  docker-compose: not installed and cannot be installed here (skipped)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
