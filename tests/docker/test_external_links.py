"""``external_links`` (a container outside the app, reached by an alias), on the real engine
with Docker Compose v2 as the peer. compose gives the links to the engine in each network
endpoint's Links: on a user network the alias resolves to the container when it is on that
network too (the engine's embedded DNS; on the default bridge only, it does not resolve).
The deployer gives them the same way: compose's container and the deployer's carry the
same links, the app compose started is adopted with nothing to do, and the deployer's
replacement reaches the container at the alias (its healthcheck does)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.cli import main
from deployer.docker.host import DockerHost
from deployer.errors import EXIT_INVALID, InvalidInput
from deployer.manifest import load_manifest
from tests.conftest import Cleanup
from tests.docker.compose_app import ENV, ComposeProject, actions, compose_up, deploy, plan_of
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

COMPOSE = """\
services:
  web:
    image: ${WEB_IMAGE}
    init: true
    environment: {PORT: "8081"}
    networks: [default, shared]
    external_links: ["EXT:extdb", "EXT"]
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O /dev/null http://extdb:8080/version"]
      interval: 1s
      retries: 3
networks:
  shared: {external: true, name: NET}
"""


@pytest.fixture
def outside(app: str, engine: docker.DockerClient, testenv: TestEnv) -> Iterator[str]:
    """A container of no app on a network of no app: (its name)."""
    net = engine.networks.create(f"{app}-shared")
    c = engine.containers.run(
        testenv.image_v1, name=f"{app}-ext", network=net.name, detach=True, init=True
    )
    try:
        yield str(c.name)
    finally:
        c.remove(force=True)
        for leftover in engine.api.containers(all=True, filters={"network": net.name}):
            engine.api.remove_container(leftover["Id"], force=True)
        net.remove()


@pytest.fixture
def linked(app: str, outside: str, testenv: TestEnv, tmp_path: Path) -> Iterator[ComposeProject]:
    compose = COMPOSE.replace("EXT", outside).replace("NET", f"{app}-shared")
    variables = {"WEB_IMAGE": testenv.image_v1}
    with compose_up(app, tmp_path, testenv.engine_host, compose, variables) as project:
        yield project


def links(engine: docker.DockerClient, cid: str) -> dict[str, list[str]]:
    """The links of each network endpoint of the container."""
    nets = engine.api.inspect_container(cid)["NetworkSettings"]["Networks"]
    return {name: sorted(ep.get("Links") or []) for name, ep in nets.items()}


def test_external_links_as_compose_gives_them(
    linked: ComposeProject,
    outside: str,
    h1: DockerHost,
    engine: docker.DockerClient,
    testenv: TestEnv,
) -> None:
    label = [f"{L.COMPOSE_PROJECT}={linked.project}", f"{L.COMPOSE_SERVICE}=web"]
    (theirs,) = [c["Id"] for c in engine.api.containers(filters={"label": label})]
    want = sorted([f"{outside}:extdb", f"{outside}:{outside}"])
    compose_links = links(engine, theirs)
    assert len(compose_links) == 2 and all(v == want for v in compose_links.values())

    m = linked.manifest()
    assert m.service("web").external_links == (f"{outside}:extdb", f"{outside}:{outside}")
    plan, _ = plan_of(h1, m)
    assert actions(plan) == {"web": ("unchanged", ("up to date",))}

    linked.set_env(WEB_IMAGE=testenv.image_v2)
    deploy(h1, linked.manifest())  # health-gated: the new container reaches extdb
    (ours,) = [c["Id"] for c in engine.api.containers(filters={"label": label})]
    assert ours != theirs
    assert links(engine, ours) == compose_links
    plan, _ = plan_of(h1, linked.manifest())
    assert not plan.changes, actions(plan)


def test_legacy_links_on_the_default_bridge_need_the_policy(app: str, tmp_path: Path) -> None:
    """On the default bridge the engine copies the linked container's environment into
    the linking one (``ALIAS_ENV_*``): another app's secrets."""
    text = (
        f"app: {app}\nenvironments:\n  {ENV}: {{}}\n"
        "services:\n"
        "  web:\n    image: busybox\n    network_mode: bridge\n"
        "    external_links: [other-db:db]\n"
    )
    (tmp_path / "deploy.yml").write_text(text)
    with pytest.raises(InvalidInput) as e:
        load_manifest(tmp_path / "deploy.yml", ENV, {})
    assert "deploy.yml:8" in str(e.value) and "foreign-container" in str(e.value), e.value
    (tmp_path / "deploy.yml").write_text(text + "policy: {allow: [foreign-container]}\n")
    m = load_manifest(tmp_path / "deploy.yml", ENV, {})
    assert m.service("web").external_links == ("other-db:db",)


