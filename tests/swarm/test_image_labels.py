"""A Swarm task container carries every label of its image, and Swarm blanks none: an
image committed from an app's container (or built with ``LABEL io.deployer.app=...``)
makes the tasks of a Swarm app on a host look like that app's containers. The
container-mode commands of that app on the same host must not take them for its own.

Measured on engine 20.10 (single-node swarm): the task container had the image's
io.deployer.app/environment/service/role/lock-* and com.docker.compose.* labels, beside
Swarm's com.docker.swarm.task.id. Before the fix, the other app's `status` listed the
task as its container, `logs` failed on it (exit 1), `unlock` read it as its deploy lock
held by the image's holder (exit 4), `plan` planned to replace it (scale 2 → 1), and
`down` removed it (Swarm started a new task)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from tests.swarm.helpers import cli
from tests.testenv import TestEnv, unique_app

pytestmark = pytest.mark.integration

SWARM = """\
app: {app}
environments:
  production:
    engine: swarm
services:
  web:
    image: {image}
    init: true
    command: ["sleep", "86400"]
rollout:
  health_timeout: 30s
  healthy_after: 1s
"""

OTHER = """\
app: {app}
environments:
  prod:
    hosts: ["{host}"]
services:
  web:
    image: {image}
    init: true
    command: ["sleep", "86400"]
"""


def test_container_mode_never_takes_a_swarm_task_for_its_own(
    swarm: docker.DockerClient,
    swarm_app: str,
    testenv: TestEnv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    other = unique_app()  # a container-mode app on the same host, named in the image
    labels = {
        L.MANAGED: "true",
        L.APP: other,
        L.ENVIRONMENT: "prod",
        L.SERVICE: "web",
        L.ROLE: L.ROLE_CURRENT,
        "io.deployer.lock-key": f"{other}/prod",
        "io.deployer.lock-holder": "https://gitlab.example/x/-/jobs/1",
        "io.deployer.lock-expires": "9999999999",
        L.COMPOSE_PROJECT: other,
        L.COMPOSE_SERVICE: "web",
    }
    dockerfile = f"FROM {testenv.image_base}\nLABEL " + " ".join(
        f'{k}="{v}"' for k, v in labels.items()
    )
    tag = f"{testenv.registry}/{swarm_app}/labelled:1"
    swarm.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    for line in swarm.api.push(tag, stream=True, decode=True):
        assert "error" not in line, line
    env = {"DOCKER_HOST": testenv.engine_host}
    path = tmp_path / "swarm.yml"
    path.write_text(SWARM.format(app=swarm_app, image=tag))
    code, out = cli("deploy", "-f", str(path), "--report-dir", str(tmp_path), env=env)
    assert code == 0, out
    (task,) = swarm.containers.list(
        filters={"label": f"com.docker.swarm.service.name={swarm_app}_web"}
    )
    assert {k: task.labels.get(k) for k in labels} == labels  # inherited, all of them
    assert L.SWARM_TASK_ID in task.labels

    mine = tmp_path / "other.yml"
    mine.write_text(OTHER.format(app=other, host=testenv.engine_host, image=testenv.image_base))

    def run(*argv: str) -> tuple[int, str]:
        code, out = cli(argv[0], "-f", str(mine), "--env", "prod", *argv[1:], env={})
        return code, out + capsys.readouterr().err

    code, out = run("status")
    assert code == 0 and task.name not in out, out
    code, out = run("logs")
    assert code == 0, out
    code, out = run("unlock")
    assert code == 0 and "no deploy lock is held" in out, out
    code, out = run("plan", "--format", "json")
    assert code == 0, out
    summary = json.loads(out)["summary"]
    assert summary["create"] == 1 and summary["replace"] == summary["scale"] == 0, summary
    code, out = run("down")
    assert code == 0 and task.name not in out, out
    task.reload()
    assert task.status == "running"  # the Swarm app's task is untouched
