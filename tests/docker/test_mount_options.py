"""Long-syntax mount options on the real engine, with Docker Compose v2 as the peer: a
tmpfs mount's size and mode, a bind's propagation (`private`: `rslave` and `rshared` need a
host path on a shared mount, which this machine has not), and the host path of a bind
mount that does not exist yet (created by the engine, as compose has it created, unless
``create_host_path: false``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.docker import adopt
from deployer.docker.host import DockerHost
from tests.docker.compose_app import ENV, ComposeProject, actions, compose_up, deploy, plan_of
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

MIB = 1024 * 1024

COMPOSE = """\
services:
  web:
    image: ${{WEB_IMAGE}}
    develop:  # compose watch's: not used by `up`, nor by a deploy
      watch:
        - {{action: sync, path: ./src, target: /src}}
    volumes:
      - type: tmpfs
        target: /scratch
        tmpfs: {{size: 16m, mode: 01770}}
      - type: bind
        source: {short}
        target: /short
        consistency: cached
      - {long}:/long:ro,private
"""


@pytest.fixture
def mounts_app(app: str, testenv: TestEnv, tmp_path: Path) -> Iterator[ComposeProject]:
    host = tmp_path / "host"  # short does not exist yet: compose has the engine create it
    (host / "long").mkdir(parents=True)  # with a propagation, compose would refuse it
    compose = COMPOSE.format(short=host / "short", long=host / "long")
    variables = {"WEB_IMAGE": testenv.image_v1}
    with compose_up(
        app, tmp_path / "app", testenv.engine_host, compose, variables, ("-d",)
    ) as project:
        yield project


def web(engine: docker.DockerClient, project: str) -> dict[str, object]:
    (c,) = engine.api.containers(
        filters={"label": [f"{L.COMPOSE_PROJECT}={project}", f"{L.COMPOSE_SERVICE}=web"]}
    )
    return dict(engine.api.inspect_container(c["Id"]))


def tmpfs_of(c: dict[str, object]) -> object:
    host = c["HostConfig"]
    assert isinstance(host, dict)
    return [m.get("TmpfsOptions") for m in host["Mounts"] or [] if m["Type"] == "tmpfs"]


def propagation(c: dict[str, object]) -> dict[str, str]:
    mounts = c["Mounts"]
    assert isinstance(mounts, list)
    return {m["Destination"]: m["Propagation"] for m in mounts if m["Type"] == "bind"}


def test_tmpfs_options_and_missing_bind_paths_as_compose_has_them(
    mounts_app: ComposeProject, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    before = web(engine, mounts_app.project)
    assert tmpfs_of(before) == [{"SizeBytes": 16 * MIB, "Mode": 0o1770}]
    assert propagation(before) == {"/short": "rprivate", "/long": "private"}

    m = mounts_app.manifest()
    svc = m.service("web")
    plan, _ = plan_of(h1, m)
    assert actions(plan) == {"web": ("unchanged", ("up to date",))}
    # each option is compared: changed alone, it is a change of `volumes`
    image = engine.api.inspect_image(str(before["Image"]))
    driver = engine.api.info()["LoggingDriver"]
    scratch = next(v for v in svc.volumes if v.type == "tmpfs")
    long = next(v for v in svc.volumes if v.target == "/long")
    for old, changed in (
        (scratch, replace(scratch, tmpfs_size=32 * MIB)),
        (scratch, replace(scratch, tmpfs_mode=0o1777)),
        (long, replace(long, propagation="")),
    ):
        other = replace(svc, volumes=tuple(changed if v is old else v for v in svc.volumes))
        parts = adopt.config_parts(other, before, image, mounts_app.project, driver, {})
        assert adopt.differing(parts, other) == ["volumes"]

    # the deployer's container, on a host where the bind paths are gone again
    host = Path(str(next(v.source for v in svc.volumes if v.target == "/short"))).parent
    for d in ("short", "long"):
        (host / d).rmdir()
    mounts_app.set_env(WEB_IMAGE=testenv.image_v2)
    deploy(h1, mounts_app.manifest())
    after = web(engine, mounts_app.project)
    assert after["Id"] != before["Id"]
    assert tmpfs_of(after) == [{"SizeBytes": 16 * MIB, "Mode": 0o1770}]
    assert propagation(after) == {"/short": "rprivate", "/long": "private"}
    assert (host / "short").is_dir() and (host / "long").is_dir()
    plan, _ = plan_of(h1, mounts_app.manifest())
    assert not plan.changes, actions(plan)


def test_create_host_path_false_refuses_a_missing_host_path(
    app: str, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv, tmp_path: Path
) -> None:
    missing = tmp_path / "host" / "not-there"  # outside the checkout: a host path
    path = tmp_path / "app"
    path.mkdir()
    (path / "docker-compose.yml").write_text(
        "services:\n  web:\n    image: ${WEB_IMAGE}\n    volumes:\n"
        f"      - {{type: bind, source: {missing}, target: /d,\n"
        "          bind: {create_host_path: false}}\n"
    )
    (path / ".env").write_text(f"WEB_IMAGE={testenv.image_v1}\n")
    (path / "deploy.yml").write_text(
        f"app: {app}\ncompose: [docker-compose.yml]\nenvironments:\n  {ENV}: {{}}\n"
        "rollout:\n  health_timeout: 30s\n"
    )
    project = ComposeProject(app, path, testenv.engine_host)
    with pytest.raises(AssertionError, match="bind source path does not exist"):
        deploy(h1, project.manifest())
    assert not missing.exists()
    assert not engine.api.containers(filters={"label": f"{L.APP}={app}"})
