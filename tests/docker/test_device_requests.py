"""GPU reservations (``deploy.resources.reservations.devices``) and ``gpus:`` on the real
engine, with Docker Compose v2 as the peer.

The test engines have no GPU and no NVIDIA runtime: a container that asks for one is
created (the engine records the request) but cannot start, for compose as for the
deployer. So compose only creates the app (``docker compose create``), and the deployer's
own container is created, not started: what is compared is what the engine records,
``HostConfig.DeviceRequests``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.docker import adopt
from deployer.docker.host import DockerHost
from deployer.manifest import load_manifest
from deployer.manifest.model import DeviceRequest, Manifest
from deployer.plan import Step, make_plan
from tests import composev2
from tests.docker.compose_app import observe
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

ENV = "test"
COMPOSE = """\
services:
  gpu:
    image: {image}
    deploy:
      resources:
        reservations:
          devices:
            - driver: nvidia
              count: {count}
              capabilities: [gpu, compute]
              options: {{virtualization: "false"}}
            - capabilities: [gpu]
    gpus:
      - driver: nvidia
        device_ids: ["0"]
        capabilities: [utility]
"""
WANTED = [
    {
        "Driver": "nvidia",
        "Count": 1,
        "DeviceIDs": None,
        "Capabilities": [["gpu", "compute"]],
        "Options": {"virtualization": "false"},
    },
    {"Driver": "", "Count": -1, "DeviceIDs": None, "Capabilities": [["gpu"]], "Options": {}},
    # gpus: after the reservations; compose adds "gpu" to the capabilities
    {
        "Driver": "nvidia",
        "Count": 0,
        "DeviceIDs": ["0"],
        "Capabilities": [["utility", "gpu"]],
        "Options": {},
    },
]


@pytest.fixture
def gpu_app(app: str, testenv: TestEnv, tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "docker-compose.yml").write_text(COMPOSE.format(image=testenv.image_v1, count=1))
    (tmp_path / ".env").write_text(f"COMPOSE_PROJECT_NAME={app}\n")
    (tmp_path / "deploy.yml").write_text(
        f"app: {app}\ncompose: [docker-compose.yml]\nenvironments:\n  {ENV}: {{}}\n"
        "policy:\n  allow: [devices]\n"
    )
    run = ["-p", app]
    try:
        composev2.run([*run, "create"], cwd=tmp_path, docker_host=testenv.engine_host)
        yield tmp_path
    finally:
        composev2.run(
            [*run, "down", "--timeout", "1"],
            cwd=tmp_path,
            docker_host=testenv.engine_host,
            check=False,
        )


def _requests(c: dict[str, object]) -> object:
    """The engine's DeviceRequests, empty lists and maps as null (it writes either)."""
    host = c["HostConfig"]
    assert isinstance(host, dict)
    return [
        {**r, "DeviceIDs": r.get("DeviceIDs") or None, "Options": r.get("Options") or {}}
        for r in host["DeviceRequests"]
    ]


def test_compose_s_gpu_reservation_is_adopted_and_compared(
    gpu_app: Path, app: str, h1: DockerHost, engine: docker.DockerClient
) -> None:
    m: Manifest = load_manifest(gpu_app / "deploy.yml", ENV, {})
    svc = m.service("gpu")
    assert svc.device_requests == (
        DeviceRequest(("gpu", "compute"), "nvidia", 1, (), (("virtualization", "false"),)),
        DeviceRequest(("gpu",), "", -1),
    )
    assert svc.gpus == (DeviceRequest(("utility", "gpu"), "nvidia", 0, ("0",)),)
    (found,) = engine.api.containers(all=True, filters={"label": f"{L.COMPOSE_PROJECT}={app}"})
    made = engine.api.inspect_container(found["Id"])
    assert _requests(made) == WANTED  # what compose asked the engine for

    image = engine.api.inspect_image(made["Image"])
    driver = engine.api.info()["LoggingDriver"]
    parts = adopt.config_parts(svc, made, image, app, driver, m.engine_names())
    assert adopt.differing(parts, svc) == []
    gpu = svc.gpus[0]
    for key, changed in (
        ("device_requests", {"device_requests": (replace(svc.device_requests[0], count=2),)}),
        ("device_requests", {"device_requests": svc.device_requests[1:]}),
        ("gpus", {"gpus": (replace(gpu, device_ids=("1",)),)}),
        ("gpus", {"gpus": (gpu, gpu)}),
    ):
        more = replace(svc, **changed)
        parts = adopt.config_parts(more, made, image, app, driver, m.engine_names())
        assert adopt.differing(parts, more) == [key], changed
    # without gpus, the last request cannot be told from one reservation too many
    less = replace(svc, gpus=())
    parts = adopt.config_parts(less, made, image, app, driver, m.engine_names())
    assert adopt.differing(parts, less) == ["device_requests", "gpus"]

    # a changed reservation in the compose file plans a replace that names it
    digest = h1.resolve(svc.image, None, pull_policy=svc.pull_policy)
    (step,) = plan_of(h1, m, digest)
    assert (str(step.action), step.reasons) == ("unchanged", ("up to date",))
    compose = gpu_app / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("count: 1", "count: 2"))
    (step,) = plan_of(h1, load_manifest(gpu_app / "deploy.yml", ENV, {}), digest)
    assert (str(step.action), step.reasons) == ("replace", ("config changed: device_requests",))
    compose.write_text(compose.read_text().replace('device_ids: ["0"]', 'device_ids: ["1"]'))
    m = load_manifest(gpu_app / "deploy.yml", ENV, {})
    (step,) = plan_of(h1, m, digest)
    assert step.reasons == ("config changed: device_requests, gpus",)


def plan_of(h: DockerHost, m: Manifest, digest: str) -> tuple[Step, ...]:
    obs = observe(h, m)
    # as if compose's container ran: no engine here can start it
    obs = replace(obs, containers=tuple(replace(c, running=True) for c in obs.containers))
    return make_plan(m, [obs], {"gpu": digest}).hosts[0].steps


def test_the_deployer_s_container_asks_the_engine_for_the_gpus(
    gpu_app: Path, app: str, h1: DockerHost, engine: docker.DockerClient
) -> None:
    m = load_manifest(gpu_app / "deploy.yml", ENV, {})
    svc = m.service("gpu")
    digest = h1.resolve(svc.image, None, pull_policy=svc.pull_policy)
    h1.ensure_infrastructure(m)
    cid = h1.create(m, svc, digest, 1, {L.APP: app}, f"{app}-gpu-deployer")
    try:
        assert _requests(engine.api.inspect_container(cid)) == WANTED
    finally:
        engine.api.remove_container(cid, force=True)
