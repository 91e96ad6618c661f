"""load_manifest / check_manifest: environment choice, variable precedence, type casting
of interpolated values, the model built, and secrets kept out of every message."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from deployer.manifest import ManifestError, check_manifest, load_manifest
from deployer.manifest.model import Healthcheck, Mount, Port, RolloutPolicy
from tests.manifest.helpers import CORPUS, ENVIRON, SECRET_DB, SECRET_REGISTRY

VALID = CORPUS / "valid"


def write(tmp_path: Path, text: str, name: str = "deploy.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


TWO_ENVS = """\
app: shop
environments:
  production:
    variables: {TAG: stable, LEVEL: info}
  staging:
    variables: {TAG: edge}
services:
  web:
    image: registry.example.com/shop/web:${TAG}
    environment: {LEVEL: "${LEVEL:-debug}"}
"""


def test_env_chosen_by_argument_then_ci_variable_then_only_one(tmp_path: Path) -> None:
    path = write(tmp_path, TWO_ENVS)
    assert load_manifest(path, "staging", {}).environment.name == "staging"
    m = load_manifest(path, None, {"CI_ENVIRONMENT_NAME": "production"})
    assert m.environment.name == "production"
    assert m.service("web").image.endswith(":stable")
    with pytest.raises(ManifestError) as exc:
        load_manifest(path, None, {})
    assert "production, staging" in exc.value.render()
    assert "--env" in exc.value.render()
    with pytest.raises(ManifestError) as exc:
        load_manifest(path, "prod", {})
    assert "did you mean `production`?" in exc.value.render()


def test_ci_variables_override_the_environments_variables(tmp_path: Path) -> None:
    path = write(tmp_path, TWO_ENVS)
    m = load_manifest(path, "production", {"TAG": "from-ci"})
    assert m.service("web").image.endswith(":from-ci")
    assert m.service("web").env_dict == {"LEVEL": "info"}
    staging = load_manifest(path, "staging", {})
    assert staging.service("web").env_dict == {"LEVEL": "debug"}
    assert dict(staging.environment.variables) == {"TAG": "edge"}


def test_variables_may_use_ci_variables(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        app: shop
        environments:
          production: {variables: {TAG: "v-${CI_COMMIT_SHORT_SHA}"}}
        services:
          web: {image: "registry.example.com/shop/web:${TAG}"}
        """,
    )
    m = load_manifest(path, None, {"CI_COMMIT_SHORT_SHA": "abc"})
    assert m.service("web").image == "registry.example.com/shop/web:v-abc"


