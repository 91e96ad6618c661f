"""Manifests for Swarm tests, the CLI run in-process, and removal of everything a test put
on the swarm."""

from __future__ import annotations

import contextlib
import io
import time
from typing import Any

import docker
import docker.errors
import pytest

from deployer.cli import main
from deployer.manifest.model import (
    Environment,
    Manifest,
    Port,
    RolloutPolicy,
    Service,
    Task,
    UpdateConfig,
)

STACK = "com.docker.stack.namespace"


def web(
    image: str,
    *,
    name: str = "web",
    replicas: int = 1,
    env: dict[str, str] | None = None,
    order: str | None = "start-first",
    ports: tuple[Port, ...] = (),
    parallelism: int = 1,
    monitor: float = 2.0,
) -> Service:
    return Service(
        name=name,
        image=image,
        environment=tuple(sorted((env or {}).items())),
        replicas=replicas,
        ports=ports,
        init=True,
        stop_grace_period=2.0,
        update_config=UpdateConfig(
            order=order,  # type: ignore[arg-type]
            parallelism=parallelism,
            monitor=monitor,
        ),
    )


def manifest(
    app: str,
    *services: Service,
    tasks: tuple[Task, ...] = (),
    health_timeout: float = 20.0,
    environment: str = "production",
) -> Manifest:
    return Manifest(
        path="deploy.yml",
        app=app,
        environment=Environment(name=environment, engine="swarm"),
        services=services,
        tasks=tasks,
        rollout=RolloutPolicy(health_timeout=health_timeout, healthy_after=2.0, lock_ttl=600),
    )


def cli(*argv: str, env: dict[str, str]) -> tuple[int, str]:
    """``deployer <argv>`` in-process with ``env`` set and no CI variables: (exit code, output)."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        for k in ("CI", "GITLAB_CI", "CI_JOB_URL", "CI_ENVIRONMENT_NAME"):
            mp.delenv(k, raising=False)
        for k, v in env.items():
            mp.setenv(k, v)
        code = main(list(argv), out)
    return code, out.getvalue()


def remove_from_swarm(client: docker.DockerClient, app: str, deadline: float = 60.0) -> None:
    """Remove the app's services (and jobs), wait for their tasks, then its networks and
    configs. Only what carries the app's stack namespace or name prefix."""
    api: Any = client.api
    services = [
        s
        for s in api.services()
        if (s["Spec"].get("Labels") or {}).get(STACK) == app
        or s["Spec"]["Name"].startswith(app + "_")
    ]
    for s in services:
        with contextlib.suppress(docker.errors.NotFound):
            api.remove_service(s["ID"])
    end = time.monotonic() + deadline
    for s in services:
        label = f"com.docker.swarm.service.id={s['ID']}"
        while time.monotonic() < end:
            left = api.containers(all=True, filters={"label": label})
            if all(c["State"] in ("exited", "dead", "created") for c in left):
                for c in left:  # finished job tasks' containers stay behind
                    with contextlib.suppress(docker.errors.NotFound):
                        api.remove_container(c["Id"], force=True)
                break
            time.sleep(0.3)
    # Anything of the app's stack still on the engine (finished jobs' containers).
    for c in api.containers(all=True, filters={"label": f"{STACK}={app}"}):
        if c["State"] in ("exited", "dead", "created"):
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_container(c["Id"], force=True)
    # Task containers leave the network a little after the tasks are gone.
    for net in api.networks():
        if not net["Name"].startswith(app + "_"):
            continue
        while True:
            try:
                api.remove_network(net["Id"])
                break
            except docker.errors.NotFound:
                break
            except docker.errors.APIError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.5)
    for vol in api.volumes(filters={"label": f"{STACK}={app}"}).get("Volumes") or []:
        with contextlib.suppress(docker.errors.NotFound):
            api.remove_volume(vol["Name"], force=True)
    for cfg in api.configs():
        if cfg["Spec"]["Name"].startswith(app + "_"):
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_config(cfg["ID"])
    for sec in api.secrets():
        if sec["Spec"]["Name"].startswith(app + "_"):
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_secret(sec["ID"])
