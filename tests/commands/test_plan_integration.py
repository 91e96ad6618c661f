"""Plans against the real engines and registry, over unix, tcp+TLS and ssh.

"Already deployed" states are made by starting labelled containers directly through the
Docker SDK (tests.testenv.run_deployed), as the deployer would have left them.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from deployer.cli import main
from deployer.errors import EXIT_CHANGES, EXIT_OK
from deployer.manifest.model import Environment, Manifest, Service
from deployer.plan import Action
from deployer.targets import prepare
from tests.testenv import TestEnv, push_as, repo_digest, run_compose_like, run_deployed

pytestmark = pytest.mark.integration

ENV = "prod"


@dataclass(frozen=True)
class Target:
    kind: str
    url: str
    environ: dict[str, str]
    engine: docker.DockerClient  # the engine behind ``url``, to arrange state on


@pytest.fixture(params=["unix", "tls", "ssh"])
def target(
    request: pytest.FixtureRequest,
    testenv: TestEnv,
    engine: docker.DockerClient,
    engine2: docker.DockerClient,
) -> Target:
    if request.param == "unix":
        return Target("unix", testenv.engine_host, {}, engine)
    if request.param == "tls":
        return Target("tls", testenv.tls_host, testenv.tls_environ(as_text=True), engine2)
    return Target("ssh", testenv.ssh_host, testenv.ssh_environ(), engine)


def manifest(app: str, target: Target, *services: Service) -> Manifest:
    return Manifest(
        path="deploy.yml",
        app=app,
        environment=Environment(ENV, hosts=(target.url,)),
        services=services,
    )


def deploy_state(target: Target, app: str, service: Service, digest: str, replicas: int = 1,
                 config: Service | None = None) -> list[str]:
    """Containers for ``service`` as a deploy of ``config`` (default: itself) left them."""
    c = config or service
    return [
        run_deployed(
            target.engine,
            app=app,
            environment=ENV,
            service=service.name,
            replica=r,
            digest=digest,
            config_hash=c.config_hash(),
            config_parts=c.config_parts(),
        ).id
        for r in range(1, replicas + 1)
    ]


@pytest.fixture
def v1(testenv: TestEnv, engine: docker.DockerClient) -> str:
    return repo_digest(engine, testenv.image_v1)


def containers_of(target: Target, app: str) -> list[str]:
    return sorted(
        c.id for c in target.engine.containers.list(
            all=True, filters={"label": f"io.deployer.app={app}"})
    )


def test_first_deploy(target: Target, testenv: TestEnv, app: str, v1: str) -> None:
    m = manifest(app, target, Service("web", testenv.image_v1, replicas=2))
    with prepare(m, target.environ) as p:
        step = p.plan.hosts[0].step("web")
        assert p.plan.hosts[0].host == target.url
    assert step.action is Action.CREATE
    assert step.new_digest == v1 and step.old_digest is None
    assert step.replicas_after == 2
    assert containers_of(target, app) == []  # planning changes nothing


def test_nothing_changed(target: Target, testenv: TestEnv, app: str, v1: str) -> None:
    web = Service("web", testenv.image_v1)
    deploy_state(target, app, web, v1)
    with prepare(manifest(app, target, web), target.environ) as p:
        assert not p.plan.changes
        step = p.plan.hosts[0].step("web")
    assert step.action is Action.UNCHANGED
    assert step.old_digest == step.new_digest == v1


def test_new_digest_same_tag(
    target: Target, testenv: TestEnv, engine: docker.DockerClient, app: str
) -> None:
    ref = f"{testenv.registry}/testapp/web:{app}"
    before = push_as(engine, testenv.image_v1, ref)
    web = Service("web", ref)
    deploy_state(target, app, web, before)
    with prepare(manifest(app, target, web), target.environ) as p:
        assert p.plan.hosts[0].step("web").action is Action.UNCHANGED
    after = push_as(engine, testenv.image_v2, ref)  # same tag, new image
    assert after != before
    with prepare(manifest(app, target, web), target.environ) as p:
        step = p.plan.hosts[0].step("web")
    assert step.action is Action.REPLACE
    assert step.reasons == ("new image digest",)
    assert (step.old_digest, step.new_digest) == (before, after)


def test_config_changed(target: Target, testenv: TestEnv, app: str, v1: str) -> None:
    old = Service("web", testenv.image_v1, environment=(("TOKEN", "old-secret-value"),))
    new = dataclasses.replace(old, environment=(("TOKEN", "new-secret-value"),))
    ids = deploy_state(target, app, new, v1, config=old)
    with prepare(manifest(app, target, new), target.environ) as p:
        step = p.plan.hosts[0].step("web")
    assert step.action is Action.REPLACE
    assert step.reasons == ("config changed: environment",)
    assert step.replace == tuple(ids)


def test_service_removed(target: Target, testenv: TestEnv, app: str, v1: str) -> None:
    web = Service("web", testenv.image_v1)
    worker = Service("worker", testenv.image_v1)
    deploy_state(target, app, web, v1)
    ids = deploy_state(target, app, worker, v1)
    with prepare(manifest(app, target, web), target.environ) as p:
        plan = p.plan
    assert plan.hosts[0].step("web").action is Action.UNCHANGED
    gone = plan.hosts[0].step("worker")
    assert gone.action is Action.REMOVE and gone.remove == tuple(ids)
    assert gone.reasons == ("no longer in the manifest",)


def test_scale_up_and_down(target: Target, testenv: TestEnv, app: str, v1: str) -> None:
    web = Service("web", testenv.image_v1, replicas=2)
    ids = deploy_state(target, app, web, v1, replicas=2)
    up = dataclasses.replace(web, replicas=3)
    with prepare(manifest(app, target, up), target.environ) as p:
        step = p.plan.hosts[0].step("web")
    assert (step.action, step.replicas_before, step.replicas_after) == (Action.SCALE, 2, 3)
    down = dataclasses.replace(web, replicas=1)
    with prepare(manifest(app, target, down), target.environ) as p:
        step = p.plan.hosts[0].step("web")
    assert (step.action, step.replicas_before, step.replicas_after) == (Action.SCALE, 2, 1)
    assert step.remove == (ids[1],)


def test_kept_containers_of_a_previous_release_are_not_current(
    target: Target, testenv: TestEnv, app: str, v1: str, engine: docker.DockerClient
) -> None:
    web = Service("web", testenv.image_v1)
    v2 = repo_digest(engine, testenv.image_v2)
    deploy_state(target, app, web, v1)
    canonical = f"{app}-{ENV}-web-1"
    run_deployed(target.engine, app=app, environment=ENV, service="web", replica=1, digest=v2,
                 config_hash=web.config_hash(), release="r0", name=f"{canonical}--r0",
                 running=False)
    with prepare(manifest(app, target, web), target.environ) as p:
        assert p.plan.hosts[0].step("web").action is Action.UNCHANGED
        kept = p.hosts[0].kept(app, ENV)
    assert [(k.name, k.image_digest, k.running) for k in kept] == [(f"{canonical}--r0", v2, False)]


def test_compose_containers_are_adopted(
    testenv: TestEnv, engine: docker.DockerClient, app: str, v1: str
) -> None:
    run_compose_like(engine, project=app, service="web", number=1, image=testenv.image_v1)
    web = Service("web", testenv.image_v1)
    m = dataclasses.replace(
        manifest(app, Target("unix", testenv.engine_host, {}, engine), web), compose_project=app
    )
    with prepare(m, {}) as p:
        obs = p.observed[0].containers
        step = p.plan.hosts[0].step("web")
    assert [(c.adopted_from, c.image_digest, c.name) for c in obs] == [
        ("compose", v1, f"{app}-web-1")
    ]
    assert step.action is Action.REPLACE and step.adopted
    # run_compose_like starts it with init, on the default bridge: not what the service says
    assert step.reasons == ("config changed: init, network_mode, networks",)


def test_two_hosts_are_planned_each(
    testenv: TestEnv, engine: docker.DockerClient, app: str, v1: str
) -> None:
    web = Service("web", testenv.image_v1)
    unix = Target("unix", testenv.engine_host, {}, engine)
    deploy_state(unix, app, web, v1)
    m = Manifest(
        path="deploy.yml",
        app=app,
        environment=Environment(ENV, hosts=(testenv.engine_host, testenv.tls_host)),
        services=(web,),
    )
    with prepare(m, testenv.tls_environ()) as p:
        actions = {h.host: h.step("web").action for h in p.plan.hosts}
    assert actions == {testenv.engine_host: Action.UNCHANGED, testenv.tls_host: Action.CREATE}


# --- the command ------------------------------------------------------------------------


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for var in ("DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "DOCKER_TLS_CA_CERT",
                "DOCKER_TLS_CERT", "DOCKER_TLS_KEY", "SSH_PRIVATE_KEY", "SSH_KNOWN_HOSTS",
                "CI_ENVIRONMENT_NAME", "DOCKER_AUTH_CONFIG", "CI_REGISTRY"):
        monkeypatch.delenv(var, raising=False)
    yield monkeypatch


def write_manifest(tmp_path: Path, app: str, image: str, replicas: int = 1,
                   env_value: str = "s3cret-value") -> Path:
    path = tmp_path / "deploy.yml"
    path.write_text(
        f"app: {app}\n"
        "environments:\n"
        f"  {ENV}: {{}}\n"
        "services:\n"
        "  web:\n"
        f"    image: {image}\n"
        "    environment:\n"
        f"      API_TOKEN: {env_value}\n"
        "    deploy:\n"
        f"      replicas: {replicas}\n"
    )
    return path


def test_cli_text_json_markdown_and_detailed_exitcode(
    target: Target, testenv: TestEnv, app: str, v1: str, tmp_path: Path,
    clean_environ: pytest.MonkeyPatch,
) -> None:
    clean_environ.setenv("DOCKER_HOST", target.url)
    for k, v in target.environ.items():
        clean_environ.setenv(k, v)
    path = write_manifest(tmp_path, app, testenv.image_v1)

    out = io.StringIO()
    assert main(["plan", "-f", str(path)], out=out) == EXIT_OK
    text = out.getvalue()
    assert "web" in text and "create" in text and v1.rsplit(":", maxsplit=1)[-1][:12] in text
    assert "s3cret-value" not in text

    out = io.StringIO()
    assert main(["plan", "-f", str(path), "--detailed-exitcode"], out=out) == EXIT_CHANGES

    out = io.StringIO()
    assert main(["plan", "-f", str(path), "--format", "json"], out=out) == EXIT_OK
    data = json.loads(out.getvalue())
    assert data["format"] == "deployer-plan/1"
    assert data["app"] == app and data["environment"] == ENV and data["changes"] is True
    assert data["summary"]["create"] == 1
    step = data["hosts"][0]["steps"][0]
    assert (step["service"], step["action"], step["new_digest"]) == ("web", "create", v1)

    # Once it runs as planned (labelled as the deployer would): no changes, exit 0.
    from deployer.manifest.loader import load_manifest

    web = load_manifest(path, ENV, {}).service("web")
    deploy_state(target, app, web, v1)
    out = io.StringIO()
    code = main(["plan", "-f", str(path), "--format", "markdown", "--detailed-exitcode"], out=out)
    assert code == EXIT_OK, out.getvalue()
    md = out.getvalue()
    assert md.startswith(f"### Deploy plan: `{app}` → `{ENV}`")
    assert "| web | unchanged |" in md.replace(f"| {target.url} ", "")
    assert "No changes" in md

    # A changed secret shows as "config changed: environment", never its value.
    path = write_manifest(tmp_path, app, testenv.image_v1, env_value="an0ther-value")
    out = io.StringIO()
    assert main(["plan", "-f", str(path), "--detailed-exitcode"], out=out) == EXIT_CHANGES
    assert "config changed: environment" in out.getvalue()
    assert "an0ther-value" not in out.getvalue() and "s3cret-value" not in out.getvalue()


def test_cli_services_filter(
    testenv: TestEnv, app: str, tmp_path: Path, clean_environ: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_manifest(tmp_path, app, testenv.image_v1)
    out = io.StringIO()
    assert main(["plan", "-f", str(path), "--services", "web", "--format", "json"], out=out) == 0
    assert [s["service"] for s in json.loads(out.getvalue())["hosts"][0]["steps"]] == ["web"]
    assert main(["plan", "-f", str(path), "--services", "nope"], out=io.StringIO()) == 2
    assert "--services: nope not in" in capsys.readouterr().err


def test_after_a_real_deploy_the_plan_has_no_changes(
    testenv: TestEnv, app: str, tmp_path: Path, clean_environ: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The contract between the rollout's labels and names and what observe reads back.
    clean_environ.setenv("DOCKER_HOST", testenv.engine_host)
    path = write_manifest(tmp_path, app, testenv.image_v1, replicas=2)
    report_dir = tmp_path / "reports"
    report_dir.mkdir()
    code = main(["deploy", "-f", str(path), "--report-dir", str(report_dir)], out=io.StringIO())
    assert code == EXIT_OK, capsys.readouterr().err
    out = io.StringIO()
    assert main(["plan", "-f", str(path), "--detailed-exitcode"], out=out) == EXIT_OK, (
        out.getvalue()
    )
    path = write_manifest(tmp_path, app, testenv.image_v2, replicas=2)
    out = io.StringIO()
    assert main(["plan", "-f", str(path), "--format", "json"], out=out) == EXIT_OK
    step = json.loads(out.getvalue())["hosts"][0]["steps"][0]
    assert (step["action"], step["reasons"]) == ("replace", ["new image digest"])
    assert len(step["replace"]) == 2