def test_other_environments_are_not_interpolated(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        app: shop
        environments:
          production: {hosts: ["ssh://deploy@${PROD_HOST}"]}
          staging: {hosts: ["ssh://deploy@staging.example.com"]}
        services:
          web: {image: "registry.example.com/shop/web:1"}
        """,
    )
    assert load_manifest(path, "staging", {}).environment.hosts == (
        "ssh://deploy@staging.example.com",
    )
    report = check_manifest(path, None, {})  # checks both: production lacks PROD_HOST
    assert report.environments == ("production", "staging")
    assert [p.path for p in report.problems] == ["environments.production.hosts[0]"]


def test_interpolated_values_are_cast_like_compose(tmp_path: Path) -> None:
    m = load_manifest(VALID / "environments_many.yml", "production", ENVIRON)
    assert m.service("web").replicas == 4
    m = load_manifest(VALID / "environments_many.yml", "staging", ENVIRON)
    assert m.service("web").replicas == 2
    assert m.service("web").image == "registry.example.com/shop/web:abc1234"
    assert m.environment.engine == "swarm" and m.environment.allow_insecure_tcp
    bad = write(
        tmp_path,
        """\
        app: shop
        environments: {production: {}}
        services:
          web: {image: "r.io/web:1", deploy: {replicas: "${N}"}}
        """,
    )
    with pytest.raises(ManifestError) as exc:
        load_manifest(bad, None, {"N": "many"})
    assert "services.web.deploy.replicas: expected an integer" in exc.value.render()


def test_the_model_of_every_key() -> None:
    m = load_manifest(VALID / "every_service_key.yml", None, ENVIRON)
    web, worker = m.service("web"), m.service("worker")
    assert web.command == ("bin/server", "--port", "8080", "--name=shop web")
    assert web.env_dict == {
        "FROM_FILE": "file-value",
        "EXPORTED": "quoted value",
        "OVERRIDDEN": "from-manifest",
        "PLAIN": "1",
        "DATABASE_URL": ENVIRON["DATABASE_URL"],
    }
    assert Port(80, 8080, "::1") not in web.ports and Port(443, 9443, "::1") in web.ports
    assert Port(9000, 9001, "127.0.0.1") in web.ports and Port(8443) in web.ports
    assert web.volumes[1] == Mount("bind", "/etc/shop", "/srv/shop/config", True)
    assert web.volumes[3] == Mount("tmpfs", "/run/shop")
    assert web.networks[0].aliases == ("api", "www")
    assert web.healthcheck == Healthcheck(
        ("CMD-SHELL", "curl -fsS http://127.0.0.1:8080/up"), 5.0, 2.0, 3, 90.0, 0.5
    )
    assert web.depends_on == (("worker", "service_healthy"),)
    assert web.memory == 512 * 2**20 and web.cpus == 0.5
    assert web.order == "stop-first" and web.update_config.delay == 10.0
    assert web.stop_grace_period == 30.0 and web.init is True and web.read_only
    assert web.logging is not None and dict(web.logging.options)["max-file"] == "3"
    assert worker.env_dict == {"QUEUE": "default", "RETRIES": "3", "VERBOSE": "true"}
    assert worker.extra_hosts == ("cache.internal:10.0.0.6",)
    assert worker.replicas == 3 and worker.order == "start-first"


def test_the_model_of_top_level_keys() -> None:
    m = load_manifest(VALID / "registry_map_rollout.yml", None, ENVIRON)
    assert m.rollout == RolloutPolicy(120.0, 5, 10.0, 2.0, 3600.0, "25%", 30.0, 300.0)
    (reg,) = m.registries
    assert reg.server == "registry.example.com" and reg.password == SECRET_REGISTRY
    assert SECRET_REGISTRY not in repr(m)
    m = load_manifest(VALID / "registry_list.yml", None, ENVIRON)
    assert [r.password for r in m.registries] == [SECRET_REGISTRY, "unset-locally"]
    assert m.gitlab.require_api and m.gitlab.hold_label == "deploy::hold"
    m = load_manifest(VALID / "tasks_all_keys.yml", None, ENVIRON)
    migrate, warm = m.tasks
    assert migrate.command == ("bin/migrate", "--all") and migrate.timeout == 600.0
    assert warm.when == "after-deploy"
    m = load_manifest(VALID / "top_level_volumes_networks.yml", None, ENVIRON)
    assert [(v.name, v.external) for v in m.volumes] == [
        ("data", False),
        ("shared", True),
        ("plain", False),
    ]
    assert [n.name for n in m.networks if n.internal] == ["back"]
    m = load_manifest(VALID / "policy_allowed.yml", None, ENVIRON)
    assert "docker-socket" in m.policy_allow and m.service("agent").privileged


def test_anchors_and_interpolation_forms() -> None:
    m = load_manifest(VALID / "anchors_and_extensions.yml", None, ENVIRON)
    assert m.service("worker").env_dict == {"LOG_LEVEL": "info", "QUEUE": "mail"}
    assert m.service("web").restart == "always"
    m = load_manifest(VALID / "interpolation_forms.yml", None, ENVIRON)
    web = m.service("web")
    assert web.image == "registry.example.com/shop/web:v1"
    assert web.command == ("sh", "-c", "echo $HOME and $(date) fallback")
    assert web.env_dict == {"A": "", "B": "set", "C": "", "D": "v1", "E": "abc1234"}


def test_warnings_for_latest_and_no_tag() -> None:
    report = check_manifest(VALID / "latest_tag_warns.yml", None, ENVIRON)
    assert report.ok
    assert [(w.path, w.severity) for w in report.warnings] == [
        ("services.web.image", "warning"),
        ("services.cache.image", "warning"),
    ]
    m = load_manifest(VALID / "latest_tag_warns.yml", None, ENVIRON)
    assert {w.path for w in m.warnings} == {"services.web.image", "services.cache.image"}


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        app: Bad Name
        environments: {production: {hosts: ["ftp://x"]}}
        services:
          web:
            image: "shop/Web:1"
            ports: ["80:80:80", "99999"]
            depends_on: [nope]
            privileged: true
            stop_grace_period: soon
        tasks:
          t: {service: ghost, command: x}
        """,
    )
    with pytest.raises(ManifestError) as exc:
        load_manifest(path, None, {})
    paths = [p.path for p in exc.value.problems]
    assert paths == [
        "app",
        "environments.production.hosts[0]",
        "services.web.image",
        "services.web.ports[0]",
        "services.web.ports[1]",
        "services.web.depends_on[0]",
        "services.web.privileged",
        "services.web.stop_grace_period",
        "tasks.t.service",
    ]
    text = exc.value.render()
    assert text.startswith(f"{path}: 9 problems\n")
    assert f'{path}:6:13: services.web.ports[0]: "80:80:80" is not a port mapping' in text


SECRET_MANIFEST = f"""\
app: shop
environments: {{production: {{}}}}
registry:
  - {{server: "bad/server", username: u, password: "${{REGISTRY_PASSWORD}}"}}
services:
  web:
    image: registry.example.com/shop/web:1
    env_file: secrets.env
    environment:
      DATABASE_URL: "${{DATABASE_URL}}"
      INLINE: "{SECRET_DB}-inline"
      NESTED: [{SECRET_DB}]
      BAD KEY: "{SECRET_DB}"
  worker:
    image: registry.example.com/shop/worker:1
    environment:
      - "{SECRET_DB}"
      - "=x{SECRET_DB}"
      - "A={SECRET_DB}"
      - "A={SECRET_DB}"
"""


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_never_appear_in_any_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    from deployer.cli import main

    path = write(tmp_path, SECRET_MANIFEST)
    (tmp_path / "secrets.env").write_text(f"OK=1\nbad line {SECRET_DB}\n=also{SECRET_DB}\n")
    for k, v in ENVIRON.items():
        monkeypatch.setenv(k, v)
    assert main(["validate", "-f", str(path), "--format", fmt]) == 2
    out, err = capsys.readouterr()
    assert out.count("services.") >= 4
    for secret in (SECRET_DB, SECRET_REGISTRY):
        assert secret not in out and secret not in err
    with pytest.raises(ManifestError) as exc:
        load_manifest(path, None, ENVIRON)
    assert SECRET_DB not in exc.value.render() and SECRET_REGISTRY not in exc.value.render()


def test_secrets_not_in_model_repr_or_valid_output(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from deployer.cli import main

    for k, v in ENVIRON.items():
        monkeypatch.setenv(k, v)
    for fmt in ("text", "json"):
        assert main(["validate", "-f", str(VALID / "issue_example.yml"), "--format", fmt]) == 0
    out, err = capsys.readouterr()
    assert SECRET_DB not in out + err
    m = load_manifest(VALID / "issue_example.yml", None, ENVIRON)
    assert m.service("web").env_dict["DATABASE_URL"] == ENVIRON["DATABASE_URL"]
    assert SECRET_DB not in repr(m)
