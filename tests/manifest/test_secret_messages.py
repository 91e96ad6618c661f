"""No secret in any message: a problem quotes the manifest as written (`${DATABASE_URL}`),
never the interpolated value, whatever its length, in validate's text and JSON and in the
output of plan and deploy (which refuse the manifest before touching a host).

The secrets are written with letters the messages never use (Cyrillic), so a leak of any
piece of a secret, down to one character, is seen."""

from __future__ import annotations

import io
import json
import os
import pathlib
import re
import tempfile
from contextlib import redirect_stderr

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployer.cli import main
from deployer.manifest import check_manifest

SECRET_CHARS = re.compile("[\u0400-\u04ff]")  # Cyrillic

SECRETS = {
    "one": "Ж",
    "three": "ЖЯЖ",
    "long": "ЖзЯ-sЁcrЮt-ЮжЯ-ЩШЭЫЮ",  # 21 characters
    "url": "postgres://shop:пароль-Ж7@db.internal:5432/shop",
}

# key -> the service lines (or top-level lines starting at column 0) with ${S} in them
TEMPLATES = {
    "ports_short": '    ports: ["${S}"]',
    "ports_in_mapping": '    ports: ["80:${S}"]',
    "ports_long_target": '    ports: [{target: "${S}"}]',
    "ports_long_published": '    ports: [{target: 80, published: "${S}"}]',
    "ports_host_ip": '    ports: [{target: 80, host_ip: "${S}"}]',
    "expose": '    expose: ["${S}"]',
    "stop_grace_period": '    stop_grace_period: "${S}"',
    "restart": '    restart: "${S}"',
    "stop_signal": '    stop_signal: "${S}"',
    "working_dir": '    working_dir: "${S}"',
    "image": None,  # services.web.image
    "tmpfs": '    tmpfs: ["${S}"]',
    "volume_short": '    volumes: ["${S}"]',
    "volume_option": '    volumes: ["/srv:/x:${S}"]',  # a warning: compose ignores the word
    "volume_long_target": '    volumes: [{type: bind, source: /srv, target: "${S}"}]',
    "extra_hosts": '    extra_hosts: ["db:${S}"]',
    "memory": '    deploy: {resources: {limits: {memory: "${S}"}}}',
    "cpus": '    deploy: {resources: {limits: {cpus: "${S}"}}}',
    "replicas": '    deploy: {replicas: "${S}"}',
    "update_order": '    deploy: {update_config: {order: "${S}"}}',
    "healthcheck_interval": '    healthcheck: {test: ["CMD", "true"], interval: "${S}"}',
    "pull_policy": '    pull_policy: "${S}"',
    "network_mode": '    network_mode: "${S}"',
    "ipc": '    ipc: "${S}"',
    "depends_on": '    depends_on: ["${S}"]',
    "env_file": '    env_file: "${S}"',
    "command": "    command: \"sh -c '${S}\"",
    "rollout_lock_ttl": 'rollout: {lock_ttl: "${S}"}',
    "rollout_batch": 'rollout: {batch: "${S}"}',
    "host_url": None,  # environments.production.hosts
    "env_url": None,  # environments.production.url
}


# what is a warning, not a refusal: shown without the secret all the same
WARNED = {"volume_option"}


def manifest(key: str) -> str:
    env = "  production: {}"
    if key == "host_url":
        env = '  production: {hosts: ["tcp://docker1:${S}"]}'
    elif key == "env_url":
        env = '  production: {url: "${S}"}'
    line = TEMPLATES[key] or ""
    service = [line] if line.startswith("    ") else []
    top = [line] if line and not line.startswith("    ") else []
    if key == "image":
        service = ['    image: "${S}"']
    return "\n".join(
        [
            "app: shop",
            "environments:",
            env,
            "services:",
            "  web:",
            *([] if key == "image" else ["    image: registry.example.com/shop/web:1.0"]),
            *service,
            *top,
            "",
        ]
    )


def run(args: list[str], text: str, secret: str) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "deploy.yml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        out, err = io.StringIO(), io.StringIO()
        old = os.environ.get("S")
        os.environ["S"] = secret
        try:
            with redirect_stderr(err):
                code = main([*args, "-f", path], out=out)
        finally:
            if old is None:
                del os.environ["S"]
            else:
                os.environ["S"] = old
        return code, out.getvalue() + err.getvalue()


@pytest.fixture(autouse=True)
def _no_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("CI_ENVIRONMENT_NAME", "DOCKER_HOST"):
        monkeypatch.delenv(k, raising=False)


