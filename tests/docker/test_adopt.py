"""Adopting an app Debian's docker-compose (1.29) started, on the real engine.

The compose files in compose_fixtures/ have the shapes of public examples (web + db +
cache + worker; the voting app) with healthchecks, env files, named volumes and custom
networks. Each test copies one, starts it with `docker-compose up -d` under a unique
project name, then plans and deploys it with the deployer: nothing changed recreates
nothing, a changed image replaces only its service (volume data kept), and
`docker-compose ps` still lists every service afterwards.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import docker
import pytest

from deployer import labels as L
from deployer.docker import adopt
from deployer.docker.host import DockerHost
from deployer.manifest import load_manifest
from deployer.manifest.model import (
    Healthcheck,
    Logging,
    Manifest,
    Mount,
    NetworkAttachment,
    Port,
    Service,
)
from deployer.plan import Action
from deployer.report.plan import action_text
from tests.docker.compose_app import ENV, actions, deploy, exec_out, plan_of
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent / "compose_fixtures"


@dataclass
class ComposeApp:
    """A copy of a fixture directory, run by docker-compose as project ``project``."""

    project: str
    path: Path
    files: tuple[str, ...]
    env: dict[str, str]

    def write_env(self, **changes: str) -> None:
        self.env.update(changes)
        text = "".join(f"{k}={v}\n" for k, v in sorted(self.env.items()))
        (self.path / ".env").write_text(text)

    def compose(self, *args: str) -> str:
        cmd = ["docker-compose", "-p", self.project, "--project-directory", str(self.path)]
        for f in self.files:
            cmd += ["-f", str(self.path / f)]
        done = subprocess.run(
            [*cmd, *args], check=False, capture_output=True, text=True, timeout=180, cwd=self.path
        )
        assert done.returncode == 0, f"docker-compose {' '.join(args)}: {done.stderr}"
        return done.stdout

    def manifest(self) -> Manifest:
        return load_manifest(self.path / "deploy.yml", ENV, {})

    def ids(self, engine: docker.DockerClient) -> dict[str, str]:
        """service → id of its running container(s) in the project (compose's or ours)."""
        out: dict[str, str] = {}
        for c in engine.api.containers(filters={"label": f"{L.COMPOSE_PROJECT}={self.project}"}):
            service = c["Labels"][L.COMPOSE_SERVICE]
            assert service not in out, f"two running containers for {service}"
            out[service] = c["Id"]
        return out


def copy_fixture(app: str, tmp_path: Path, fixture: str, files: tuple[str, ...], wait: str) -> Path:
    """The fixture's directory copied, with a deploy.yml of ``files`` (``wait``: the
    health timeout)."""
    path = tmp_path / fixture
    shutil.copytree(FIXTURES / fixture, path)
    (path / "deploy.yml").write_text(
        f"app: {app}\n"
        f"compose: [{', '.join(files)}]\n"
        f"environments:\n  {ENV}: {{}}\n"
        f"rollout:\n  health_timeout: {wait}\n  healthy_after: 1s\n  drain: 0.2s\n"
    )
    return path


App = TypeVar("App", bound=ComposeApp)


def up(ca: App, testenv: TestEnv, *args: str, **env: str) -> Iterator[App]:
    """``ca`` started with `up -d <args>` on the v1 images, and taken down afterwards."""
    ca.write_env(
        COMPOSE_PROJECT_NAME=ca.project,
        WEB_IMAGE=testenv.image_v1,
        BASE_IMAGE=testenv.image_base,
        **env,
    )
    try:
        ca.compose("up", "-d", *args)
        yield ca
    finally:
        # what compose made (containers, networks, volumes); the app fixture removes the rest
        ca.compose("down", "-v", "--timeout", "1")


def start(
    app: str,
    testenv: TestEnv,
    tmp_path: Path,
    fixture: str,
    files: tuple[str, ...],
    **env: str,
) -> Iterator[ComposeApp]:
    path = copy_fixture(app, tmp_path, fixture, files, "30s")
    yield from up(ComposeApp(app, path, files, {}), testenv, **env)


@pytest.fixture
def shop(app: str, testenv: TestEnv, tmp_path: Path) -> Iterator[ComposeApp]:
    yield from start(app, testenv, tmp_path, "shop", ("docker-compose.yml",))


@pytest.fixture
def voting(app: str, testenv: TestEnv, tmp_path: Path) -> Iterator[ComposeApp]:
    yield from start(
        app, testenv, tmp_path, "voting", ("docker-compose.yml", "docker-compose.prod.yml")
    )


def test_an_unchanged_compose_app_is_adopted_without_recreating_anything(
    shop: ComposeApp, h1: DockerHost, engine: docker.DockerClient
) -> None:
    """First, on the same compose start, the two checks that change nothing on the host
    (asserted): one `up -d` of the shop instead of three."""
    before = shop.ids(engine)
    assert sorted(before) == ["cache", "db", "web", "worker"]
    each_changed_key_of_a_service_is_named_against_compose_s_container(shop, engine)
    a_changed_setting_in_the_compose_file_replaces_that_service_naming_the_key(shop, h1, engine)
    assert shop.ids(engine) == before
    m = shop.manifest()
    assert m.compose_project == shop.project

    plan = deploy(h1, m).plan

    assert actions(plan) == {
        name: ("unchanged", ("up to date",)) for name in ("cache", "db", "web", "worker")
    }
    step = plan.hosts[0].step("web")
    assert step.adopted and action_text(step) == "unchanged (adopted from compose)"
    assert shop.ids(engine) == before  # nothing recreated


def replace_web_keeping_data(
    shop: ComposeApp, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> dict[str, str]:
    """A new image of web deployed over the shop compose started: web alone is replaced,
    its new container serves v2 and reads what worker wrote to their named volume.
    The containers by service afterwards."""
    before = shop.ids(engine)
    exec_out(engine, before["worker"], "sh", "-c", "echo kept > /uploads/f")
    shop.write_env(WEB_IMAGE=testenv.image_v2)

    plan = deploy(h1, shop.manifest()).plan

    got = actions(plan)
    assert got["web"] == ("replace", ("new image digest",))
    assert {k: v[0] for k, v in got.items() if k != "web"} == dict.fromkeys(
        ("cache", "db", "worker"), "unchanged"
    )
    after = shop.ids(engine)
    assert sorted(after) == sorted(before) == ["cache", "db", "web", "worker"]
    assert [k for k in sorted(before) if after[k] != before[k]] == ["web"]
    new = after["web"]
    assert exec_out(engine, new, "wget", "-q", "-O", "-", "http://127.0.0.1:8080/version") == "v2"
    assert exec_out(engine, new, "cat", "/srv/uploads/f") == "kept"  # the same named volume
    return after


def test_a_changed_image_replaces_only_its_service_and_keeps_volume_data(
    shop: ComposeApp, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    after = replace_web_keeping_data(shop, h1, engine, testenv)
    new = after["web"]
    nets = engine.api.inspect_container(new)["NetworkSettings"]["Networks"]
    assert sorted(nets) == [f"{shop.project}_back", f"{shop.project}_front"]  # compose's

    # docker-compose still lists every service, running, the new web among them
    listed = set(shop.compose("ps", "-q").split())
    assert set(after.values()) <= listed
    running = shop.compose("ps", "--services", "--filter", "status=running").split()
    assert sorted(running) == ["cache", "db", "web", "worker"]

    # and the next plan sees nothing to do
    plan, _ = plan_of(h1, shop.manifest())
    assert not plan.changes, actions(plan)

    # a team can go back: compose takes the services over again
    shop.compose("up", "-d")
    running = shop.compose("ps", "--services", "--filter", "status=running").split()
    assert sorted(running) == ["cache", "db", "web", "worker"]
    web_now = shop.ids(engine)["web"]
    assert exec_out(engine, web_now, "cat", "/srv/uploads/f") == "kept"


def a_changed_setting_in_the_compose_file_replaces_that_service_naming_the_key(
    shop: ComposeApp, h1: DockerHost, engine: docker.DockerClient
) -> None:
    """Planned only (the file is put back afterwards)."""
    before = shop.ids(engine)
    env_file = shop.path / "worker.env"
    original = env_file.read_text()
    env_file.write_text(original + "CONCURRENCY=4\n")
    try:
        plan, _ = plan_of(h1, shop.manifest())
    finally:
        env_file.write_text(original)

    got = actions(plan)
    assert got["worker"] == ("replace", ("config changed: environment",))
    assert {k: v[0] for k, v in got.items() if k != "worker"} == dict.fromkeys(
        ("cache", "db", "web"), "unchanged"
    )
    assert shop.ids(engine) == before


def test_the_voting_app_with_an_override_file_is_adopted_unchanged(
    voting: ComposeApp, h1: DockerHost, engine: docker.DockerClient
) -> None:
    before = voting.ids(engine)
    m = voting.manifest()

    plan = deploy(h1, m).plan

    assert {k: v[0] for k, v in actions(plan).items()} == dict.fromkeys(sorted(before), "unchanged")
    assert voting.ids(engine) == before
    assert Action.UNCHANGED in {s.action for s in plan.hosts[0].steps}


def each_changed_key_of_a_service_is_named_against_compose_s_container(
    shop: ComposeApp, engine: docker.DockerClient
) -> None:
    m = shop.manifest()
    ids = shop.ids(engine)
    info = engine.api.info()
    for name in ("web", "db", "worker", "cache"):
        svc = m.service(name)
        container = engine.api.inspect_container(ids[name])
        image = engine.api.inspect_image(container["Image"])

        def diff(
            changed: Service, c: dict[str, Any] = container, i: dict[str, Any] = image
        ) -> list[str]:
            parts = adopt.config_parts(changed, c, i, shop.project, info["LoggingDriver"])
            return adopt.differing(parts, changed)

        assert diff(svc) == [], name
        assert (
            adopt.config_hash(
                adopt.config_parts(svc, container, image, shop.project, "json-file"), svc
            )
            == svc.config_hash()
        )
        assert diff(replace(svc, command=("sleep", "1"))) == ["command"]
        assert diff(replace(svc, environment=(*svc.environment, ("NEW", "1")))) == ["environment"]
        assert diff(replace(svc, ports=(*svc.ports, Port(9999)))) == ["expose", "ports"]
        assert diff(replace(svc, volumes=(*svc.volumes, Mount("volume", "/x", "extra")))) == [
            "volumes"
        ]
        att = svc.networks[0]
        nets = (replace(att, aliases=(*att.aliases, "other")), *svc.networks[1:])
        assert diff(replace(svc, networks=nets)) == ["networks"]
        assert diff(replace(svc, networks=(*svc.networks[:1], NetworkAttachment("x")))) == [
            "networks"
        ]
        assert diff(replace(svc, healthcheck=Healthcheck(test=("CMD", "false")))) == ["healthcheck"]
        assert diff(replace(svc, labels=(*svc.labels, ("a", "b")))) == ["labels"]
        assert diff(replace(svc, restart="always" if svc.restart != "always" else "no")) == [
            "restart"
        ]
        assert diff(replace(svc, user="nobody")) == ["user"]
        assert diff(replace(svc, working_dir="/elsewhere")) == ["working_dir"]
        assert diff(replace(svc, init=True)) == ["init"]
        assert diff(replace(svc, read_only=True)) == ["read_only"]
        assert diff(replace(svc, tmpfs=("/run",))) == ["tmpfs"]
        assert diff(replace(svc, extra_hosts=("h:10.0.0.1",))) == ["extra_hosts"]
        assert diff(replace(svc, stop_signal="SIGINT")) == ["stop_signal"]
        assert diff(replace(svc, stop_grace_period=7.0)) == ["stop_grace_period"]
        assert diff(replace(svc, logging=Logging("none"))) == ["logging"]
        assert diff(replace(svc, cpus=0.5)) == ["cpus"]
        assert diff(replace(svc, memory=64 * 1024 * 1024)) == ["memory"]
        assert diff(replace(svc, cap_add=("NET_ADMIN",))) == ["cap_add"]
        # a compose key the manifest has is compared as that key
        tty = {**container, "Config": {**container["Config"], "Tty": True}}
        assert diff(svc, tty) == ["tty"]
        cpuset = {**container, "HostConfig": {**container["HostConfig"], "CpusetCpus": "0"}}
        assert diff(svc, cpuset) == ["cpuset"]
        # a setting the manifest cannot express makes the container differ
        mems = {**container, "HostConfig": {**container["HostConfig"], "CpusetMems": "0"}}
        assert diff(svc, mems) == [adopt.EXTRA]


@pytest.fixture
def blog(app: str, testenv: TestEnv, tmp_path: Path) -> Iterator[ComposeApp]:
    # a host directory, bound by its absolute path outside the project: an absolute path
    # inside the project directory is the checkout's own file (./content), which a deploy
    # ships to the host instead of binding it (docs/manifest.md)
    content = tmp_path / "host" / "content"
    shutil.copytree(FIXTURES / "blog" / "content", content)
    yield from start(
        app, testenv, tmp_path, "blog", ("docker-compose.yml",), CONTENT_DIR=str(content)
    )


def test_a_service_with_most_container_settings_is_adopted_unchanged(
    blog: ComposeApp, h1: DockerHost, engine: docker.DockerClient
) -> None:
    before = blog.ids(engine)
    m = blog.manifest()
    plan, observed = plan_of(h1, m)
    (got,) = [c for c in observed[h1.name].containers if c.service == "app"]
    assert got.adopted_from == "compose"
    assert got.config_parts == m.service("app").full_config_parts()
    inspect = engine.api.inspect_container(before["app"])
    assert inspect["HostConfig"]["ReadonlyRootfs"] and inspect["Config"]["User"] == "1000:1000"
    assert actions(plan) == {
        "app": ("unchanged", ("up to date",)),
        "static": ("unchanged", ("up to date",)),
    }
    assert blog.ids(engine) == before
