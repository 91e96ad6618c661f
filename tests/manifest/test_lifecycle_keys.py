"""post_start and pre_stop hooks, label_file, use_api_socket and a network's priority: read
as Docker Compose v2 reads them (its own `config` is the referee), refused where the safety
policy or the engine says so (located), and a service without them keeps its config hash."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from deployer.errors import InvalidInput
from deployer.manifest import check_manifest, load_manifest
from deployer.manifest.model import Hook, NetworkAttachment, Service
from deployer.targets import check_engine_api
from tests import composev2

COMPOSE = """\
services:
  web:
    image: registry.example.com/shop/web:1.0
    labels: {tier: front, team: shop}
    label_file: [./labels/base.env, ./labels/prod.env]
    use_api_socket: true
    post_start:
      - command: ./warm-up --fast
        user: www-data
        working_dir: /srv
        environment: {MODE: warm}
      - command: [sh, -c, "echo started"]
        privileged: true
    pre_stop:
      - command: ["/bin/drain", "--wait", "5"]
        environment: ["GRACE=5"]
    networks:
      front: {}
      back: {priority: 100}
      admin: {priority: 10}
networks:
  front: {}
  back: {}
  admin: {}
"""
DEPLOY = """\
app: shop
compose: [docker-compose.yml]
environments:
  production: {}
  cluster: {engine: swarm}
policy:
  allow: [docker-socket, privileged]
