"""Compose semantics as Docker Compose v2 applies them, each compared with the real
``docker compose config``: the project's ``.env`` (parsing, COMPOSE_PROFILES,
COMPOSE_PROJECT_NAME, COMPOSE_FILE, COMPOSE_PATH_SEPARATOR), default file names for
``compose: <dir>``, profiles applied after merging, override paths relative to the project
directory, ``!reset`` / ``!override``, ``extends: {file, service}`` and ``include:``."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from deployer.manifest import ManifestError, check_manifest, load_manifest
from deployer.manifest.compose import parse_dotenv
from deployer.manifest.model import Manifest
from tests import composev2
from tests.manifest.compose_compare import compare


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def compose_config(
    project: Path, files: list[str], env: dict[str, str], home: Path
) -> dict[str, Any]:
    args = [str(composev2.binary())]
    for f in files:
        args += ["-f", f]
    proc = subprocess.run(
        [*args, "config", "--format", "json"],
        cwd=project,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def deployer(tmp: Path, compose: str, env: dict[str, str]) -> Manifest:
    manifest = tmp / "deploy.yml"
    manifest.write_text(
        f"app: demo\ncompose: {compose}\nenvironments:\n  production:\n"
        "    hosts: [ssh://deploy@host.example.com]\n"
    )
    return load_manifest(manifest, "production", env)


def same(m: Manifest, theirs: dict[str, Any]) -> None:
    assert set(m.service_names) == set(theirs["services"])
    diffs: list[str] = []
    for s in m.services:
        spec = theirs["services"][s.name]
        env = spec.get("environment") or {}
        spec = {**spec, "environment": {k: unescape(v) for k, v in env.items()}}
        diffs += compare(s, spec)
    assert not diffs, "\n".join(diffs)


def unescape(value: str | None) -> str | None:
    return None if value is None else value.replace("$$", "$")  # config output escapes $


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


DOTENV = """\
# comment
PLAIN=value
SPACED = spaced value
COMMENT=abc # a comment
HASH=abc#def
SQ='single ${PLAIN} # not comment'
DQ="double ${PLAIN} \\n \\t \\" \\$PLAIN"
export EXPORTED=yes
EMPTY=
REF=${PLAIN}-x
DEF=${NOPE:-fallback}
MULTI="line1
line2"
YAMLSTYLE: colon
AFTER="quoted" # comment
FROMENV
CRLF=dos\r
"""
DOTENV_KEYS = [
    "PLAIN", "SPACED", "COMMENT", "HASH", "SQ", "DQ", "EXPORTED", "EMPTY", "REF", "DEF",
    "MULTI", "YAMLSTYLE", "AFTER", "FROMENV", "CRLF",
]  # fmt: skip


def test_dotenv_parsed_as_compose_parses_it(tmp_path: Path, home: Path) -> None:
    project = tmp_path / "app"
    project.mkdir()
    (project / ".env").write_text(DOTENV)
    env_lines = "".join(f"      {k}: ${{{k}-unset}}\n" for k in DOTENV_KEYS)
    write(project, {"compose.yaml": "services:\n  s:\n    image: busybox:1\n"
                    "    environment:\n" + env_lines})  # fmt: skip
    environ = {"FROMENV": "from-the-environment"}
    theirs = compose_config(project, [], environ, home)
    same(deployer(tmp_path, "app/compose.yaml", environ), theirs)
    parsed = parse_dotenv(DOTENV, environ)
    assert parsed["SQ"] == "single ${PLAIN} # not comment"  # single quotes: literal
    assert parsed["MULTI"] == "line1\nline2"


def test_compose_settings_from_the_project_dotenv(tmp_path: Path, home: Path) -> None:
    """COMPOSE_PROFILES and COMPOSE_PROJECT_NAME from .env; the environment wins over it."""
    project = tmp_path / "app"
    write(
        project,
        {
            ".env": "COMPOSE_PROFILES=workers,debug\nCOMPOSE_PROJECT_NAME=shop_prod\n",
            "compose.yaml": """\
            services:
              web: {image: "web:1"}
              worker: {image: "worker:1", profiles: [workers]}
              tools: {image: "tools:1", profiles: [tools]}
              debug: {image: "debug:1", profiles: [debug]}
            """,
        },
    )
    theirs = compose_config(project, [], {}, home)
    mine = deployer(tmp_path, "app/compose.yaml", {})
    same(mine, theirs)
    assert set(mine.service_names) == {"web", "worker", "debug"}
    assert mine.compose_project == theirs["name"] == "shop_prod"
    env = {"COMPOSE_PROFILES": "tools", "COMPOSE_PROJECT_NAME": "other"}
    theirs = compose_config(project, [], env, home)
    mine = deployer(tmp_path, "app/compose.yaml", env)
    same(mine, theirs)
    assert set(mine.service_names) == {"web", "tools"}
    assert mine.compose_project == theirs["name"] == "other"


def test_invalid_project_name_refused_as_compose_refuses_it(tmp_path: Path, home: Path) -> None:
    project = tmp_path / "app"
    write(
        project,
        {".env": "COMPOSE_PROJECT_NAME=Shop\n", "compose.yaml": "services:\n  a: {image: 'a:1'}\n"},
    )
    proc = subprocess.run(
        [str(composev2.binary()), "config"],
        cwd=project,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0 and "invalid project name" in proc.stderr
    with pytest.raises(ManifestError) as exc:
        deployer(tmp_path, "app/compose.yaml", {})
    (p,) = exc.value.problems
    assert (p.line, p.path) == (2, "compose")
    assert 'invalid project name "Shop" (COMPOSE_PROJECT_NAME in .env)' in p.message


def test_compose_directory_uses_compose_file_from_dotenv(tmp_path: Path, home: Path) -> None:
    project = tmp_path / "app"
    write(
        project,
        {
            ".env": "COMPOSE_FILE=base.yml;ops/prod.yml\nCOMPOSE_PATH_SEPARATOR=;\n",
            "base.yml": "services:\n  web: {image: 'web:1', ports: ['8080:80']}\n",
            "ops/prod.yml": """\
            services:
              web: {image: "web:2", env_file: [ops/web.env]}
              cache: {image: "redis:7"}
            """,
            "ops/web.env": "LEVEL=prod\n",
            "compose.yaml": "services:\n  unused: {image: 'x:1'}\n",
        },
    )
    theirs = compose_config(project, [], {}, home)
    mine = deployer(tmp_path, "app", {})
    same(mine, theirs)
    assert mine.service("web").image == "web:2"
    assert mine.service("web").env_dict == {"LEVEL": "prod"}  # relative to the project


def test_compose_directory_default_names_and_override(tmp_path: Path, home: Path) -> None:
    project = tmp_path / "app"
    write(
        project,
        {
            "docker-compose.yml": "services:\n  web: {image: 'web:1', environment: [A=1]}\n",
            "docker-compose.override.yml": "services:\n  web: {environment: [B=2]}\n",
        },
    )
    theirs = compose_config(project, [], {}, home)
    mine = deployer(tmp_path, "app", {})
    same(mine, theirs)
    assert mine.service("web").env_dict == {"A": "1", "B": "2"}


def test_compose_directory_without_compose_file_is_located(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    with pytest.raises(ManifestError) as exc:
        deployer(tmp_path, "app", {})
    (p,) = exc.value.problems
    assert (p.line, p.path) == (2, "compose")
    assert "no compose file in the directory" in p.message


def test_profiles_apply_after_merging(tmp_path: Path, home: Path) -> None:
    """An override may give a base service a profile (then it is off) or add settings to
    a service whose profile is off in the base file."""
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": """\
            services:
              web: {image: "web:1"}
              admin: {image: "admin:1"}
              seed: {image: "seed:1", profiles: [seed]}
            """,
            "compose.prod.yml": """\
            services:
              admin: {profiles: [ops]}
              seed: {environment: {ROWS: "10"}}
            """,
        },
    )
    for env in ({}, {"COMPOSE_PROFILES": "seed"}):
        theirs = compose_config(project, ["compose.yaml", "compose.prod.yml"], env, home)
        same(deployer(tmp_path, "[app/compose.yaml, app/compose.prod.yml]", env), theirs)


@pytest.mark.parametrize("profiles", [None, "", "x", "x,", " x", "*"])
def test_an_empty_profile_is_on_unless_profiles_are_named(
    tmp_path: Path, home: Path, profiles: str | None
) -> None:
    """pixelfed writes `profiles: [${DOCKER_DB_PROFILE:-}]`: unset, the service runs. Compose
    splits COMPOSE_PROFILES keeping an empty entry, and an unset one is that entry alone."""
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": """\
            services:
              a: {image: "a:1", profiles: ["${A_PROFILE:-}"]}
              b: {image: "b:1", profiles: ["", x]}
              e: {image: "e:1", profiles: ["${E_PROFILE:-off}"]}
              c: {image: "c:1", profiles: [x]}
              d: {image: "d:1"}
            """
        },
    )
    env = {} if profiles is None else {"COMPOSE_PROFILES": profiles}
    theirs = compose_config(project, ["compose.yaml"], env, home)
    same(deployer(tmp_path, "app/compose.yaml", env), theirs)


def test_override_in_another_directory_resolves_paths_from_the_project(
    tmp_path: Path, home: Path
) -> None:
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": "services:\n  web: {image: 'web:1'}\n",
            "proxy/compose.proxy.yml": "services:\n  web: {env_file: [web.env]}\n",
            "web.env": "FROM=project-dir\n",
        },
    )
    theirs = compose_config(project, ["compose.yaml", "proxy/compose.proxy.yml"], {}, home)
    mine = deployer(tmp_path, "[app/compose.yaml, app/proxy/compose.proxy.yml]", {})
    same(mine, theirs)
    assert mine.service("web").env_dict == {"FROM": "project-dir"}


def test_override_in_a_subdirectory_keeps_its_binds_builds_and_configs_paths(
    tmp_path: Path, home: Path
) -> None:
    """docker-elk's extensions: `./extensions/x/config/x.yml` in `extensions/x/x.yml` is the
    project's file, as compose reads it (it was rewritten as the volume name
    `config/x.yml`)."""
    project = tmp_path / "app"
    ext = "extensions/curator"
    write(
        project,
        {
            "compose.yaml": "services:\n  web: {image: 'web:1'}\n",
            f"{ext}/curator-compose.yml": f"""\
                services:
                  curator:
                    image: curator:1
                    build: {{context: {ext}/}}
                    volumes:
                      - ./{ext}/config/curator.yml:/.curator/curator.yml:ro,Z
                      - {{type: bind, source: ./{ext}/config/actions, target: /actions}}
                    configs: [{{source: rules, target: /rules.yml}}]
                configs:
                  rules: {{file: ./{ext}/config/rules.yml}}
                """,
            f"{ext}/config/curator.yml": "client: {}\n",
            f"{ext}/config/actions/a.yml": "actions: {}\n",
            f"{ext}/config/rules.yml": "rules: []\n",
            f"{ext}/Dockerfile": "FROM scratch\n",
        },
    )
    files = ["compose.yaml", f"{ext}/curator-compose.yml"]
    theirs = compose_config(project, files, {}, home)
    mine = deployer(tmp_path, f"[app/compose.yaml, app/{ext}/curator-compose.yml]", {})
    same(mine, theirs)
    shipped = {f.name: f for f in mine.service("curator").files}
    assert set(shipped) == {f"./{ext}/config/curator.yml", f"./{ext}/config/actions", "rules"}
    assert shipped[f"./{ext}/config/actions"].directory
    build = mine.service("curator").build
    assert build is not None and Path(build.context) == project / ext


def test_reset_and_override_tags(tmp_path: Path, home: Path) -> None:
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": """\
            services:
              web:
                image: web:1
                command: [serve, --debug]
                ports: ["8080:80", "9090:90"]
                environment: {A: "1", B: "2"}
                depends_on: [db]
              db: {image: "postgres:16"}
            """,
            "compose.prod.yml": """\
            services:
              web:
                command: !reset null
                ports: !override ["80:80"]
                environment: !override {C: "3"}
                depends_on: !reset []
            """,
        },
    )
    files = ["compose.yaml", "compose.prod.yml"]
    theirs = compose_config(project, files, {}, home)
    mine = deployer(tmp_path, "[app/compose.yaml, app/compose.prod.yml]", {})
    same(mine, theirs)
    web = mine.service("web")
    assert web.command is None and web.depends_on == () and web.env_dict == {"C": "3"}


def test_override_tag_keeps_the_override_files_positions(tmp_path: Path) -> None:
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": "services:\n  web:\n    image: web:1\n    ports: ['8080:80']\n",
            "compose.prod.yml": "services:\n  web:\n    ports: !override\n      - 80:80:80\n",
        },
    )
    manifest = tmp_path / "deploy.yml"
    manifest.write_text(
        "app: demo\ncompose: [app/compose.yaml, app/compose.prod.yml]\n"
        "environments: {production: {hosts: [ssh://deploy@host.example.com]}}\n"
    )
    report = check_manifest(manifest, "production", {})
    assert [(Path(p.file).name, p.line, p.path) for p in report.problems] == [
        ("compose.prod.yml", 4, "services.web.ports[0]")
    ]


def test_extends_a_service_of_another_file(tmp_path: Path, home: Path) -> None:
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": """\
            services:
              web:
                extends: {file: common/base.yml, service: app}
                command: [serve]
                environment: {ROLE: web}
              worker:
                extends: {file: common/base.yml, service: app}
                environment: {ROLE: worker}
            """,
            "common/base.yml": """\
            services:
              base:
                image: app:1
                environment: {LEVEL: info}
              app:
                extends: base
                user: "1000"
                env_file: [app.env]
                ports: ["8080"]
            """,
            "common/app.env": "FROM_FILE=common\n",
        },
    )
    theirs = compose_config(project, [], {}, home)
    mine = deployer(tmp_path, "app/compose.yaml", {})
    same(mine, theirs)
    assert mine.service("worker").env_dict == {
        "LEVEL": "info",
        "ROLE": "worker",
        "FROM_FILE": "common",  # relative to the extended file, as compose resolves it
    }


def test_extends_problems_in_another_file_are_located(tmp_path: Path) -> None:
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": """\
            services:
              web:
                extends: {file: base.yml, service: ap}
              api:
                extends: {file: missing.yml, service: app}
              job:
                extends: {file: base.yml, service: app}
            """,
            "base.yml": "services:\n  app:\n    image: app:1\n    ports: ['80:80:80']\n",
        },
    )
    manifest = tmp_path / "deploy.yml"
    manifest.write_text(
        "app: demo\ncompose: app/compose.yaml\n"
        "environments: {production: {hosts: [ssh://deploy@host.example.com]}}\n"
    )
    report = check_manifest(manifest, "production", {})
    found = {(Path(p.file).name, p.line, p.path) for p in report.problems}
    assert ("compose.yaml", 3, "services.web.extends") in found  # unknown service
    assert ("compose.yaml", 5, "services.api.extends.file") in found  # missing file
    assert ("base.yml", 4, "services.job.ports[0]") in found  # the extended file's own line
    text = "\n".join(p.render() for p in report.problems)
    assert "did you mean `app`?" in text and "missing.yml" in text


def test_include(tmp_path: Path, home: Path) -> None:
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": """\
            include:
              - db/compose.yaml
              - path: [cache/compose.yaml, cache/override.yml]
            services:
              web:
                image: web:1
                depends_on: [db, cache]
            """,
            "db/compose.yaml": """\
            services:
              db:
                image: postgres:16
                env_file: [db.env]
                volumes: [data:/var/lib/postgresql/data]
            volumes:
              data: {}
            """,
            "db/db.env": "POSTGRES_DB=app\n",
            "cache/compose.yaml": "services:\n  cache: {image: 'redis:7'}\n",
            "cache/override.yml": "services:\n  cache: {command: [redis-server, --save, '']}\n",
        },
    )
    theirs = compose_config(project, [], {}, home)
    mine = deployer(tmp_path, "app/compose.yaml", {})
    same(mine, theirs)
    assert mine.service("db").env_dict == {"POSTGRES_DB": "app"}
    assert [v.name for v in mine.volumes] == ["data"]


def test_an_included_file_s_paths_are_its_directory_s_or_its_project_directory_s(
    tmp_path: Path, home: Path
) -> None:
    """`./conf/app.ini` in `api/compose.yaml` is `api/conf/app.ini` (it was read from the
    project's directory: a missing path, so a data volume); with laradock's
    `project_directory: .` the included file's paths are the project's."""
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": """\
            include:
              - api/compose.yaml
              - path: worker/compose.yml
                project_directory: .
            services:
              web: {image: "web:1"}
            """,
            "api/compose.yaml": """\
            services:
              api:
                image: api:1
                build: {context: ., dockerfile: Dockerfile}
                env_file: [api.env]
                volumes:
                  - ./conf/app.ini:/etc/app.ini:ro
                  - {type: bind, source: ./static, target: /static, read_only: true}
            """,
            "api/api.env": "FROM=api-dir\n",
            "api/conf/app.ini": "[app]\n",
            "api/static/index.html": "hi\n",
            "api/Dockerfile": "FROM scratch\n",
            "worker/compose.yml": """\
            services:
              worker:
                image: worker:1
                build: ./worker
                env_file: [shared.env]
                volumes: [./shared/jobs.yml:/etc/jobs.yml:ro]
            """,
            "worker/Dockerfile": "FROM scratch\n",
            "shared.env": "FROM=project-dir\n",
            "shared/jobs.yml": "jobs: []\n",
        },
    )
    theirs = compose_config(project, [], {}, home)
    mine = deployer(tmp_path, "app/compose.yaml", {})
    same(mine, theirs)
    api, worker = mine.service("api"), mine.service("worker")
    assert {f.name: f.source for f in api.files} == {
        "./api/conf/app.ini": str(project / "api/conf/app.ini"),
        "./api/static": str(project / "api/static"),
    }
    assert {f.name for f in worker.files} == {"./shared/jobs.yml"}
    assert api.build is not None and Path(api.build.context) == project / "api"
    assert worker.build is not None and Path(worker.build.context) == project / "worker"
    assert (api.env_dict, worker.env_dict) == ({"FROM": "api-dir"}, {"FROM": "project-dir"})


@pytest.mark.parametrize("environ", [{}, {"A": "from-ci"}])
def test_an_include_s_env_file_interpolates_its_files_below_every_other_source(
    tmp_path: Path, home: Path, environ: dict[str, str]
) -> None:
    """laradock's `env_file: ./adminer/defaults.env`: its variables fill the included file
    only, below the project's .env and the CI variables."""
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": """\
            include:
              - path: sub/compose.yaml
                env_file: sub/defaults.env
            services:
              web: {image: "web:${A:-none}", environment: {B: "${B:-unset}"}}
            """,
            "sub/compose.yaml": """\
            services:
              api:
                image: "api:${A:-none}"
                environment: {B: "${B:-unset}", C: "${C:-unset}"}
            """,
            "sub/defaults.env": "A=from-include\nB=from-include\n",
            ".env": "A=from-dotenv\nC=from-dotenv\n",
        },
    )
    theirs = compose_config(project, [], environ, home)
    mine = deployer(tmp_path, "app/compose.yaml", environ)
    same(mine, theirs)
    assert mine.service("api").env_dict == {"B": "from-include", "C": "from-dotenv"}
    assert mine.service("web").env_dict == {"B": "unset"}


def test_include_conflict_refused_as_compose_refuses_it(tmp_path: Path, home: Path) -> None:
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": "include: [db.yml]\nservices:\n  db: {image: 'postgres:15'}\n",
            "db.yml": "services:\n  db: {image: 'postgres:16'}\n",
        },
    )
    proc = subprocess.run(
        [str(composev2.binary()), "config"],
        cwd=project,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0, proc.stdout
    with pytest.raises(ManifestError) as exc:
        deployer(tmp_path, "app/compose.yaml", {})
    (p,) = exc.value.problems
    assert (Path(p.file).name, p.line, p.path) == ("compose.yaml", 3, "services.db")


def test_env_file_parsed_as_compose_parses_it(tmp_path: Path, home: Path) -> None:
    project = tmp_path / "app"
    project.mkdir()
    (project / "app.env").write_text(DOTENV)
    write(
        project, {"compose.yaml": "services:\n  s:\n    image: busybox:1\n    env_file: app.env\n"}
    )
    environ = {"FROMENV": "from-the-environment"}
    theirs = compose_config(project, [], environ, home)
    mine = deployer(tmp_path, "app/compose.yaml", environ)
    same(mine, theirs)
    assert mine.service("s").env_dict["MULTI"] == "line1\nline2"


def test_a_key_without_a_value_nothing_sets_unsets_the_env_file_s_value(
    tmp_path: Path, home: Path
) -> None:
    """``environment:`` naming a key without a value (``- KEY`` or ``KEY:``) that no
    variable sets: compose gives the container no such variable, though an ``env_file``
    sets it (before, the deployer kept the env_file's value); one a variable sets takes it."""
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": """\
                services:
                  listed:
                    image: busybox:1
                    env_file: app.env
                    environment:
                      - SECRET_KEY
                      - FROM_CI
                      - KEPT=1
                  mapped:
                    image: busybox:1
                    env_file: [app.env]
                    environment:
                      SECRET_KEY:
                      FROM_CI:
                  again:
                    image: busybox:1
                    env_file: app.env
                    environment: [SECRET_KEY, SECRET_KEY=last]
                """,
            "app.env": "SECRET_KEY=from-the-env-file\nFROM_CI=file\nOTHER=2\n",
        },
    )
    environ = {"FROM_CI": "from-ci"}
    theirs = compose_config(project, [], environ, home)
    mine = deployer(tmp_path, "app/compose.yaml", environ)
    same(mine, theirs)
    for name in ("listed", "mapped"):
        env = mine.service(name).env_dict
        assert "SECRET_KEY" not in env and env["FROM_CI"] == "from-ci" and env["OTHER"] == "2"
    assert mine.service("again").env_dict["SECRET_KEY"] == "last"


def test_merge_key_lists_merged_as_compose_merges_them(tmp_path: Path, home: Path) -> None:
    """``<<: [*common, *logging]`` where both anchors write a key: the first listed wins, as
    compose reads it (before, the later anchor's ``restart`` and ``logging`` won)."""
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": """\
                x-common: &common
                  restart: always
                  logging: {driver: json-file, options: {max-size: 10m}}
                  environment: {TZ: UTC}
                x-logging: &logging
                  restart: "no"
                  logging: {driver: local}
                  stop_grace_period: 5s
                services:
                  web:
                    <<: [*common, *logging]
                    image: busybox:1
                  db:
                    <<: [*logging, *common]
                    image: busybox:1
                    restart: on-failure
                """,
        },
    )
    theirs = compose_config(project, [], {}, home)
    mine = deployer(tmp_path, "app/compose.yaml", {})
    same(mine, theirs)
    assert mine.service("web").restart == "always"
    assert mine.service("db").restart == "on-failure"


def test_braces_in_a_default_end_where_compose_ends_them(tmp_path: Path, home: Path) -> None:
    """A JSON default (``${OPTS:-{}}``) with the variable set is the variable's value, as
    compose reads it (before: the value and a stray ``}``); unset, the braces."""
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": """\
                services:
                  s:
                    image: busybox:1
                    environment:
                      OPTS: ${OPTS:-{}}
                      EXTRA: '${EXTRA:-{"debug": false}}'
                      MIXED: ${UNSET_X-{a}b}c
                    labels:
                      rule: "${RULE:-Host(`{x}`)}"
                """,
            ".env": 'OPTS={"a": 1}\n',
        },
    )
    theirs = compose_config(project, [], {}, home)
    mine = deployer(tmp_path, "app/compose.yaml", {})
    same(mine, theirs)
    env = mine.service("s").env_dict
    assert env["OPTS"] == '{"a": 1}' and env["EXTRA"] == '{"debug": false}'


def test_a_value_that_starts_with_a_hash_is_kept_as_compose_keeps_it(
    tmp_path: Path, home: Path
) -> None:
    """``PWA_THEME_COLOR=#0f172a`` (a branding .env as webmail and PWA projects publish
    them): compose keeps the value, a comment starting only at a space and ``#``; before,
    the deployer read such a value, in ``.env`` and in an ``env_file``, as empty."""
    lines = (
        "PWA_THEME_COLOR=#0f172a\n"
        "PWA_BACKGROUND_COLOR=#ffffff\n"
        "SPACED= #x\n"
        "TABBED=a\t#kept\n"
        "COMMENTED=a #gone\n"
    )
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": """\
                services:
                  s:
                    image: busybox:1
                    env_file: branding.env
                    environment:
                      FROM_DOTENV: ${PWA_THEME_COLOR}|${SPACED}|${TABBED}|${COMMENTED}
                """,
            ".env": lines,
            "branding.env": lines,
        },
    )
    theirs = compose_config(project, [], {}, home)
    mine = deployer(tmp_path, "app/compose.yaml", {})
    same(mine, theirs)
    env = mine.service("s").env_dict
    assert env["PWA_THEME_COLOR"] == "#0f172a" and env["FROM_DOTENV"] == "#0f172a|#x|a\t#kept|a"


def test_env_file_bad_line_is_located_without_its_value(tmp_path: Path) -> None:
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": "services:\n  s:\n    image: busybox:1\n    env_file: app.env\n",
            "app.env": 'A="multi\nline"\nnot a key=hidden-value\n',
        },
    )
    with pytest.raises(ManifestError) as exc:
        deployer(tmp_path, "app/compose.yaml", {})
    (p,) = exc.value.problems
    assert (Path(p.file).name, p.line) == ("app.env", 3)
    assert "hidden-value" not in p.render()


RAW_ENV = (
    "# a comment\n"
    'QUOTED="kept"\n'
    "REF=${FROMENV}x\n"
    "HASH=a b # kept too\n"
    "SINGLE='kept'\n"
    "ESC=multi\\nline\n"
    "  LEAD=trimmed key\n"
    "EQ=x=y\n"
    "TRAIL= spaced \r\n"
    "FROMENV\n"
)


def test_env_file_format_raw_takes_values_as_written(tmp_path: Path, home: Path) -> None:
    """`env_file: [{path, format: raw}]` (Compose 2.30): each value as written after the
    first `=` (it was refused as an unknown key)."""
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": "services:\n  s:\n    image: busybox:1\n"
            "    env_file: [{path: app.env, format: raw}]\n",
        },
    )
    (project / "app.env").write_text(RAW_ENV)
    environ = {"FROMENV": "from-the-environment"}
    theirs = compose_config(project, [], environ, home)
    mine = deployer(tmp_path, "app/compose.yaml", environ)
    same(mine, theirs)
    env = mine.service("s").env_dict
    assert env["REF"] == "${FROMENV}x" and env["QUOTED"] == '"kept"'
    assert env["TRAIL"] == " spaced " and env["FROMENV"] == "from-the-environment"


def test_env_file_format_raw_bad_key_and_unknown_format_are_located(tmp_path: Path) -> None:
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": "services:\n  s:\n    image: busybox:1\n    env_file:\n"
            "      - {path: a.env, format: raw}\n      - {path: b.env, format: yaml}\n",
            "a.env": "A=1\nNOT A KEY=hidden-value\n",
            "b.env": "B=2\n",
        },
    )
    with pytest.raises(ManifestError) as exc:
        deployer(tmp_path, "app/compose.yaml", {})
    raw, fmt = sorted(exc.value.problems, key=lambda p: Path(p.file).name)
    assert (Path(raw.file).name, raw.line) == ("a.env", 2)
    assert "hidden-value" not in raw.render()
    assert (Path(fmt.file).name, fmt.line, fmt.path) == (
        "compose.yaml",
        6,
        "services.s.env_file[1].format",
    )


QUOTED_TYPES = """\
services:
  s:
    image: busybox:1
    cpu_shares: "512"
    oom_score_adj: "10"
    stdin_open: "true"
    read_only: "false"
    ulimits:
      nproc: {soft: 1024, hard: "2048"}
    healthcheck:
      test: ["CMD", "true"]
      retries: "3"
    deploy:
      replicas: "2"
      resources:
        limits: {pids: "50"}
"""


def test_numbers_and_booleans_written_quoted_are_cast_as_compose_casts_them(
    tmp_path: Path, home: Path
) -> None:
    """Compose casts a quoted value to the key's type as it casts an interpolated one
    (`cpu_shares: "512"`); they were refused as strings."""
    project = tmp_path / "app"
    write(project, {"compose.yaml": QUOTED_TYPES})
    theirs = compose_config(project, [], {}, home)
    mine = deployer(tmp_path, "app/compose.yaml", {})
    same(mine, theirs)
    s = mine.service("s")
    assert s.replicas == 2 and s.read_only is False


def test_a_quoted_value_that_is_no_number_is_still_refused(tmp_path: Path) -> None:
    write(tmp_path / "app", {"compose.yaml": QUOTED_TYPES.replace('"512"', '"many"')})
    with pytest.raises(ManifestError) as exc:
        deployer(tmp_path, "app/compose.yaml", {})
    (p,) = exc.value.problems
    assert (p.line, p.path) == (4, "services.s.cpu_shares")


def test_extra_hosts_mapping_with_a_list_of_addresses(tmp_path: Path, home: Path) -> None:
    """`extra_hosts: {host: [ip, ip]}` (Compose 2.24): one entry per address, in a file
    alone and merged with an override (it was refused: expected a string, got a list)."""
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": "services:\n  s:\n    image: busybox:1\n    extra_hosts:\n"
            "      multi: [10.0.0.1, '::1']\n      single: 10.0.0.3\n",
            "over.yaml": "services:\n  s:\n    extra_hosts:\n      other: [10.0.0.4]\n",
        },
    )
    same(deployer(tmp_path, "app/compose.yaml", {}), compose_config(project, [], {}, home))
    both = compose_config(project, ["compose.yaml", "over.yaml"], {}, home)
    mine = deployer(tmp_path, "[app/compose.yaml, app/over.yaml]", {})
    same(mine, both)
    assert set(mine.service("s").extra_hosts) == {
        "multi:10.0.0.1",
        "multi:::1",
        "single:10.0.0.3",
        "other:10.0.0.4",
    }


def test_an_empty_platform_is_unset_as_compose_reads_it(tmp_path: Path, home: Path) -> None:
    """Sentry's `platform: ${DOCKER_PLATFORM:-}`."""
    project = tmp_path / "app"
    write(
        project,
        {"compose.yaml": "services:\n  s:\n    image: busybox:1\n    platform: ${P:-}\n"},
    )
    theirs = compose_config(project, [], {}, home)
    same(deployer(tmp_path, "app/compose.yaml", {}), theirs)


def test_a_service_another_waits_to_complete_runs_once(tmp_path: Path) -> None:
    """`condition: service_completed_successfully` makes the service one that runs once
    (exit 0 is its success); `service_started` and `service_healthy` do not."""
    write(
        tmp_path / "app",
        {
            "compose.yaml": """\
            services:
              migrate: {image: "web:1", command: ["migrate"]}
              cache: {image: "redis:7"}
              web:
                image: "web:1"
                depends_on:
                  migrate: {condition: service_completed_successfully}
                  cache: {condition: service_started}
            """
        },
    )
    m = deployer(tmp_path, "app/compose.yaml", {})
    assert [s.name for s in m.services if s.completes] == ["migrate"]


def test_scale_an_empty_override_and_a_target_written_twice(tmp_path: Path, home: Path) -> None:
    """cp-all-in-one's `scale: 1`, opentelemetry-demo's comments-only extras file, and
    docker-sonarqube's two volumes on one target (compose keeps the last)."""
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": """\
            services:
              web:
                image: "web:1"
                scale: 2
                volumes:
                  - logs:/var/log/app
                  - /srv/old:/data
                  - web_logs:/var/log/app
                  - /srv/new:/data/
            volumes: {logs: {}, web_logs: {}}
            """,
            "extras.yaml": "# nothing here yet\n# (a place for local additions)\n",
        },
    )
    theirs = compose_config(project, ["compose.yaml", "extras.yaml"], {}, home)
    mine = deployer(tmp_path, "[app/compose.yaml, app/extras.yaml]", {})
    same(mine, theirs)
    web = mine.service("web")
    assert web.replicas == 2 == theirs["services"]["web"]["scale"]
    assert [(v.source, v.target) for v in web.volumes] == [
        ("web_logs", "/var/log/app"),
        ("/srv/new", "/data"),
    ]


def test_scale_and_replicas_must_agree(tmp_path: Path) -> None:
    write(
        tmp_path / "app",
        {"compose.yaml": "services:\n  web: {image: 'web:1', scale: 2, deploy: {replicas: 3}}\n"},
    )
    with pytest.raises(ManifestError, match=r"services\.web\.scale: scale 2 and deploy"):
        deployer(tmp_path, "app/compose.yaml", {})


def test_an_override_s_sequences_are_appended_as_compose_merges_them(
    tmp_path: Path, home: Path
) -> None:
    """docker-zulip's override writes `secrets: []`: the service keeps its secrets. An
    override adds to a service's sequences; an entry with the index of one already there
    takes its place (a secret's or config's target, a text's part before `=`)."""
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": """\
            services:
              web:
                image: "web:1"
                secrets: [s1, {source: s2, target: /a}]
                configs: [c1]
                cap_drop: [NET_RAW]
                dns_search: a.example
                dns_opt: ["ndots:2", "timeout=1"]
                security_opt: ["no-new-privileges:true"]
                group_add: [mail]
                links: [db]
                volumes_from: [db]
                networks:
                  front: {aliases: [one]}
              db: {image: "db:1", networks: [front]}
            networks: {front: {}}
            secrets: {s1: {file: ./s1}, s2: {file: ./s2}}
            configs: {c1: {file: ./c1}, c2: {file: ./c2}}
            """,
            "compose.override.yaml": """\
            services:
              web:
                secrets: [{source: s1, target: /a}, s2]
                configs: []
                cap_drop: [MKNOD]
                dns_search: [b.example]
                dns_opt: ["timeout=2"]
                group_add: ["12"]
                links: ["db:database"]
                networks:
                  front: {aliases: [two]}
              db:
                configs: [c2]
            """,
            "s1": "one\n",
            "s2": "two\n",
            "c1": "c\n",
            "c2": "c\n",
        },
    )
    files = ["compose.yaml", "compose.override.yaml"]
    theirs = compose_config(project, files, {}, home)
    mine = deployer(tmp_path, "[app/compose.yaml, app/compose.override.yaml]", {})
    same(mine, theirs)
    web = mine.service("web")
    assert sorted((f.name, f.target) for f in web.files) == [
        ("c1", "/c1"),
        ("s1", "/a"),
        ("s1", "/run/secrets/s1"),
        ("s2", "/run/secrets/s2"),
    ]
    assert web.dns_opt == ("ndots:2", "timeout=2")
    assert web.cap_drop == ("NET_RAW", "MKNOD")


def test_a_key_written_in_a_list_item_is_interpolated_as_compose_reads_it(
    tmp_path: Path, home: Path
) -> None:
    """frappe_docker's overrides label `- traefik.http.routers.${ROUTER}-http.rule=...`:
    compose interpolates a list item whole, its key too, before the files are merged; a key
    written as a mapping key is taken as it is, `$$` included."""
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": """\
            services:
              web:
                image: "web:1"
                labels:
                  - traefik.http.routers.${ROUTER}.rule=Host(`${HOST}`)
                environment:
                  - ${PREFIX}_HOST=db
              worker:
                image: "web:1"
                labels:
                  literal.$${ROUTER}: "1"
            """,
            "compose.override.yaml": """\
            services:
              web:
                labels:
                  - traefik.http.services.${ROUTER?ROUTER not set}.loadbalancer.server.port=8080
                environment:
                  - ${PREFIX}_PORT=5432
              worker:
                labels: ["written.${ROUTER}=2"]
            """,
        },
    )
    environ = {"ROUTER": "shop", "HOST": "shop.example.com", "PREFIX": "DB"}
    files = ["compose.yaml", "compose.override.yaml"]
    theirs = compose_config(project, files, environ, home)
    mine = deployer(tmp_path, "[app/compose.yaml, app/compose.override.yaml]", environ)
    same(mine, theirs)
    assert mine.service("web").env_dict == {"DB_HOST": "db", "DB_PORT": "5432"}
    labels = {"literal.$${ROUTER}": "1", "written.shop": "2"}
    assert dict(mine.service("worker").labels) == labels


def test_a_restart_policy_without_condition_restarts_nothing_as_compose_creates_it(
    tmp_path: Path, home: Path
) -> None:
    """compose gives the engine deploy.restart_policy's condition as it is, an empty one
    (never restart) when it is left out, in place of `restart:` too; the deployer warns."""
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": """\
            services:
              web:
                image: "web:1"
                restart: always
                deploy:
                  restart_policy: {delay: 5s}
              worker:
                image: "web:1"
                deploy:
                  restart_policy: {max_attempts: 3}
              job:
                image: "web:1"
                deploy:
                  restart_policy: {condition: on-failure, max_attempts: 3}
            """,
        },
    )
    theirs = compose_config(project, ["compose.yaml"], {}, home)
    mine = deployer(tmp_path, "app/compose.yaml", {})
    same(mine, theirs)
    assert [mine.service(s).restart for s in ("web", "worker", "job")] == [
        "no",
        "no",
        "on-failure:3",
    ]
    assert [w.path for w in mine.warnings if "no condition" in w.message] == [
        "services.web.deploy.restart_policy",
        "services.worker.deploy.restart_policy",
    ]


@pytest.mark.parametrize("condition", ["any", "none"])
def test_max_attempts_with_a_condition_other_than_on_failure_is_refused(
    tmp_path: Path, condition: str
) -> None:
    """The engine refuses a retry count with any policy but on-failure: `docker compose up`
    fails on it (`config` lets it pass)."""
    write(
        tmp_path,
        {
            "compose.yaml": f"""\
            services:
              web:
                image: "web:1"
                deploy:
                  restart_policy: {{condition: {condition}, max_attempts: 3}}
            """
        },
    )
    with pytest.raises(ManifestError) as e:
        deployer(tmp_path, "compose.yaml", {})
    assert "services.web.deploy.restart_policy.max_attempts" in str(e.value)
    assert "docker compose up fails" in str(e.value)


def test_sysctls_annotations_and_logging_merged_as_compose_merges_them(
    tmp_path: Path, home: Path
) -> None:
    """sysctls and annotations, in either form, merge as mappings; a logging override
    that names another driver replaces the logging section (the first driver's options are
    not the second's), one with the same driver or none adds its options."""
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": """\
            services:
              web:
                image: "web:1"
                sysctls: ["net.core.somaxconn=1024"]
                annotations: ["a=1"]
                logging: {driver: syslog, options: {tag: web}}
              db:
                image: "db:1"
                sysctls: {net.core.somaxconn: "512"}
                logging: {driver: json-file, options: {max-size: 10m}}
            """,
            "compose.override.yaml": """\
            services:
              web:
                sysctls: ["net.ipv4.tcp_syncookies=1"]
                annotations: {b: "2"}
                logging: {driver: json-file, options: {max-size: 1m}}
              db:
                sysctls: ["net.ipv4.tcp_syncookies=0"]
                logging: {options: {max-file: "3"}}
            """,
        },
    )
    files = ["compose.yaml", "compose.override.yaml"]
    theirs = compose_config(project, files, {}, home)
    mine = deployer(tmp_path, "[app/compose.yaml, app/compose.override.yaml]", {})
    same(mine, theirs)
    web, db = mine.service("web"), mine.service("db")
    assert dict(web.sysctls) == {"net.core.somaxconn": "1024", "net.ipv4.tcp_syncookies": "1"}
    assert web.logging is not None and dict(web.logging.options) == {"max-size": "1m"}
    assert db.logging is not None and dict(db.logging.options) == {
        "max-size": "10m",
        "max-file": "3",
    }


def test_limits_of_0_are_no_limits_as_compose_sends_them(tmp_path: Path, home: Path) -> None:
    """compose sends no limit for a 0 (deploy.resources.limits.pids too: the engine's
    default applies, not an explicit "unlimited")."""
    write(
        tmp_path,
        {
            "compose.yaml": """\
            services:
              web:
                image: "web:1"
                mem_limit: 0
                cpus: 0
                shm_size: 0
                pids_limit: 0
                deploy:
                  resources:
                    limits: {memory: "0", cpus: "0", pids: 0}
                    reservations: {memory: "0"}
            """
        },
    )
    theirs = compose_config(tmp_path, ["compose.yaml"], {}, home)
    mine = deployer(tmp_path, "compose.yaml", {})
    same(mine, theirs)
    assert mine.service("web").pids_limit is None


def compose_refuses(project: Path, files: list[str], home: Path) -> str:
    """Compose's message for a project it refuses (`docker compose config` exits non-zero)."""
    args = [str(composev2.binary())]
    for f in files:
        args += ["-f", f]
    proc = subprocess.run(
        [*args, "config", "--format", "json"],
        cwd=project,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0, proc.stdout
    return proc.stderr


def test_an_override_s_ulimit_replaces_the_entry_whole(tmp_path: Path, home: Path) -> None:
    """An override (a second file, or `extends`) replaces a ulimit entry whole: a number
    over `{soft, hard}`, `{soft, hard}` over a number; the entries it does not name stay."""
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": """\
            services:
              web:
                image: "web:1"
                ulimits:
                  nofile: {soft: 1000, hard: 2000}
                  nproc: 100
                  memlock: {soft: 1, hard: 2}
              worker:
                extends: web
                ulimits:
                  nofile: 300
                  nproc: {soft: 10, hard: 20}
            """,
            "compose.override.yaml": """\
            services:
              web:
                ulimits:
                  nofile: 4000
                  nproc: {soft: 50, hard: 60}
            """,
        },
    )
    files = ["compose.yaml", "compose.override.yaml"]
    theirs = compose_config(project, files, {}, home)
    mine = deployer(tmp_path, "[app/compose.yaml, app/compose.override.yaml]", {})
    same(mine, theirs)
    assert mine.service("web").ulimits == (
        ("memlock", 1, 2),
        ("nofile", 4000, 4000),
        ("nproc", 50, 60),
    )
    assert mine.service("worker").ulimits == (
        ("memlock", 1, 2),
        ("nofile", 300, 300),
        ("nproc", 10, 20),
    )


@pytest.mark.parametrize("how", ["override", "extends"])
def test_a_ulimit_override_with_soft_or_hard_alone_is_refused_as_compose_refuses_it(
    tmp_path: Path, home: Path, how: str
) -> None:
    """`nofile: {soft: 500}` over `{soft: 1000, hard: 2000}` is not merged into
    `{soft: 500, hard: 2000}`: compose refuses the override (each file must give both), and
    so does the deployer, at the override's line."""
    project = tmp_path / "app"
    base = 'image: "web:1"\n    ulimits: {nofile: {soft: 1000, hard: 2000}}'
    if how == "override":
        files = {
            "compose.yaml": f"services:\n  web:\n    {base}\n",
            "compose.override.yaml": "services:\n  web:\n    ulimits:\n      nofile: {soft: 500}\n",
        }
    else:
        files = {
            "compose.yaml": f"services:\n  base:\n    {base}\n  web:\n    extends: base\n"
            "    ulimits:\n      nofile: {soft: 500}\n",
        }
    write(project, files)
    names = list(files)
    assert "services.web.ulimits.nofile must be a integer or string" in compose_refuses(
        project, names, home
    )
    with pytest.raises(ManifestError) as e:
        deployer(tmp_path, "[" + ", ".join(f"app/{n}" for n in names) + "]", {})
    (p,) = e.value.problems
    where = "compose.override.yaml" if how == "override" else "compose.yaml"
    line = files[where].splitlines().index("      nofile: {soft: 500}") + 1
    assert (Path(p.file).name, p.line, p.path) == (where, line, "services.web.ulimits.nofile")
    assert "missing required key `hard`" in p.message


TWINS_REFUSED = [
    # (the service's keys, compose's pair, the deployer's key path, words of its message)
    ("mem_limit: 1g\n    deploy: {resources: {limits: {cpus: '1'}}}", "mem_limit",
     "services.web.mem_limit", "deploy.resources.limits sets no memory"),
    ("mem_limit: 1g\n    deploy: {resources: {limits: {}}}", "mem_limit",
     "services.web.mem_limit", "deploy.resources.limits sets no memory"),
    ("mem_limit: 1g\n    deploy: {resources: {limits: {memory: '0'}}}", "mem_limit",
     "services.web.deploy.resources.limits.memory", "mem_limit (1g) and deploy.resources"),
    ("mem_limit: 1g\n    deploy: {resources: {limits: {memory: 2g}}}", "mem_limit",
     "services.web.deploy.resources.limits.memory", "mem_limit (1g) and deploy.resources"),
    ("cpus: 1\n    deploy: {resources: {limits: {memory: 1g}}}", "cpus",
     "services.web.cpus", "deploy.resources.limits sets no cpus"),
    ("cpus: 1\n    deploy: {resources: {limits: {cpus: '2'}}}", "cpus",
     "services.web.deploy.resources.limits.cpus", "cpus (1) and deploy.resources"),
    ("pids_limit: -1\n    deploy: {resources: {limits: {memory: 1g}}}", "pids_limit",
     "services.web.pids_limit", "deploy.resources.limits sets no pids"),
    ("pids_limit: 10\n    deploy: {resources: {limits: {pids: 20}}}", "pids_limit",
     "services.web.deploy.resources.limits.pids", "pids_limit (10) and deploy.resources"),
    ("mem_reservation: 1g\n    deploy: {resources: {reservations: {cpus: '1'}}}",
     "mem_reservation", "services.web.mem_reservation",
     "deploy.resources.reservations sets no memory"),
    ("mem_reservation: 1g\n    deploy: {resources: {reservations: {memory: 2g}}}",
     "mem_reservation", "services.web.deploy.resources.reservations.memory",
     "mem_reservation (1g) and deploy.resources"),
]  # fmt: skip


@pytest.mark.parametrize(("keys", "pair", "path", "words"), TWINS_REFUSED)
def test_a_limit_set_twice_differently_is_refused_as_compose_refuses_it(
    tmp_path: Path, home: Path, keys: str, pair: str, path: str, words: str
) -> None:
    """A limit set at the service's top level and in a `deploy.resources` mapping the
    service writes must be one value: compose refuses the project otherwise, a mapping that
    leaves the key out (no limit) included. The deployer refuses the same, at the key."""
    write(tmp_path, {"compose.yaml": f"services:\n  web:\n    image: 'web:1'\n    {keys}\n"})
    twin = {
        "mem_limit": "deploy.resources.limits.memory",
        "cpus": "deploy.resources.limits.cpus",
        "pids_limit": "deploy.resources.limits.pids",
        "mem_reservation": "deploy.resources.reservations.memory",
    }[pair]
    assert f"can't set distinct values on '{pair}' and '{twin}'" in compose_refuses(
        tmp_path, ["compose.yaml"], home
    )
    with pytest.raises(ManifestError) as e:
        deployer(tmp_path, "compose.yaml", {})
    (p,) = e.value.problems
    assert p.path == path and words in p.message, p.render()
    assert p.line == (4 if path == f"services.web.{pair}" else 5)
    assert "docker compose refuses" in p.message and p.fix


def test_the_same_limit_set_twice_or_one_of_0_is_accepted_as_compose_accepts_it(
    tmp_path: Path, home: Path
) -> None:
    """The same value both ways (1024m is 1g), a top-level 0 (no limit), or no mapping of
    that kind beside it: compose accepts each, and so does the deployer, with compose's
    limits."""
    write(
        tmp_path,
        {
            "compose.yaml": """\
            services:
              same:
                image: "web:1"
                mem_limit: 1024m
                cpus: 0.5
                pids_limit: 10
                deploy: {resources: {limits: {memory: 1g, cpus: "0.50", pids: 10}}}
              zero:
                image: "web:1"
                mem_limit: 0
                deploy: {resources: {limits: {cpus: "1"}}}
              other:
                image: "web:1"
                mem_limit: 1g
                cpus: 1
                deploy: {resources: {reservations: {cpus: "2"}}}
              reserved:
                image: "web:1"
                mem_reservation: 1g
                deploy: {resources: {limits: {memory: 2g}}}
            """
        },
    )
    theirs = compose_config(tmp_path, ["compose.yaml"], {}, home)
    mine = deployer(tmp_path, "compose.yaml", {})
    same(mine, theirs)
    assert mine.service("other").memory == 1 << 30


def test_a_limit_set_twice_differently_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from deployer.cli import main

    write(
        tmp_path,
        {
            "compose.yaml": "services:\n  web:\n    image: 'web:1'\n    mem_limit: 1g\n"
            "    deploy: {resources: {limits: {cpus: '1'}}}\n"
        },
    )
    (tmp_path / "deploy.yml").write_text(
        "app: demo\ncompose: compose.yaml\nenvironments:\n  production:\n"
        "    hosts: [ssh://deploy@host.example.com]\n"
    )
    code = main(["validate", "-f", str(tmp_path / "deploy.yml"), "--env", "production"])
    assert code == 2
    out = capsys.readouterr()
    err = out.out + out.err
    assert "compose.yaml:4:5: services.web.mem_limit: mem_limit is 1g" in err
    assert "(fix: set it once: write `memory: 1g` in deploy.resources.limits" in err


def test_equal_entries_of_one_file_are_kept_once_as_compose_keeps_them(
    tmp_path: Path, home: Path
) -> None:
    """compose keeps one of equal entries written in one file: the first of equal ports
    (any spelling), expose, dns, dns_search, dns_opt, cap_add, cap_drop, tmpfs, links and
    env_file entries; the last of two volumes, configs or secrets with one target, and of
    two `environment` items with one key (`- KEY` alone, with no such variable: unset)."""
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": """\
            services:
              web:
                image: "web:1"
                ports: ["8080:80", "9090:90", "8080:80", {target: 80, published: "8080"},
                        "80", "80", "7000-7001:70-71", "7000:70"]
                expose: ["80", 80, 81, "80/tcp"]
                dns: [1.1.1.1, 8.8.8.8, 1.1.1.1]
                dns_search: [a.example, b.example, a.example]
                dns_opt: ["ndots:2", "timeout:1", "ndots:3", "ndots:2"]
                cap_add: [CHOWN, CHOWN]
                cap_drop: [MKNOD, NET_RAW, MKNOD]
                tmpfs: [/run, /tmp, /run]
                environment: [A=1, B=2, A=3, C=1, C, D, D=4]
                volumes: ["./a:/data", "./b:/data", "one:/other",
                          {type: volume, source: two, target: /other}, "/c", "one:/c:ro"]
                links: [db, "db:database", db]
                secrets: [s1, s1, {source: s2, target: /run/secrets/s1},
                          {source: s1, target: /x}, {source: s2, target: /x}]
                configs: [c1, c1, {source: c1, target: /y}, {source: c2, target: /y}]
              worker:
                image: "web:1"
                env_file: [one.env, two.env, one.env]
              db: {image: "db:1"}
            volumes: {one: {}, two: {}}
            secrets: {s1: {file: ./s1}, s2: {file: ./s2}}
            configs: {c1: {file: ./c1}, c2: {file: ./c2}}
            """,
            "one.env": "A=1\n",
            "two.env": "A=2\n",
            "s1": "one\n",
            "s2": "two\n",
            "c1": "c\n",
            "c2": "c\n",
            "a/x": "",
            "b/x": "",
        },
    )
    theirs = compose_config(project, ["compose.yaml"], {}, home)
    mine = deployer(tmp_path, "app/compose.yaml", {})
    same(mine, theirs)
    web = mine.service("web")
    assert web.env_dict == {"A": "3", "B": "2", "D": "4"}
    assert mine.service("worker").env_dict == {"A": "2"}  # one.env, two.env
    assert len(web.ports) == 5 and web.expose == ("80", "81", "80/tcp")
    assert web.dns == ("1.1.1.1", "8.8.8.8") and web.cap_add == ("CHOWN",)
    assert sorted((f.kind, f.name, f.target) for f in web.files if f.kind != "file") == [
        ("config", "c1", "/c1"),
        ("config", "c2", "/y"),
        ("secret", "s2", "/run/secrets/s1"),
        ("secret", "s2", "/x"),
    ]
    assert {v.target: v.source for v in web.volumes if v.type == "volume"} == {
        "/other": "two",
        "/c": "one",
    }
    twice = [w.path for w in mine.warnings if "set twice" in w.message]
    assert twice == [f"services.web.environment[{i}]" for i in (2, 4, 6)]


@pytest.mark.parametrize(
    ("key", "items"),
    [
        ("security_opt", '["no-new-privileges:true", "label:disable", "no-new-privileges:true"]'),
        ("group_add", '[mail, "12", mail]'),
        ("volumes_from", '[db, "db:ro", db]'),
        ("device_cgroup_rules", '["c 1:3 mr", "c 1:5 r", "c 1:3 mr"]'),
        ("extra_hosts", '["a.example:10.0.0.1", "b.example:10.0.0.2", "a.example:10.0.0.1"]'),
        ("networks", "[default, back, default]"),
    ],
)
def test_equal_entries_compose_refuses_are_refused_at_the_second(
    tmp_path: Path, home: Path, key: str, items: str
) -> None:
    """compose refuses these lists with two equal entries ("items at 0 and 2 are equal"),
    where it keeps one of others: so does the deployer, at the second entry."""
    write(
        tmp_path,
        {
            "compose.yaml": f"""\
            services:
              web:
                image: "web:1"
                {key}: {items}
              db: {{image: "db:1"}}
            networks: {{back: {{}}}}
            """
        },
    )
    said = compose_refuses(tmp_path, ["compose.yaml"], home)
    assert f"services.web.{key} items at 0 and 2 are equal" in said or (
        key == "extra_hosts" and "services.web.extra_hosts must be a mapping" in said
    )
    with pytest.raises(ManifestError) as e:
        deployer(tmp_path, "compose.yaml", {})
    ours = [p for p in e.value.problems if "written twice" in p.message]  # not the policy's
    assert [(p.path, p.line) for p in ours] == [(f"services.web.{key}[2]", 4)]
    assert f"(here and as {key}[0] at compose.yaml:4): docker compose refuses" in ours[0].message


def test_an_override_s_entry_equal_to_the_base_s_is_refused_as_compose_refuses_it(
    tmp_path: Path, home: Path
) -> None:
    """compose checks the merged lists: security_opt (group_add, volumes_from...) written in
    the base and again in an override is refused, at the override's line."""
    project = tmp_path / "app"
    write(
        project,
        {
            "compose.yaml": 'services:\n  web:\n    image: "web:1"\n'
            '    security_opt: ["no-new-privileges:true"]\n',
            "compose.override.yaml": "services:\n  web:\n"
            '    security_opt: ["no-new-privileges:true"]\n',
        },
    )
    files = ["compose.yaml", "compose.override.yaml"]
    assert "services.web.security_opt items at 0 and 1 are equal" in compose_refuses(
        project, files, home
    )
    with pytest.raises(ManifestError) as e:
        deployer(tmp_path, "[app/compose.yaml, app/compose.override.yaml]", {})
    (p,) = e.value.problems
    assert (Path(p.file).name, p.line, p.path) == (
        "compose.override.yaml",
        3,
        "services.web.security_opt[0]",  # its index in compose.override.yaml
    )
    assert "(here and as security_opt[0] at compose.yaml:4)" in p.message
