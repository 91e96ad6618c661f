"""An app compose started, planned and deployed on one real host as the deployer does
(observed with the manifest's engine names, every image resolved), for the tests of
adoption (compose 1.29 and v2), compose's keys, links and depends_on, and the round trip."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker

from deployer.context import Context
from deployer.docker.host import DockerHost
from deployer.manifest import load_manifest
from deployer.manifest.model import Manifest
from deployer.plan import Observed, Plan, make_plan
from deployer.rollout import PrintLog, Rollout
from tests import composev2

ENV = "test"


@dataclass
class ComposeProject:
    """A Docker Compose v2 project in ``path`` (its deploy.yml beside the compose file),
    on the engine at ``host``."""

    project: str
    path: Path
    host: str

    def compose(self, *args: str) -> str:
        return composev2.run(
            ["-p", self.project, *args], cwd=self.path, docker_host=self.host
        ).stdout

    def manifest(self) -> Manifest:
        return load_manifest(self.path / "deploy.yml", ENV, {})

    def set_env(self, **variables: str) -> None:
        """The project's ``.env``: its name and ``variables`` (a new image, say)."""
        lines = [f"COMPOSE_PROJECT_NAME={self.project}"]
        lines += [f"{k}={v}" for k, v in variables.items()]
        (self.path / ".env").write_text("\n".join(lines) + "\n")


@contextmanager
def compose_up(
    app: str,
    path: Path,
    host: str,
    compose: str,
    variables: Mapping[str, str],
    up: tuple[str, ...] = ("-d", "--wait"),
    health_timeout: str = "60s",
) -> Iterator[ComposeProject]:
    """A Docker Compose v2 project ``app`` in ``path`` (the compose file, its ``.env`` and
    the deploy.yml beside), started with ``docker compose up`` and taken down after."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "docker-compose.yml").write_text(compose)
    (path / "deploy.yml").write_text(
        f"app: {app}\ncompose: [docker-compose.yml]\nenvironments:\n  {ENV}: {{}}\n"
        f"rollout:\n  health_timeout: {health_timeout}\n  healthy_after: 1s\n"
    )
    project = ComposeProject(app, path, host)
    project.set_env(**variables)
    try:
        project.compose("up", *up)
        yield project
    finally:
        composev2.run(
            ["-p", app, "down", "-v", "--timeout", "1"], cwd=path, docker_host=host, check=False
        )


def observe(h: DockerHost, m: Manifest) -> Observed:
    """What the deployer sees of ``m``'s app on ``h``, compose's containers included."""
    return h.observe(
        m.app,
        m.environment.name,
        compose_project=m.compose_project,
        services=m.services,
        engine_names=m.engine_names(),
    )


def plan_of(h: DockerHost, m: Manifest) -> tuple[Plan, dict[str, Observed]]:
    obs = observe(h, m)
    digests = {s.name: h.resolve(s.image, None, pull_policy=s.pull_policy) for s in m.services}
    return make_plan(m, [obs], digests), {h.name: obs}


def deploy(h: DockerHost, m: Manifest) -> Rollout:
    """Plan and apply ``m`` on ``h``; the rollout, which succeeded."""
    plan, observed = plan_of(h, m)
    r = Rollout(m, plan, {h.name: h}, observed, Context(), PrintLog(lambda s: None))
    r.run()
    assert r.error is None, r.result.error
    return r


def actions(plan: Plan) -> dict[str, tuple[str, tuple[str, ...]]]:
    """service → (action, reasons) on the plan's first host."""
    return {s.service: (str(s.action), s.reasons) for s in plan.hosts[0].steps}


def exec_out(engine: docker.DockerClient, cid: str, *cmd: str) -> str:
    res = engine.containers.get(cid).exec_run(list(cmd))
    assert res.exit_code == 0, res.output
    return bytes(res.output).decode().strip()
