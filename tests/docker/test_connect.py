"""Connecting over unix, tcp+TLS and ssh to the real test peers, and every refusal."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from deployer.docker.connect import LOCAL_SOCKET, connect, display_name, host_urls
from deployer.docker.host import connect_host
from deployer.errors import EXIT_UNREACHABLE, InvalidInput, Unreachable
from deployer.manifest.model import Environment
from tests.testenv import TestEnv

# --- pure ------------------------------------------------------------------------------


def test_host_urls_prefer_the_manifest_then_docker_host_then_the_socket() -> None:
    assert host_urls(("ssh://a", "ssh://b"), {"DOCKER_HOST": "tcp://x:2376"}) == [
        "ssh://a",
        "ssh://b",
    ]
    assert host_urls((), {"DOCKER_HOST": "tcp://x:2376"}) == ["tcp://x:2376"]
    assert host_urls((), {}) == [LOCAL_SOCKET]


def test_display_name_drops_passwords_and_queries() -> None:
    assert display_name("ssh://deploy:pw@host:22") == "ssh://deploy@host:22"
    assert display_name("tcp://host:2376?x=1") == "tcp://host:2376"
    assert display_name("unix:///var/run/docker.sock") == "unix:///var/run/docker.sock"


def test_unknown_scheme_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="unsupported scheme http"):
        connect("http://host:2375", {})


def test_plain_tcp_is_refused_before_any_connection() -> None:
    # 192.0.2.0/24 is TEST-NET: a connection attempt would hang, so the refusal must come first
    with pytest.raises(InvalidInput, match="plain tcp without TLS is refused") as e:
        connect("tcp://192.0.2.1:2375", {})
    assert "allow_insecure_tcp" in (e.value.hint or "")


def test_incomplete_tls_variables_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="DOCKER_TLS_KEY missing"):
        connect("tcp://127.0.0.1:2376", {"DOCKER_TLS_CA_CERT": "x", "DOCKER_TLS_CERT": "y"})


def test_bad_ssh_private_key_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="SSH_PRIVATE_KEY is not a usable private key"):
        connect("ssh://root@127.0.0.1:2222", {"SSH_PRIVATE_KEY": "-----BEGIN nonsense"})


# --- real peers ------------------------------------------------------------------------

integration = pytest.mark.integration


@integration
def test_unix_socket(testenv: TestEnv) -> None:
    with connect(testenv.engine_host, {}) as conn:
        assert conn.name == testenv.engine_host
        assert conn.client.ping()
        # negotiated down to the engine's API (20.10: 1.41), never above the client's
        assert conn.api_version == conn.client.version()["ApiVersion"]


@integration
@pytest.mark.parametrize("as_text", [False, True], ids=["cert-path", "pem-variables"])
def test_tls_verified_and_key_material_only_in_memory(
    testenv: TestEnv, as_text: bool, engine2_root: str
) -> None:
    conn = connect(testenv.tls_host, testenv.tls_environ(as_text=as_text))
    fds = list(conn._fds)
    try:
        assert conn.client.info()["DockerRootDir"] == engine2_root
        assert conn._tempdir is None  # no file on disk, whatever the source
        if as_text:
            assert len(fds) == 3
            for fd in fds:
                assert os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:deployer-tls-")
        else:
            assert fds == []
    finally:
        conn.close()
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)  # closed with the connection


KILLED = """
import sys, time
from deployer.docker.connect import connect
conn = connect(sys.argv[1], dict(__import__("os").environ))
conn.client.ping()
print("connected", flush=True)
time.sleep(120)
"""


@integration
def test_no_tls_key_is_left_on_disk_after_kill_9(testenv: TestEnv, tmp_path: Path) -> None:
    """The PEM variables were written to a temporary directory removed at exit: a deploy
    killed with SIGKILL left the client key in /tmp."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, **testenv.tls_environ(as_text=True), "TMPDIR": str(tmp)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, testenv.tls_host],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # bounded: the child pings once, or dies
        assert line.strip() == "connected", (line, proc.stderr and proc.stderr.read())
        proc.kill()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
    left = list(tmp.rglob("*"))
    assert left == [], left  # no directory, no key file


@pytest.fixture(scope="module")
def engine2_root(testenv: TestEnv) -> str:
    dc = docker.DockerClient(base_url=testenv.engine2_host)
    try:
        return str(dc.info()["DockerRootDir"])
    finally:
        dc.close()


@integration
def test_tls_variables_may_be_file_paths(testenv: TestEnv) -> None:
    env = {
        "DOCKER_TLS_CA_CERT": str(testenv.tls_cert_path / "ca.pem"),
        "DOCKER_TLS_CERT": str(testenv.tls_cert_path / "cert.pem"),
        "DOCKER_TLS_KEY": str(testenv.tls_cert_path / "key.pem"),
    }
    with connect(testenv.tls_host, env) as conn:
        assert conn.client.ping()


