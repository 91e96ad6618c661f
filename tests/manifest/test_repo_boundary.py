"""Only files of the repository are shipped to the hosts: a relative source that resolves
outside the checkout (``../`` past its top, or a symlink of the repository pointing out,
at a key of the CI runner say) is refused at its line, exit 2, nothing read. A File-type
variable's file, written as its absolute path, is still a secret's or config's source."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.manifest import check_manifest, load_manifest

COMPOSE = """\
services:
  web:
    image: registry.example.com/web:1
    volumes: ["{bind}:/etc/app/key.pem:ro"]
"""


def checkout(tmp_path: Path, bind: str) -> Path:
    outside = tmp_path / "runner"
    outside.mkdir()
    (outside / "key.pem").write_text("runner's key\n")
    repo = tmp_path / "builds" / "shop"
    (repo / ".git").mkdir(parents=True)
    (repo / "conf").mkdir()
    (repo / "conf" / "app.pem").write_text("app\n")
    (repo / "inside.pem").symlink_to("conf/app.pem")
    (repo / "outside.pem").symlink_to(outside / "key.pem")
    (repo / "docker-compose.yml").write_text(COMPOSE.format(bind=bind))
    m = repo / "deploy.yml"
    m.write_text("app: shop\ncompose: docker-compose.yml\nenvironments: {prod: {}}\n")
    return m


def problems(m: Path, env: dict[str, str] | None = None) -> list[str]:
    return [p.render() for p in check_manifest(m, None, env or {}).problems]


def test_a_path_past_the_top_of_the_checkout_is_refused(tmp_path: Path) -> None:
    (problem,) = problems(checkout(tmp_path, "../../runner/key.pem"))
    assert "docker-compose.yml:4:15: services.web.volumes[0]" in problem, problem
    assert "is outside the repository checkout" in problem, problem
    assert "runner's key" not in problem


def test_a_symlink_of_the_repository_pointing_out_is_refused(tmp_path: Path) -> None:
    (problem,) = problems(checkout(tmp_path, "./outside.pem"))
    assert '"./outside.pem" is outside the repository checkout' in problem, problem
    assert str(tmp_path / "runner" / "key.pem") in problem


def test_a_symlink_inside_the_checkout_is_shipped(tmp_path: Path) -> None:
    m = checkout(tmp_path, "./inside.pem")
    assert problems(m) == []
    (f,) = load_manifest(m, "prod", {}).service("web").files
    assert f.source == str(m.parent / "inside.pem")


def test_the_ci_project_dir_is_the_top_for_a_compose_file_in_a_subdirectory(
    tmp_path: Path,
) -> None:
    m = checkout(tmp_path, "./x")
    (m.parent / ".git").rmdir()  # no git directory: CI_PROJECT_DIR says where the top is
    sub = m.parent / "deploy"
    sub.mkdir()
    (sub / "docker-compose.yml").write_text(COMPOSE.format(bind="../conf/app.pem"))
    (sub / "deploy.yml").write_text(
        "app: shop\ncompose: docker-compose.yml\nenvironments: {prod: {}}\n"
    )
    assert problems(sub / "deploy.yml", {"CI_PROJECT_DIR": str(m.parent)}) == []
    assert problems(sub / "deploy.yml") != []  # without it, the top is deploy/ itself


def test_a_file_type_variable_outside_the_checkout_is_a_secret_source(tmp_path: Path) -> None:
    m = checkout(tmp_path, "./conf/app.pem")
    compose = m.parent / "docker-compose.yml"
    compose.write_text(
        compose.read_text() + '    secrets: [key]\nsecrets:\n  key: {file: "${KEY_FILE}"}\n'
    )
    key = str(tmp_path / "runner" / "key.pem")
    assert problems(m, {"KEY_FILE": key}) == []
    compose.write_text(compose.read_text().replace("${KEY_FILE}", "../../runner/key.pem"))
    (problem,) = problems(m)
    assert "secrets.key.file" in problem and "outside the repository checkout" in problem


def test_an_env_file_out_of_the_checkout_is_refused_unread(tmp_path: Path) -> None:
    """A committed `app.env` linked to `/proc/self/environ` would read the deploy job's
    own variables into the app's containers; `../` past the top, a file of the runner."""
    m = checkout(tmp_path, "./conf/app.pem")
    compose = m.parent / "docker-compose.yml"
    (m.parent / "app.env").symlink_to("/proc/self/environ")
    env_files = '    env_file: ["./app.env", "../../runner/key.pem"]\n'
    compose.write_text(compose.read_text() + env_files)
    got = problems(m)
    assert len(got) == 2, got
    assert '"./app.env" is outside the repository checkout' in got[0], got
    assert "services.web.env_file[0]" in got[0] and "env_file: ${MY_FILE}" in got[0], got
    assert "services.web.env_file[1]" in got[1], got
    (m.parent / "app.env").unlink()
    (m.parent / "app.env").write_text("A=1\n")
    compose.write_text(compose.read_text().replace(', "../../runner/key.pem"', ""))
    assert problems(m) == []
    assert ("A", "1") in load_manifest(m, "prod", {}).service("web").environment


