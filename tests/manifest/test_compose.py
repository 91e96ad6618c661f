"""Compose files as the service source: merged in order as compose merges them, extends,
profiles, anchors and x- fields, the project name, and problems reported with the compose
file's own line numbers."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from deployer.manifest import ManifestError, check_manifest, load_manifest
from deployer.manifest.compose import project_name
from deployer.manifest.model import Mount, Port

HERE = Path(__file__).parent / "compose"
INVALID = sorted(p for p in (HERE / "invalid").iterdir() if p.is_dir())
MARK = re.compile(r"#\s*error:\s*(.+?)\s*$")
ENV = {"POSTGRES_PASSWORD": "pg-SENTINEL-secret"}


def markers(case: Path) -> set[tuple[str, int, str]]:
    out = set()
    for f in sorted(case.iterdir()):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            m = MARK.search(line)
            if m:
                key = m.group(1)
                out.add((f.name, n, "" if key == "-" else key))
    return out


@pytest.mark.parametrize("case", INVALID, ids=lambda p: p.name)
def test_problems_point_into_the_file_that_has_them(case: Path) -> None:
    expected = markers(case)
    assert expected
    report = check_manifest(case / "deploy.yml", None, {})
    found = {(Path(p.file).name, p.line, p.path) for p in report.problems}
    missing = expected - found
    assert not missing, "\n".join(p.render() for p in report.problems)
    with pytest.raises(ManifestError):
        load_manifest(case / "deploy.yml", None, {})


def test_compose_problem_messages() -> None:
    report = check_manifest(HERE / "invalid" / "build_unsupported" / "deploy.yml", None, {})
    text = "\n".join(p.render() for p in report.problems)
    compose = HERE / "invalid" / "build_unsupported" / "docker-compose.yml"
    assert "services.web.build" not in text  # `build:` with `image:`: the deploy runs image
    assert report.compose_files == (str(compose),)


def test_voting_app_merged_like_compose() -> None:
    m = load_manifest(HERE / "voting" / "deploy.yml", None, ENV)
    assert m.compose_project == "voting"
    assert m.service_names == ("vote", "result", "worker", "redis", "db")  # no "seed" profile
    vote = m.service("vote")
    assert vote.ports == (Port(80, 5000), Port(9000, 9000, "127.0.0.1"))  # appended
    assert vote.env_dict == {"OPTION_A": "Cats", "OPTION_B": "Dogs"}
    assert vote.labels == (("com.example.tier", "front"),)
    assert vote.healthcheck is not None and vote.healthcheck.interval == 15.0
    assert vote.depends_on == (("redis", "service_healthy"),)
    assert [n.name for n in vote.networks] == ["front-tier", "back-tier"]
    worker = m.service("worker")
    assert worker.replicas == 2
    # env_file relative to the compose file; the manifest's environment wins
    assert worker.env_dict == {"QUEUE": "votes", "BATCH": "100"}
    assert m.service("result").order == "stop-first"  # the manifest's override
    db = m.service("db")
    assert db.volumes == (Mount("volume", "/var/lib/postgresql/data", "db-data"),)  # by target
    assert db.env_dict["POSTGRES_PASSWORD"] == ENV["POSTGRES_PASSWORD"]
    assert [v.name for v in m.volumes] == ["db-data"]
    assert [n.name for n in m.networks] == ["front-tier", "back-tier"]
    assert [t.service for t in m.tasks] == ["worker"]


def test_profiles_anchors_extends_and_name() -> None:
    path = HERE / "shop" / "deploy.yml"
    m = load_manifest(path, None, {"CI_COMMIT_SHORT_SHA": "abc1234"})
    assert m.compose_project == "shop_front-end"  # `name:` normalised as compose does
    assert m.service_names == ("web", "worker", "cache", "db")
    web, worker = m.service("web"), m.service("worker")
    assert web.image == worker.image == "registry.example.com/shop/app:abc1234"
    assert web.restart == "unless-stopped" and web.env_dict["APP_ENV"] == "production"
    assert worker.command == ("bin/worker",)
    assert worker.healthcheck is not None and worker.healthcheck.disable
    assert worker.depends_on == web.depends_on
    m = load_manifest(path, None, {"COMPOSE_PROFILES": "debug,other"})
    assert "adminer" in m.service_names


def test_project_name_without_name_key(tmp_path: Path) -> None:
    app = tmp_path / "My App.v2"
    shutil.copytree(HERE / "voting", app)
    m = load_manifest(app / "deploy.yml", None, ENV)
    assert m.compose_project == "myappv2"
    m = load_manifest(app / "deploy.yml", None, {**ENV, "COMPOSE_PROJECT_NAME": "votes"})
    assert m.compose_project == "votes"
    with pytest.raises(ManifestError, match='invalid project name "Votes"'):
        load_manifest(app / "deploy.yml", None, {**ENV, "COMPOSE_PROJECT_NAME": "Votes"})
    assert project_name("__-Shop_1") == "shop_1"


def test_compose_secrets_stay_hidden() -> None:
    report = check_manifest(HERE / "shop" / "deploy.yml", None, {})
    text = "\n".join(p.render() for p in report.problems + report.warnings)
    assert "compose-secret-SENTINEL" not in text
    m = load_manifest(HERE / "shop" / "deploy.yml", None, {})
    assert "compose-secret-SENTINEL" not in repr(m)


def test_validate_names_compose_files_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from deployer.cli import main

    case = HERE / "invalid" / "override_bad_port"
    assert main(["validate", "-f", str(case / "deploy.yml"), "--format", "json"]) == 2
    data = json.loads(capsys.readouterr().out)
    files = {Path(p["file"]).name for p in data["problems"]}
    assert files == {"docker-compose.override.yml"}
    assert len(data["compose_files"]) == 2


def test_dotenv_of_the_compose_project(tmp_path: Path) -> None:
    app = tmp_path / "voting"
    shutil.copytree(HERE / "voting", app)
    (app / ".env").write_text("TAG=2.0\nCOMPOSE_PROJECT_NAME=from-dotenv\n# comment\n")
    m = load_manifest(app / "deploy.yml", None, ENV)
    assert m.service("vote").image.endswith("/vote:2.0")
    assert m.compose_project == "from-dotenv"
    m = load_manifest(app / "deploy.yml", None, {**ENV, "TAG": "3.0"})  # CI variables win
    assert m.service("vote").image.endswith("/vote:3.0")


def test_summary_names_the_compose_files(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from deployer.cli import main

    monkeypatch.setenv("POSTGRES_PASSWORD", "x")
    monkeypatch.delenv("CI_ENVIRONMENT_NAME", raising=False)
    assert main(["validate", "-f", str(HERE / "voting" / "deploy.yml")]) == 0
    assert capsys.readouterr().out.endswith(
        "valid for production (5 services from docker-compose.yml + docker-compose.prod.yml,"
        " 1 task)\n"
    )


def _compose_app(tmp_path: Path, compose: str) -> Path:
    (tmp_path / "docker-compose.yml").write_text(compose)
    m = tmp_path / "deploy.yml"
    m.write_text("app: shop\ncompose: docker-compose.yml\nenvironments: {prod: {}}\n")
    return m


def test_links_are_aliases_of_the_linked_service_and_start_it_first(tmp_path: Path) -> None:
    from deployer.plan import waves

    m = _compose_app(
        tmp_path,
        "services:\n"
        "  db: {image: reg/db:1, networks: [back]}\n"
        "  web: {image: reg/web:1, networks: [back, front], links: ['db:database', db]}\n"
        "networks: {back: {}, front: {}}\n",
    )
    man = load_manifest(m, None, {})
    assert man.service("db").link_aliases == (("back", "database"),)
    assert man.service("web").links == ("db",)
    assert waves(man.services) == (("db",), ("web",))
    assert "link_aliases" in man.service("db").config_parts()
    assert "links" not in man.service("web").config_parts()


def test_a_link_to_an_undefined_service_is_refused_at_its_line(tmp_path: Path) -> None:
    m = _compose_app(tmp_path, "services:\n  web:\n    image: reg/web:1\n    links: [cache]\n")
    report = check_manifest(m, None, {})
    (p,) = report.problems
    assert (p.line, p.path) == (4, "services.web.links[0]") and "not defined" in p.message


def test_depends_on_restart_and_required(tmp_path: Path) -> None:
    m = _compose_app(
        tmp_path,
        "services:\n"
        "  db: {image: reg/db:1}\n"
        "  web:\n"
        "    image: reg/web:1\n"
        "    depends_on:\n"
        "      db: {condition: service_started, restart: true}\n"
        "      cache: {condition: service_started, required: false, restart: true}\n",
    )
    web = load_manifest(m, None, {}).service("web")
    assert web.depends_on == (("db", "service_started"),)
    assert web.depends_restart == ("db",)


def test_pwd_unset_reads_the_working_directory_as_compose_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """miniflux's caddy.yml binds `${PWD}/caddy_data`: compose reads its working directory
    when PWD is not set; a set PWD (a shell's, a CI/CD variable) wins."""
    m = _compose_app(
        tmp_path,
        "services:\n  web:\n    image: registry.example.com/web:1\n"
        '    volumes: ["${PWD}/data:/data"]\n    environment: {WHERE: "${PWD}"}\n',
    )
    monkeypatch.chdir(tmp_path)
    (web,) = load_manifest(m, None, {}).services
    assert web.env_dict["WHERE"] == str(tmp_path)
    (web,) = load_manifest(m, None, {"PWD": "/srv/app"}).services
    assert web.env_dict["WHERE"] == "/srv/app"
    assert [v.source for v in web.volumes] == ["/srv/app/data"]


def test_an_absolute_path_in_the_checkout_is_the_checkout_s_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """baserow binds `$PWD/Caddyfile`; in a CI job PWD is the checkout: on a deploy host
    that path does not exist, so it is the repository's file, shipped as `./Caddyfile` is;
    a directory that is not in the checkout is data, as `./data` is."""
    (tmp_path / "Caddyfile").write_text(":80\n")
    m = _compose_app(
        tmp_path,
        "services:\n  web:\n    image: registry.example.com/web:1\n    volumes:\n"
        '      - "$PWD/Caddyfile:/etc/caddy/Caddyfile"\n'
        "      - {type: bind, source: $PWD/data, target: /data}\n"
        '      - "/srv/app:/srv"\n',
    )
    monkeypatch.chdir(tmp_path)
    (web,) = load_manifest(m, None, {}).services
    assert [(f.name, f.target) for f in web.files] == [("./Caddyfile", "/etc/caddy/Caddyfile")]
    assert [(v.type, v.source, v.target) for v in web.volumes] == [
        ("volume", "data", "/data"),
        ("bind", "/srv/app", "/srv"),
    ]


@pytest.mark.parametrize(
    ("other", "text"),
    [
        ("notes.txt", "root:x:0:0:root:/root:/bin/bash\n"),  # one YAML string
        ("list.yml", "services: [web, db]\n"),
        ("empty.yml", "services:\n"),
    ],
)
def test_extends_of_a_file_that_is_no_compose_file_is_a_problem(
    tmp_path: Path, other: str, text: str
) -> None:
    """A file with no mapping of services (a text file, a list) has no service to extend:
    a problem at the `extends` line, never a crash (it raised AttributeError)."""
    (tmp_path / other).write_text(text)
    compose = (
        f"services:\n  web:\n    image: r/web:1\n    extends: {{file: {other}, service: root}}\n"
    )
    report = check_manifest(_compose_app(tmp_path, compose), None, {})
    (problem,) = report.problems
    assert problem.path == "services.web.extends" and problem.line == 4, problem
    assert f'unknown service "root" of "{other}"' in problem.message