@pytest.mark.parametrize("secret", sorted(SECRETS), ids=str)
@pytest.mark.parametrize("key", sorted(TEMPLATES), ids=str)
def test_validate_never_shows_a_secret(key: str, secret: str) -> None:
    value = SECRETS[secret]
    text = manifest(key)
    expected = 0 if key in WARNED and ":" not in value else 2  # a colon: another word
    code, out = run(["validate"], text, value)
    assert code == expected, out
    assert not SECRET_CHARS.search(out), out
    code, out = run(["validate", "--format", "json"], text, value)
    assert code == expected, out
    assert not SECRET_CHARS.search(out), out
    problems = json.loads(out)["problems" if expected else "warnings"]
    assert any("${S}" in p["message"] or "not shown" in p["message"] for p in problems) or (
        key in ("replicas", "update_order", "pull_policy", "network_mode", "ipc", "command")
    ), problems


@pytest.mark.parametrize("command", ["plan", "deploy"])
@pytest.mark.parametrize("key", ["ports_short", "stop_grace_period", "volume_long_target"])
def test_plan_and_deploy_refuse_without_showing_a_secret(command: str, key: str) -> None:
    for value in SECRETS.values():
        code, out = run([command], manifest(key), value)
        assert code == 2, out
        assert not SECRET_CHARS.search(out), out
        assert "${S}" in out, out


