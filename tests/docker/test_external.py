"""`external: true` networks and volumes the host does not have: `plan` and `deploy` name
each one at its line with the command that creates it (exit 2), before anything of the app
changes; once they exist, the deploy runs and mounts and joins them as they are."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from deployer import labels as L
from tests.cli import cli
from tests.conftest import Cleanup
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

COMPOSE = """\
services:
  web:
    image: {image}
    networks: [front, shared]
    volumes:
      - data:/data
      - files:/files
networks:
  front: {{}}
  shared:
    external: true
    name: {app}-shared-net
volumes:
  data: {{}}
  files:
    external: true
    name: {app}-files
"""


def of_app(client: docker.DockerClient, app: str) -> list[str]:
    flt = {"label": f"{L.APP}={app}"}
    vols = client.api.volumes(filters=flt).get("Volumes") or []
    return sorted(
        [f"container {c.name}" for c in client.containers.list(all=True, filters=flt)]
        + [f"network {n.name}" for n in client.networks.list(filters=flt)]
        + [f"volume {v['Name']}" for v in vols]
    )


def test_missing_external_network_and_volume_stop_plan_and_deploy_before_any_change(
    app: str,
    testenv: TestEnv,
    tmp_path: Path,
    engine: docker.DockerClient,
    cleanup: Cleanup,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "compose.yml").write_text(COMPOSE.format(image=testenv.image_v1, app=app))
    manifest = tmp_path / "deploy.yml"
    manifest.write_text(
        f"app: {app}\ncompose: [compose.yml]\nenvironments:\n"
        f"  production:\n    hosts: [{testenv.engine_host}]\n"
    )
    for command in ("plan", "deploy"):
        code, _ = cli(command, "-f", str(manifest))
        err = capsys.readouterr().err
        assert code == 2, (command, err)
        # both at once, each at its line, with the command that creates it
        assert f"compose.yml:11:15: networks.shared.external: on {testenv.engine_host}" in err
        assert f"`docker network create {app}-shared-net`" in err, err
        assert f"compose.yml:16:15: volumes.files.external: on {testenv.engine_host}" in err, err
        assert f"`docker volume create {app}-files`" in err, err
        assert of_app(engine, app) == [], command  # not the app's own network, nor its volume

    net = engine.networks.create(f"{app}-shared-net")
    cleanup.later(net.remove)
    vol = engine.volumes.create(f"{app}-files")
    cleanup.later(vol.remove)
    code, out = cli("deploy", "-f", str(manifest))
    assert code == 0, out + capsys.readouterr().err
    web = engine.containers.get(f"{app}-production-web-1")
    assert f"{app}-shared-net" in web.attrs["NetworkSettings"]["Networks"]
    assert f"{app}-files" in {m.get("Name") for m in web.attrs["Mounts"]}
    # what exists outside the app is not the app's: not labelled, not removed by `down`
    assert f"network {app}-shared-net" not in of_app(engine, app)
    code, out = cli("down", "-f", str(manifest), "--volumes", "--yes")
    assert code == 0, out + capsys.readouterr().err
    engine.networks.get(f"{app}-shared-net")
    engine.volumes.get(f"{app}-files")


DRIVERS = """\
services:
  web:
    image: {image}
    logging:
      driver: loki
      options: {{loki-url: "http://loki:3100/loki/api/v1/push"}}
    volumes: [data:/data]
  gpu:
    image: {image}
    runtime: nvidia
    logging: {{driver: none}}
volumes:
  data:
    driver: rexray/ebs
networks:
  default:
    driver: weave
"""


def test_drivers_and_runtimes_the_engine_lacks_stop_plan_and_deploy_before_any_change(
    app: str,
    testenv: TestEnv,
    tmp_path: Path,
    engine: docker.DockerClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Loki's logging driver, a volume and a network plugin, the nvidia runtime: before,
    the engine refused the first container create in the middle of the rollout."""
    (tmp_path / "compose.yml").write_text(DRIVERS.format(image=testenv.image_v1))
    manifest = tmp_path / "deploy.yml"
    manifest.write_text(
        f"app: {app}\ncompose: [compose.yml]\npolicy: {{allow: [runtime]}}\n"
        f"environments:\n  production:\n    hosts: [{testenv.engine_host}]\n"
    )
    for command in ("plan", "deploy"):
        code, _ = cli(command, "-f", str(manifest))
        err = capsys.readouterr().err
        assert code == 2, (command, err)
        h = testenv.engine_host
        for where, what in (
            ("5:15: services.web.logging.driver", 'logging driver "loki" (it has: '),
            ("10:14: services.gpu.runtime", 'runtime "nvidia" (it has: '),
            ("14:13: volumes.data.driver", 'volume driver "rexray/ebs"'),
            ("17:13: networks.default.driver", 'network driver "weave"'),
        ):
            assert f"compose.yml:{where}: on {h}, the engine has no {what}" in err, err
        assert "json-file" in err and "docker plugin install" in err, err
        assert "none" not in err.split("(it has:")[0], err  # `driver: none` is the engine's own
        assert of_app(engine, app) == [], command


def test_a_plugin_is_found_by_its_name_or_with_the_latest_tag() -> None:
    from deployer.docker.support import _has

    assert _has(["json-file", "loki:latest"], "loki")
    assert _has(["grafana/loki-docker-driver:latest"], "grafana/loki-docker-driver")
    assert not _has(["loki:2.9"], "loki")
    assert not _has(["loki:latest"], "loki:2.9")


def test_only_what_a_service_uses_needs_its_driver(tmp_path: Path) -> None:
    """An unused network or volume is not created, so its plugin is not needed."""
    from deployer.docker.support import wanted
    from deployer.manifest import load_manifest

    (tmp_path / "compose.yml").write_text(
        "services:\n  web:\n    image: busybox\n    volumes: [used:/u]\n"
        "networks:\n  spare: {driver: weave}\n"
        "volumes:\n  used: {driver: rexray/ebs}\n  spare: {driver: convoy}\n"
    )
    (tmp_path / "deploy.yml").write_text(
        "app: drivers\ncompose: [compose.yml]\n"
        "environments:\n  production:\n    hosts: [unix:///var/run/docker.sock]\n"
    )
    m = load_manifest(tmp_path / "deploy.yml", "production", {})
    assert [(kind, name) for _, kind, name in wanted(m)] == [("Volume", "rexray/ebs")]