"""


def project(tmp_path: Path, compose: str = COMPOSE, deploy: str = DEPLOY) -> Path:
    (tmp_path / "labels").mkdir(exist_ok=True)
    (tmp_path / "labels" / "base.env").write_text(
        "# the labels every environment has\nowner=shop\ntier=back\nsite=${owner}-site\n"
    )
    (tmp_path / "labels" / "prod.env").write_text("stage=prod\nowner=shop-team\n")
    (tmp_path / "docker-compose.yml").write_text(compose)
    (tmp_path / "deploy.yml").write_text(deploy)
    return tmp_path / "deploy.yml"


def test_the_keys_are_read_as_docker_compose_reads_them(tmp_path: Path) -> None:
    web = load_manifest(project(tmp_path), "production", {}).service("web")
    assert web.post_start == (
        Hook(("./warm-up", "--fast"), "www-data", False, "/srv", (("MODE", "warm"),)),
        Hook(("sh", "-c", "echo started"), privileged=True),
    )
    assert web.pre_stop == (Hook(("/bin/drain", "--wait", "5"), environment=(("GRACE", "5"),)),)
    # the files in order, each over the ones before; `labels:` win; ${owner} is a label above
    assert dict(web.labels) == {
        "owner": "shop-team",
        "site": "shop-site",
        "stage": "prod",
        "team": "shop",
        "tier": "front",
    }
    assert web.use_api_socket is True
    assert [(a.name, a.priority) for a in web.networks] == [
        ("front", 0),
        ("back", 100),
        ("admin", 10),
    ]


def test_docker_compose_config_reads_the_same_values(tmp_path: Path) -> None:
    web = load_manifest(project(tmp_path), "production", {}).service("web")
    theirs = composev2.config_services(tmp_path)["web"]
    assert dict(web.labels) == theirs["labels"]
    for key in ("post_start", "pre_stop"):
        hooks = [
            Hook(
                tuple(h["command"]),
                h.get("user"),
                h.get("privileged", False),
                h.get("working_dir"),
                tuple(sorted(h.get("environment", {}).items())),
            )
            for h in theirs[key]
        ]
        assert list(getattr(web, key)) == hooks, key
    assert theirs["use_api_socket"] is True
    assert {a.name: a.priority for a in web.networks} == {
        n: (spec or {}).get("priority", 0) for n, spec in theirs["networks"].items()
    }


def problems(
    tmp_path: Path, compose: str, deploy: str = DEPLOY, env: str = "production"
) -> list[Any]:
    report = check_manifest(project(tmp_path, compose, deploy), env, {})
    return list(report.problems)


def test_a_privileged_hook_needs_the_entry_a_privileged_container_needs(tmp_path: Path) -> None:
    deploy = DEPLOY.replace("[docker-socket, privileged]", "[docker-socket]")
    (p,) = problems(tmp_path, COMPOSE, deploy)
    assert (p.path, p.line) == ("services.web.post_start[1].privileged", 13)
    assert "privileged: true in a hook is refused by the safety policy" in p.message
    assert '"privileged"' in (p.fix or "")


def test_use_api_socket_needs_the_entry_a_bind_of_the_socket_needs(tmp_path: Path) -> None:
    deploy = DEPLOY.replace("[docker-socket, privileged]", "[privileged]")
    (p,) = problems(tmp_path, COMPOSE, deploy)
    assert (p.path, p.line) == ("services.web.use_api_socket", 6)
    assert "use_api_socket: true is refused by the safety policy" in p.message
    assert "/var/run/docker.sock" in p.message and '"docker-socket"' in (p.fix or "")


def test_swarm_mode_refuses_the_hooks_and_the_api_socket_at_their_keys(tmp_path: Path) -> None:
    found = {(p.path, p.line) for p in problems(tmp_path, COMPOSE, env="cluster")}
    assert found == {
        ("services.web.post_start", 7),
        ("services.web.pre_stop", 14),
        ("services.web.use_api_socket", 6),
    }
    messages = " ".join(p.message for p in problems(tmp_path, COMPOSE, env="cluster"))
    assert "Swarm runs no lifecycle hooks" in messages


def test_gw_priority_is_refused_on_an_engine_older_than_it_needs(tmp_path: Path) -> None:
    """Read, and refused by an engine older than API 1.48 (Docker Engine 28.0), naming it
    (tests/docker/test_network_mac_gw.py: on the real engine, beside compose)."""
    compose = COMPOSE.replace("admin: {priority: 10}", "admin: {priority: 10, gw_priority: 1}")
    assert problems(tmp_path, compose) == []
    m = load_manifest(project(tmp_path, compose, DEPLOY), "production", {})
    (admin,) = [a for a in m.service("web").networks if a.name == "admin"]
    assert admin.gw_priority == 1
    check_engine_api(m, [("h1", "1.48")])
    with pytest.raises(InvalidInput) as e:
        check_engine_api(m, [("h1", "1.47")])
    assert "services.web.networks.admin.gw_priority" in str(e.value)
    assert "Docker API 1.48" in str(e.value) and "Docker Engine 28.0" in str(e.value)


def test_a_label_file_out_of_the_checkout_or_missing_is_refused_at_its_line(
    tmp_path: Path,
) -> None:
    top = tmp_path / "repo"
    top.mkdir()
    (top / ".git").mkdir()
    (tmp_path / "outside.env").write_text("leak=1\n")
    compose = COMPOSE.replace(
        "./labels/prod.env]", "./labels/prod.env, ../outside.env, ./nope.env]"
    )
    found = problems(top, compose)
    assert [(p.path, p.line) for p in found] == [
        ("services.web.label_file[2]", 5),
        ("services.web.label_file[3]", 5),
    ]
    assert "outside the repository checkout" in found[0].message
    assert 'label_file "./nope.env" not found' in found[1].message


def test_a_reserved_label_in_a_label_file_is_refused(tmp_path: Path) -> None:
    project(tmp_path)
    (tmp_path / "labels" / "prod.env").write_text("io.deployer.app=other\n")
    (p,) = check_manifest(tmp_path / "deploy.yml", "production", {}).problems
    assert p.path == "services.web.label_file" and "reserves" in p.message


def test_a_service_without_the_keys_keeps_its_config_hash() -> None:
    plain = Service(
        "web",
        "r/web:1",
        networks=(NetworkAttachment("front", aliases=("a",)),),
        labels=(("k", "v"),),
    )
    assert not {"post_start", "pre_stop", "use_api_socket"} & set(plain.config_parts())
    assert plain.config_hash() == "8aca23d62f266566"  # as the release before these keys
    hooked = Service("web", "r/web:1", post_start=(Hook(("true",)),))
    assert set(hooked.config_parts()) == {"post_start"}
    other = Service("web", "r/web:1", post_start=(Hook(("true",), user="1000"),))
    assert [k for k, v in other.config_parts().items() if hooked.config_parts()[k] != v] == [
        "post_start"
    ]
    secret = Service("web", "r/web:1", pre_stop=(Hook(("true",), environment=(("K", "v"),)),))
    assert secret.secret_parts() == {"pre_stop"}
    moved = replace(plain, networks=(NetworkAttachment("front", ("a",), priority=5),))
    assert [k for k, v in moved.config_parts().items() if plain.config_parts()[k] != v] == [
        "networks"
    ]