@integration
def test_tls_with_a_ca_bundle_in_the_environment_still_uses_the_hosts_ca(
    testenv: TestEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(testenv.tls_wrong_ca))
    with connect(testenv.tls_host, testenv.tls_environ()) as conn:
        assert conn.client.ping()


@integration
def test_wrong_tls_ca_is_refused(testenv: TestEnv) -> None:
    env = testenv.tls_environ(as_text=True)
    env["DOCKER_TLS_CA_CERT"] = testenv.tls_wrong_ca.read_text()
    with pytest.raises(Unreachable) as e:
        connect(testenv.tls_host, env)
    assert e.value.exit_code == EXIT_UNREACHABLE
    assert "tcp://127.0.0.1:2376" in e.value.message
    assert "TLS verification failed" in e.value.message
    assert "CA" in (e.value.hint or "")


@integration
def test_ssh_with_variables(testenv: TestEnv) -> None:
    with connect(testenv.ssh_host, testenv.ssh_environ()) as conn:
        assert conn.name == testenv.ssh_host
        local = docker.DockerClient(base_url=testenv.engine_host)
        try:
            # the sshd's docker talks to the main engine
            assert conn.client.info()["DockerRootDir"] == local.info()["DockerRootDir"]
        finally:
            local.close()


@integration
def test_ssh_uses_one_connection_for_many_calls(testenv: TestEnv) -> None:
    with testenv.ssh_identity("conn-count") as ident:
        env = {
            "SSH_PRIVATE_KEY": ident.private_key,
            "SSH_KNOWN_HOSTS": testenv.ssh_known_hosts.read_text(),
        }
        before = testenv.sshd_accepted(ident.fingerprint)
        host = connect_host(testenv.ssh_host, env)
        try:
            for _ in range(5):
                host.api.containers(all=True)  # low level: no inspect races
                host.resolve(testenv.image_v1, None)
                host.observe("nothing", "here")
        finally:
            host.close()
        assert testenv.sshd_accepted(ident.fingerprint) - before == 1


@integration
def test_unknown_ssh_host_key_is_refused_with_the_line_to_add(
    testenv: TestEnv, tmp_path: Path
) -> None:
    env = {"SSH_PRIVATE_KEY": testenv.ssh_key.read_text(), "HOME": str(tmp_path)}
    with pytest.raises(Unreachable) as e:
        connect(testenv.ssh_host, env)
    msg, hint = e.value.message, e.value.hint or ""
    assert "ssh://root@127.0.0.1:2222" in msg and "is not in" in msg
    assert "SSH_KNOWN_HOSTS" in hint and "ssh-keyscan -p 2222 127.0.0.1" in hint
    host_key = testenv.ssh_known_hosts.read_text().split()
    assert f"[127.0.0.1]:2222 {host_key[1]} {host_key[2]}" in hint


@integration
def test_changed_ssh_host_key_is_refused(testenv: TestEnv) -> None:
    # Claim the host has the client's key as its host key: a mismatch, as after a MITM.
    fake = testenv.ssh_key.with_suffix(".pub").read_text().split()
    env = {
        "SSH_PRIVATE_KEY": testenv.ssh_key.read_text(),
        "SSH_KNOWN_HOSTS": f"[127.0.0.1]:2222 {fake[0]} {fake[1]}\n",
    }
    with pytest.raises(Unreachable, match="host key CHANGED"):
        connect(testenv.ssh_host, env)


@integration
def test_ssh_key_not_accepted(testenv: TestEnv) -> None:
    env = testenv.ssh_environ()
    with pytest.raises(Unreachable, match="SSH authentication failed for user nobody"):
        connect(testenv.ssh_host.replace("root@", "nobody@"), env)


@integration
@pytest.mark.parametrize(
    "url",
    ["tcp://127.0.0.1:1", "ssh://root@127.0.0.1:1", "unix:///nonexistent/docker.sock"],
)
def test_unreachable_host(testenv: TestEnv, url: str) -> None:
    env = {**testenv.tls_environ(), **testenv.ssh_environ()}
    with pytest.raises(Unreachable) as e:
        connect(url, env)
    assert display_name(url) in e.value.message
    assert e.value.hint


@integration
@pytest.mark.parametrize("scheme", ["tcp", "ssh"])
def test_a_host_that_never_answers_times_out(testenv: TestEnv, scheme: str) -> None:
    # A listener that accepts TCP connections but never says a word (no TLS, no banner).
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        env = {**testenv.tls_environ(), **testenv.ssh_environ()}
        url = f"tcp://127.0.0.1:{port}" if scheme == "tcp" else f"ssh://root@127.0.0.1:{port}"
        t0 = time.monotonic()
        with pytest.raises(Unreachable) as e:
            connect(url, env, connect_timeout=1)
        assert time.monotonic() - t0 < 10
    assert f"127.0.0.1:{port}" in e.value.message