PROXY = """\
app: shop
environments:
  prod:
    proxy: {{https: "127.0.0.1:8443", acme: {{ca_root: "{ca_root}"}}}}
services:
  web:
    image: registry.example.com/web:1
    proxy: {{host: shop.example.com, port: 80, tls: {{certificate: "{cert}", key: "{key}"}}}}
"""


def test_the_proxys_pem_files_are_files_of_the_checkout_read_beside_the_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The route's certificate and key, and ACME's trusted root, go into the edge proxy on
    the hosts: a relative one is a file of the repository (beside the file naming it,
    wherever the job runs from); one that resolves outside the checkout is refused unread,
    a File-type variable's absolute path is taken as it is."""
    m = checkout(tmp_path, "./conf/app.pem")
    (m.parent / "tls").mkdir()
    (m.parent / "tls" / "site.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (m.parent / "tls" / "runner.pem").symlink_to(tmp_path / "runner" / "key.pem")
    (m.parent / "tls" / "environ.pem").symlink_to("/proc/self/environ")
    m.write_text(
        PROXY.format(ca_root="./tls/environ.pem", cert="tls/site.pem", key="./tls/runner.pem")
    )
    got = problems(m)
    assert len(got) == 2, got
    assert "environments.prod.proxy.acme.ca_root" in got[0], got
    assert '"./tls/environ.pem" is outside the repository checkout' in got[0], got
    assert "services.web.proxy.tls.key" in got[1], got
    assert "outside the repository checkout" in got[1] and "key: ${MY_FILE}" in got[1], got

    absolute = str(tmp_path / "runner" / "key.pem")  # a File-type variable's file
    m.write_text(PROXY.format(ca_root="tls/site.pem", cert="tls/site.pem", key="${KEY_FILE}"))
    monkeypatch.chdir(tmp_path)  # the job runs from elsewhere
    assert problems(m, {"KEY_FILE": absolute}) == []
    loaded = load_manifest(m, "prod", {"KEY_FILE": absolute})
    route = loaded.service("web").proxy
    assert route is not None and loaded.environment.proxy is not None
    assert route.certificate == str(m.parent / "tls" / "site.pem")
    assert route.key == absolute
    assert loaded.environment.proxy.acme_ca_root == str(m.parent / "tls" / "site.pem")


JOB = {"CI_JOB_TOKEN": "glcbt-SENTINEL-job-token", "MASKED_PASSWORD": "SENTINEL-masked-value"}


@pytest.mark.parametrize(
    ("lines", "where", "key"),
    [
        ("    env_file: /proc/self/environ\n", "services.web.env_file", "env_file"),
        ('    env_file: ["/proc/self/environ"]\n', "services.web.env_file[0]", "env_file"),
        ("    label_file: /proc/self/environ\n", "services.web.label_file", "label_file"),
        (
            "    secrets: [env]\nsecrets:\n  env: {file: /proc/self/environ}\n",
            "secrets.env.file",
            "file",
        ),
        (  # a directory a variable names (${HOME}) is never a File-type variable's file
            "    configs: [home]\nconfigs:\n  home: {file: '${RUNNER_HOME}'}\n",
            "configs.home.file",
            "file",
        ),
    ],
)
def test_a_file_of_the_jobs_machine_no_variable_names_is_refused_unread(
    tmp_path: Path, lines: str, where: str, key: str
) -> None:
    """An absolute path outside the checkout is read only when a variable of the job
    names that very file (a File-type CI/CD variable): ``/proc/self/environ`` would put
    the deploy job's own variables, its token and the masked ones, into the container's
    environment (and so into `docker inspect`), a secret or config would ship them."""
    m = checkout(tmp_path, "./conf/app.pem")
    compose = m.parent / "docker-compose.yml"
    compose.write_text(compose.read_text() + lines)
    env = {**JOB, "RUNNER_HOME": str(tmp_path / "runner")}
    (problem,) = problems(m, env)
    assert f"{where}: " in problem, problem
    assert "outside the repository checkout that no variable of the job names" in problem
    assert f"{key}: ${{MY_FILE}}" in problem, problem
    assert "SENTINEL" not in problem


def test_the_file_of_a_file_type_variable_is_read(tmp_path: Path) -> None:
    m = checkout(tmp_path, "./conf/app.pem")
    env_file = tmp_path / "runner" / "PROD_ENV"  # where GitLab writes a File variable
    env_file.write_text("DATABASE_PASSWORD=from-the-file\n")
    compose = m.parent / "docker-compose.yml"
    compose.write_text(compose.read_text() + '    env_file: "${PROD_ENV}"\n')
    env = {**JOB, "PROD_ENV": str(env_file)}
    assert problems(m, env) == []
    web = load_manifest(m, "prod", env).service("web")
    assert ("DATABASE_PASSWORD", "from-the-file") in web.environment
    # written as its path rather than the variable: the same file, still named by one
    compose.write_text(compose.read_text().replace("${PROD_ENV}", str(env_file)))
    assert problems(m, env) == []


def test_a_proxy_key_of_the_jobs_machine_no_variable_names_is_refused(tmp_path: Path) -> None:
    m = checkout(tmp_path, "./conf/app.pem")
    (m.parent / "site.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    m.write_text(PROXY.format(ca_root="site.pem", cert="site.pem", key="/proc/self/environ"))
    (problem,) = problems(m, JOB)
    assert "services.web.proxy.tls.key: " in problem, problem
    assert "no variable of the job names" in problem and "SENTINEL" not in problem


# -- the compose files themselves ------------------------------------------------------------


def _runner(tmp_path: Path) -> tuple[Path, Path]:
    """A shell runner's builds: this project's checkout and another project's beside it,
    whose compose file and `.env` (its secrets) this manifest must not read."""
    mine, other = tmp_path / "builds" / "g" / "mine", tmp_path / "builds" / "g" / "other"
    for d in (mine, other):
        (d / ".git").mkdir(parents=True)
    (other / "docker-compose.yml").write_text(
        "services:\n  db:\n    image: postgres:16\n    environment: {PASSWORD: ${DB_PASSWORD}}\n"
    )
    (other / ".env").write_text("DB_PASSWORD=the-other-projects-secret\n")
    (other / "base.yml").write_text("services:\n  common:\n    image: busybox\n")
    (other / "vars.env").write_text("TAG=1\n")
    return mine, other


def _problems(manifest: Path, environ: dict[str, str]) -> list[str]:
    return [p.render() for p in check_manifest(manifest, "production", environ).problems]


@pytest.mark.parametrize("in_ci", [True, False], ids=["CI_PROJECT_DIR", "git checkout"])
def test_a_compose_file_of_another_checkout_is_refused_unread(tmp_path: Path, in_ci: bool) -> None:
    """`compose: ../other/docker-compose.yml`: on a runner that keeps several projects'
    checkouts side by side, another project's services and its `.env` values (secrets)
    were deployed into this app. Refused at the entry, nothing of it read."""
    mine, _ = _runner(tmp_path)
    (mine / "deploy.yml").write_text(
        "app: shop\ncompose: [../other/docker-compose.yml]\n"
        "environments:\n  production:\n    hosts: [ssh://deploy@h.example.com]\n"
    )
    environ = {"CI_PROJECT_DIR": str(mine)} if in_ci else {}
    problems = _problems(mine / "deploy.yml", environ)
    assert any(
        ":2:" in p
        and 'compose file "../other/docker-compose.yml" is outside the repository '
        f"checkout ({mine.resolve()})"
        in p
        for p in problems
    ), problems
    assert not any("the-other-projects-secret" in p for p in problems)


def test_extends_include_and_their_env_files_of_another_checkout_are_refused(
    tmp_path: Path,
) -> None:
    mine, _ = _runner(tmp_path)
    (mine / "compose.yml").write_text(
        "include:\n  - path: ../other/base.yml\n    env_file: ../other/vars.env\n"
        "services:\n  web:\n    extends: {file: ../other/base.yml, service: common}\n"
    )
    (mine / "deploy.yml").write_text(
        "app: shop\ncompose: [compose.yml]\n"
        "environments:\n  production:\n    hosts: [ssh://deploy@h.example.com]\n"
    )
    problems = _problems(mine / "deploy.yml", {"CI_PROJECT_DIR": str(mine)})
    outside = [p for p in problems if "is outside the repository checkout" in p]
    assert sorted(p.split(": ", 2)[1] for p in outside) == [
        "include[0].env_file",
        "include[0].path",
        "services.web.extends.file",
    ], problems


def test_compose_files_above_the_manifest_in_the_same_repository_are_read(
    tmp_path: Path,
) -> None:
    """The usual layout, `deploy/deploy.yml` beside the repository's compose file."""
    mine, _ = _runner(tmp_path)
    (mine / "docker-compose.yml").write_text("services:\n  web:\n    image: busybox\n")
    (mine / "deploy").mkdir()
    (mine / "deploy" / "deploy.yml").write_text(
        "app: shop\ncompose: [../docker-compose.yml]\n"
        "environments:\n  production:\n    hosts: [ssh://deploy@h.example.com]\n"
    )
    assert _problems(mine / "deploy" / "deploy.yml", {"CI_PROJECT_DIR": str(mine)}) == []
    assert _problems(mine / "deploy" / "deploy.yml", {}) == []