def test_the_message_quotes_the_manifest_as_written() -> None:
    code, out = run(["validate"], manifest("ports_short"), "supersecret-value")
    assert code == 2
    assert '"${S}" is not a port mapping' in out, out


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.sampled_from(sorted(TEMPLATES)),
    st.text(alphabet="ЖЯЮЁжя:/@-._ 0123456789,=abc", min_size=1, max_size=30).filter(
        lambda s: SECRET_CHARS.search(s) is not None
    ),
)
def test_property_no_piece_of_a_secret_in_any_problem(key: str, secret: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "deploy.yml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(manifest(key))
        report = check_manifest(path, None, {"S": secret})
    for p in [*report.problems, *report.warnings]:
        text = p.render() + json.dumps(p.as_dict(), ensure_ascii=False)
        assert not SECRET_CHARS.search(text), (secret, text)


def test_a_value_interpolated_to_nothing_leaves_messages_as_they_are(
    tmp_path: pathlib.Path,
) -> None:
    """`platform: ${DOCKER_PLATFORM:-}` (Sentry's compose file) is empty once interpolated:
    no message gets it put back between each of its characters."""
    (tmp_path / "deploy.yml").write_text(
        "app: demo\nenvironments: {production: {}}\nservices:\n"
        "  web:\n    image: web:1\n    hostname: '${EMPTY:-}'\n    ports: ['80:80:80']\n"
    )
    report = check_manifest(tmp_path / "deploy.yml", "production", {})
    text = "\n".join(p.render() for p in report.problems)
    assert report.problems and "${EMPTY:-}" not in text.replace("'${EMPTY:-}'", ""), text


def test_a_value_put_back_is_not_read_again(tmp_path: pathlib.Path) -> None:
    """airflow's `${AIRFLOW_IMAGE_NAME:-apache/airflow:|version|}` is quoted as written,
    though another key's value (`airflow`) stands inside it: what is put back into a message
    is never replaced again."""
    path = tmp_path / "deploy.yml"
    path.write_text(
        "app: shop\nenvironments:\n  production: {}\nservices:\n  web:\n"
        '    image: "${IMAGE:-apache/airflow:|version|}"\n'
        '    environment: {USER_NAME: "${USER_NAME:-airflow}"}\n'
    )
    report = check_manifest(path, None, {})
    (problem,) = report.problems
    assert problem.message.startswith('"${IMAGE:-apache/airflow:|version|}" is not a valid'), (
        problem.render()
    )


def test_a_value_quoted_as_written_is_shown_as_written(tmp_path: pathlib.Path) -> None:
    """supabase binds `${DOCKER_SOCKET_LOCATION}:/var/run/docker.sock`, the variable's value
    being /var/run/docker.sock too: the volume is quoted as the file writes it."""
    path = tmp_path / "deploy.yml"
    path.write_text(
        "app: shop\nenvironments:\n  production: {}\nservices:\n  web:\n"
        "    image: registry.example.com/shop/web:1\n"
        '    volumes: ["${SOCK}:/var/run/docker.sock:ro"]\n'
    )
    report = check_manifest(path, None, {"SOCK": "/var/run/docker.sock"})
    (problem,) = report.problems
    assert '"${SOCK}:/var/run/docker.sock:ro"' in problem.message, problem.render()


def test_a_flag_or_a_bare_path_is_no_secret_to_hide_in_the_message_s_own_words(
    tmp_path: pathlib.Path,
) -> None:
    """laradock's variables hold `true`, `default` and `../`: a message's own `true` (a
    literal `privileged: true`) and its `[...]` stay as they are; a telling value is still
    named, never shown."""
    path = tmp_path / "deploy.yml"
    path.write_text(
        "app: shop\nenvironments:\n  production: {}\nservices:\n  web:\n"
        "    image: registry.example.com/shop/web:1\n"
        "    privileged: true\n"
        '    environment: {A: "${FLAG}", B: "${MODE}", C: "${UP}", D: "${TOKEN}"}\n'
        '    ports: ["${TOKEN}"]\n'
    )
    env = {"FLAG": "true", "MODE": "default", "UP": "../", "TOKEN": "Жs3cret"}
    report = check_manifest(path, None, env)
    text = "\n".join(p.render() for p in report.problems)
    assert "privileged: true" in text and "allow: [...]" in text, text
    assert "${FLAG}" not in text and "${UP}" not in text, text
    assert "Ж" not in text and "s3cret" not in text, text


def test_the_manifest_s_own_names_are_shown_though_a_value_holds_them(
    tmp_path: pathlib.Path,
) -> None:
    """laradock: `service "mailer"` read `service "${MAILU_DMARC_RUF}er"` because a
    variable's value was `mail`. A service's name is the manifest's own word."""
    path = tmp_path / "deploy.yml"
    path.write_text(
        "app: shop\nenvironments:\n  production: {}\nservices:\n"
        '  mailer: {image: "registry.example.com/shop/mail:1", ports: ["8025:8025"]}\n'
        '  webmail:\n    image: "registry.example.com/shop/web:1"\n    ports: ["8025:80"]\n'
        '    environment: {A: "${MAIL}", B: "${SITES}"}\n'
    )
    report = check_manifest(path, None, {"MAIL": "mail", "SITES": "/srv/webmail/sites"})
    (problem,) = report.problems
    assert 'already published by service "mailer"' in problem.message, problem.render()


def test_a_value_that_is_one_of_the_manifest_s_names_is_left_in_the_message_s_words(
    tmp_path: pathlib.Path,
) -> None:
    """full-stack-fastapi's POSTGRES_DB=app: the fix's own "if this app really needs it"
    read "if this ${POSTGRES_DB} really needs it" (`app` is a key of every manifest)."""
    path = tmp_path / "deploy.yml"
    path.write_text(
        "app: shop\nenvironments:\n  production: {}\nservices:\n  web:\n"
        "    image: registry.example.com/shop/web:1\n"
        '    environment: {DB: "${POSTGRES_DB}"}\n'
        '    volumes: ["/var/run/docker.sock:/var/run/docker.sock"]\n'
    )
    report = check_manifest(path, None, {"POSTGRES_DB": "app"})
    (problem,) = report.problems
    assert "if this app really needs it" in problem.render(), problem.render()


@pytest.mark.parametrize(
    ("override", "written"),
    [
        ('    labels: ["io.deployer.${S}=1"]', '"io.deployer.${S}"'),
        ('    networks: ["${S}"]', '"${S}"'),
    ],
    ids=["label", "network"],
)
def test_a_key_an_override_s_list_item_interpolates_is_shown_as_written(
    tmp_path: pathlib.Path, override: str, written: str
) -> None:
    """Merged with another file's, a list item (`- KEY=VALUE`) becomes a mapping key that
    is interpolated: neither the message nor its path shows the value."""
    (tmp_path / "compose.yaml").write_text(
        'services:\n  web:\n    image: "web:1"\n    labels: ["a=1"]\n    networks: [default]\n'
    )
    (tmp_path / "override.yaml").write_text(f"services:\n  web:\n{override}\n")
    files = f"[{tmp_path}/compose.yaml, {tmp_path}/override.yaml]"
    text = f"app: shop\ncompose: {files}\nenvironments:\n  production: {{}}\n"
    code, out = run(["validate"], text, SECRETS["long"])
    assert code == 2, out
    assert not SECRET_CHARS.search(out), out
    assert written in out, out