def test_legacy_links_through_networks_on_the_default_bridge_need_the_policy(
    app: str,
    cleanup: Cleanup,
    engine: docker.DockerClient,
    testenv: TestEnv,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The default bridge joined through ``networks:`` (``name: bridge``), not
    ``network_mode: bridge``: the links are legacy ones all the same. Before, the deploy
    went ahead: the new container started with the other container's ``V_ENV_SECRET`` (it
    wrote its environment to a directory of the host), then the alias step failed."""
    other = engine.containers.run(
        testenv.image_v1,
        name=f"{app}-other",
        detach=True,
        environment={"SECRET": "hunter2"},
        labels={L.APP: f"other{app[-6:]}", L.ENVIRONMENT: "prod"},
    )
    cleanup.later(lambda: other.remove(force=True))
    loot = tmp_path / "loot"
    loot.mkdir(mode=0o777)
    loot.chmod(0o777)
    for var in ("CI_ENVIRONMENT_NAME", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_HOST", testenv.engine_host)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deploy.yml").write_text(
        f"app: {app}\nenvironments:\n  prod: {{}}\nservices:\n  web:\n"
        f"    image: {testenv.image_v1}\n"
        f"    external_links: ['{other.name}:v']\n"
        "    command: [sh, -c, 'env > /loot/env; exec /web.sh']\n"
        f"    volumes: ['{loot}:/loot']\n"
        "    deploy: {update_config: {order: start-first}}\n"
        "networks:\n  default: {external: true, name: bridge}\n"
    )
    out = io.StringIO()
    code = main(["deploy", "-f", str(tmp_path / "deploy.yml")], out=out)
    said = out.getvalue() + capsys.readouterr().err
    assert code == EXIT_INVALID, said
    assert "deploy.yml:7:5: services.web.external_links:" in said, said
    assert "legacy links" in said and '"foreign-container"' in said, said
    assert not (loot / "env").exists(), (loot / "env").read_text()
    assert engine.containers.list(all=True, filters={"label": f"{L.APP}={app}"}) == []


BRIDGE_COMPOSE = """\
services:
  web:
    image: ${WEB_IMAGE}
    init: true
    environment: {PORT: "8081"}
    network_mode: bridge
    external_links: ["${EXT}:extdb", "${EXT}:${ALIAS}"]
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O /dev/null http://extdb:8080/version"]
      interval: 1s
      retries: 3
"""


def legacy_links(engine: docker.DockerClient, cid: str) -> set[tuple[str, str]]:
    """The container's legacy links as (linked container, alias): the engine shows them
    in HostConfig.Links as ``/LINKED:/THIS/ALIAS``."""
    host_config = engine.api.inspect_container(cid)["HostConfig"]
    out = set()
    for link in host_config.get("Links") or []:
        linked, _, path = str(link).partition(":")
        assert linked.startswith("/") and path.startswith("/"), link
        out.add((linked[1:], path.rsplit("/", 1)[-1]))
    return out


@pytest.fixture
def bridged(
    app: str, cleanup: Cleanup, engine: docker.DockerClient, testenv: TestEnv, tmp_path: Path
) -> Iterator[ComposeProject]:
    """compose's app on the default bridge (``network_mode: bridge``), linked to a
    container of no app on the default bridge too, as ``extdb`` and ``ALIAS``."""
    other = engine.containers.run(
        testenv.image_v1, name=f"{app}-ext", detach=True, init=True, labels={"x": app}
    )
    cleanup.later(lambda: other.remove(force=True))
    variables = {"WEB_IMAGE": testenv.image_v1, "EXT": str(other.name), "ALIAS": "first"}
    with compose_up(app, tmp_path, testenv.engine_host, BRIDGE_COMPOSE, variables) as project:
        with (tmp_path / "deploy.yml").open("a") as f:
            f.write("policy: {allow: [foreign-container]}\n")
        yield project


def test_legacy_links_on_the_default_bridge_are_adopted_and_compared(
    bridged: ComposeProject, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    """compose's container on the default bridge (its health check reached ``extdb``
    through the legacy link) is adopted unchanged: the links the engine keeps in
    HostConfig.Links are compared, not taken for settings outside the manifest. Before,
    the first deploy replaced it. A changed alias is a change of ``external_links``; the
    deployer's own container gets the links compose gave, and plans unchanged after."""
    other = f"{bridged.project}-ext"
    label = [f"{L.COMPOSE_PROJECT}={bridged.project}", f"{L.COMPOSE_SERVICE}=web"]
    (theirs,) = [c["Id"] for c in engine.api.containers(filters={"label": label})]
    compose_links = legacy_links(engine, theirs)
    assert compose_links == {(other, "extdb"), (other, "first")}

    m = bridged.manifest()
    assert m.service("web").network_mode == "bridge"
    plan, _ = plan_of(h1, m)
    assert actions(plan) == {"web": ("unchanged", ("up to date",))}

    variables = {"WEB_IMAGE": testenv.image_v1, "EXT": other, "ALIAS": "first"}
    bridged.set_env(**{**variables, "ALIAS": "second"})
    plan, _ = plan_of(h1, bridged.manifest())
    assert actions(plan) == {"web": ("replace", ("config changed: external_links",))}
    bridged.set_env(**{**variables, "EXT": f"{other}-2"})  # another container
    plan, _ = plan_of(h1, bridged.manifest())
    assert actions(plan) == {"web": ("replace", ("config changed: external_links",))}

    bridged.set_env(**{**variables, "WEB_IMAGE": testenv.image_v2})
    deploy(h1, bridged.manifest())  # health-gated: the new container reaches extdb
    (ours,) = [c["Id"] for c in engine.api.containers(filters={"label": label})]
    assert ours != theirs
    assert legacy_links(engine, ours) == compose_links
    assert engine.api.inspect_container(ours)["HostConfig"]["NetworkMode"] == "bridge"
    plan, _ = plan_of(h1, bridged.manifest())
    assert not plan.changes, actions(plan)