@integration
def test_insecure_tcp_only_when_the_environment_allows_it(testenv: TestEnv) -> None:
    env = Environment("e", allow_insecure_tcp=True)
    # Nothing listens on plain tcp here: allowed, it gets as far as connecting.
    with pytest.raises(Unreachable, match="cannot connect"):
        connect_host("tcp://127.0.0.1:1", {}, env)


@integration
def test_runner_proxy_config_is_never_injected(testenv: TestEnv) -> None:
    with connect(testenv.engine_host, {}) as conn:
        env = conn.api._proxy_configs.inject_proxy_environment(["A=1"])
        assert env == ["A=1"]


@integration
def test_cert_path_without_tls_verify_still_verifies(testenv: TestEnv, tmp_path: Path) -> None:
    # docker's own rule (FACTS 5): DOCKER_CERT_PATH without DOCKER_TLS_VERIFY encrypts but
    # does not verify. Ours always verifies: a wrong CA is refused.
    for name in ("cert.pem", "key.pem"):
        (tmp_path / name).write_bytes((testenv.tls_cert_path / name).read_bytes())
    (tmp_path / "ca.pem").write_bytes(testenv.tls_wrong_ca.read_bytes())
    with pytest.raises(Unreachable, match="TLS verification failed"):
        connect(testenv.tls_host, {"DOCKER_CERT_PATH": str(tmp_path)})


@integration
def test_known_hosts_hashed_markers_comments(testenv: TestEnv, tmp_path: Path) -> None:
    plain = testenv.ssh_known_hosts.read_text().strip()
    key = plain.split()[2]
    hashed_file = tmp_path / "kh"
    hashed_file.write_text(plain + "\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(hashed_file)], capture_output=True, check=True)
    hashed = hashed_file.read_text().strip()
    assert hashed.startswith("|1|")
    base = {"SSH_PRIVATE_KEY": testenv.ssh_key.read_text()}
    text = f"# our hosts\n\n@cert-authority *.example.com ssh-ed25519 {key}\n{hashed}\r\n"
    with connect(testenv.ssh_host, {**base, "SSH_KNOWN_HOSTS": text}) as conn:
        assert conn.client.ping()
    # a revoked key is never trusted, even when also listed
    revoked = f"{plain}\n@revoked * ssh-ed25519 {key}\n"
    with pytest.raises(Unreachable, match="is not in SSH_KNOWN_HOSTS"):
        connect(testenv.ssh_host, {**base, "SSH_KNOWN_HOSTS": revoked})


def test_broken_known_hosts_line_is_invalid_input() -> None:
    env = {"SSH_KNOWN_HOSTS": "host1 ssh-ed25519 AAAA\n", "SSH_PRIVATE_KEY": ""}
    with pytest.raises(InvalidInput, match="line 1 of SSH_KNOWN_HOSTS is not a known_hosts"):
        connect("ssh://root@127.0.0.1:2222", env)


@integration
def test_tls_name_must_be_in_the_certificate(testenv: TestEnv) -> None:
    # The same listener under a name its certificate does not carry (SAN: 127.0.0.1, localhost)
    url = testenv.tls_host.replace("127.0.0.1", "[::ffff:127.0.0.1]")
    with pytest.raises(Unreachable, match="TLS verification failed: IP address mismatch"):
        connect(url, testenv.tls_environ())


@integration
def test_client_certificate_the_host_does_not_trust(testenv: TestEnv) -> None:
    tls = testenv.root / "tls"
    env = {
        "DOCKER_TLS_CA_CERT": (tls / "ca.pem").read_text(),
        "DOCKER_TLS_CERT": (tls / "wrong-ca.pem").read_text(),  # not signed by the host's CA
        "DOCKER_TLS_KEY": (tls / "wrong-ca-key.pem").read_text(),
    }
    with pytest.raises(Unreachable, match="refused our TLS client certificate") as e:
        connect(testenv.tls_host, env)
    assert "--tlscacert" in (e.value.hint or "")


@integration
def test_ssh_login_works_but_docker_does_not(testenv: TestEnv) -> None:
    no_docker = 'command="echo docker: command not found >&2; exit 127"'
    with testenv.ssh_identity("no-docker", options=no_docker) as ident:
        env = {"SSH_PRIVATE_KEY": ident.private_key,
               "SSH_KNOWN_HOSTS": testenv.ssh_known_hosts.read_text()}
        with pytest.raises(Unreachable, match="logged in over SSH, but the Docker engine") as e:
            connect(testenv.ssh_host, env, connect_timeout=5)
    assert "docker system dial-stdio" in (e.value.hint or "")
