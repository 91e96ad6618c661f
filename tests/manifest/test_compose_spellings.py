"""Spellings real compose files use that compose reads in one way, checked against the
real ``docker compose config``: a limit of 0 (``${CPUS:-0}``) is no limit, and a host
path that starts with a dot (``.psqlrc``) or a long-syntax bind's bare ``conf/x`` is a
file of the project directory."""

from __future__ import annotations

from pathlib import Path

from deployer.manifest import check_manifest
from deployer.manifest.model import Service
from tests.manifest.test_compose_v2 import compose_config, deployer, write

ZEROS = """\
services:
  limited:
    image: busybox
    mem_limit: 0
    memswap_limit: 0
    mem_reservation: 0
    shm_size: 0
    cpus: 0
    pids_limit: 0
    cpu_shares: 0
    oom_score_adj: 0
    deploy:
      resources:
        limits: {cpus: "${CPUS:-0}", memory: "0"}
        reservations: {cpus: "0", memory: "0"}
  service_level:
    image: busybox
    mem_limit: 256m
    cpus: 0.000
"""


def test_a_limit_of_zero_is_no_limit_as_compose_reads_it(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": ZEROS})
    theirs = compose_config(tmp_path, ["compose.yaml"], {}, tmp_path)["services"]
    m = deployer(tmp_path, "[compose.yaml]", {})
    limited, service_level = m.service("limited"), m.service("service_level")
    assert (limited.cpus, limited.memory) == (None, None)
    for key in ("cpus", "mem_limit", "memswap_limit", "mem_reservation", "shm_size"):
        assert theirs["limited"].get(key) is None, key
    assert theirs["limited"]["deploy"]["resources"]["limits"] == {}
    assert service_level.memory == 256 * 1024 * 1024 == int(theirs["service_level"]["mem_limit"])
    assert service_level.cpus is None
    # a zero limit changes nothing the container gets: the hash of a service without any
    assert limited.config_hash() == _plain(tmp_path / "plain").config_hash()


def _plain(root: Path) -> Service:
    write(root, {"compose.yaml": "services:\n  limited:\n    image: busybox\n"})
    return deployer(root, "[compose.yaml]", {}).service("limited")


def test_a_negative_cpu_count_is_refused_at_its_key(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  a:\n    image: busybox\n    cpus: -1\n"})
    (tmp_path / "deploy.yml").write_text(
        "app: demo\ncompose: [compose.yaml]\nenvironments:\n  production:\n"
        "    hosts: [ssh://deploy@host.example.com]\n"
    )
    report = check_manifest(tmp_path / "deploy.yml", "production", {})
    text = "\n".join(p.render() for p in report.problems)
    assert "compose.yaml:4" in text and "services.a.cpus" in text, text
    assert "0 (no limit) or more" in text, text


DOTS = """\
services:
  db:
    image: busybox
    volumes:
      - .psqlrc:/root/.psqlrc:ro
      - ./.psqlrc:/root/same.psqlrc:ro
      - type: bind
        source: conf/app.ini
        target: /etc/app.ini
        read_only: true
"""


def test_a_dot_file_and_a_bare_long_bind_are_files_of_the_project(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": DOTS, ".psqlrc": "\\set x 1\n", "conf/app.ini": "[a]\n"})
    theirs = compose_config(tmp_path, ["compose.yaml"], {}, tmp_path)["services"]["db"]
    sources = {v["target"]: v["source"] for v in theirs["volumes"]}
    assert sources["/root/.psqlrc"] == str(tmp_path / ".psqlrc") == sources["/root/same.psqlrc"]
    assert sources["/etc/app.ini"] == str(tmp_path / "conf" / "app.ini")
    db = deployer(tmp_path, "[compose.yaml]", {}).service("db")
    files = {f.target: f for f in db.files}
    assert set(files) == {"/root/.psqlrc", "/root/same.psqlrc", "/etc/app.ini"}
    assert files["/root/.psqlrc"].digest == files["/root/same.psqlrc"].digest
    assert files["/etc/app.ini"].source == str(tmp_path / "conf" / "app.ini")
    assert not db.volumes


MAILCOW_ZABBIX = """\
services:
  nginx:
    image: busybox
    command: ["echo", "${COMPOSE_PROJECT_NAME}"]
    ports:
      - "${HTTPS_BIND:-}:${HTTPS_PORT:-443}:${HTTPS_PORT:-443}"
    volumes:
      - snmptraps:/var/lib/zabbix/snmptraps:roz
volumes: {snmptraps: {}}
"""


def test_an_unknown_mode_word_an_empty_host_ip_and_the_project_name_as_compose(
    tmp_path: Path,
) -> None:
    """zabbix's `:roz` (compose ignores the word: read-write, no label), mailcow's
    `${HTTPS_BIND:-}:443:443` (every address) and its `${COMPOSE_PROJECT_NAME}` unset
    (the project's name)."""
    project = tmp_path / "mailcow"
    write(project, {"compose.yaml": MAILCOW_ZABBIX})
    theirs = compose_config(project, ["compose.yaml"], {}, tmp_path)["services"]["nginx"]
    m = deployer(project, "[compose.yaml]", {})
    nginx = m.service("nginx")
    assert list(nginx.command or ()) == theirs["command"] == ["echo", "mailcow"]
    (port,) = theirs["ports"]
    assert [(p.target, p.published, p.host_ip) for p in nginx.ports] == [
        (port["target"], int(port["published"]), port.get("host_ip", ""))
    ]
    (volume,) = theirs["volumes"]
    (mount,) = nginx.volumes
    assert (mount.target, mount.read_only, mount.selinux) == (
        volume["target"],
        volume.get("read_only", False),
        (volume.get("bind") or {}).get("selinux", ""),
    )
    assert any('mount option "roz"' in w.message for w in m.warnings), m.warnings
