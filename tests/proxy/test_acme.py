"""TLS through the edge proxy: a certificate issued by a local ACME server (Debian's
pebble) and served by the proxy, checked by a client that trusts pebble's root only; and
a certificate given as files (File-type CI/CD variables).

pebble runs as a process of the test, on the Docker bridge's gateway address (the proxy
container reaches it there) with a throwaway TLS certificate; PEBBLE_VA_ALWAYS_VALID
makes it skip the challenge (no DNS here for the test host names), everything else is
RFC 8555 as Let's Encrypt runs it.
"""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import Cleanup
from tests.proxy.conftest import Edge, make_edge
from tests.proxy.test_edge import ROOT, deploy
from tests.testenv import TestEnv, unique_app
from tests.testenv import cleanup as remove_app

pytestmark = pytest.mark.integration

PEBBLE_PORT, PEBBLE_MGMT = 18370, 18371
HTTPS_PORT = 18372
HTTP_PORT = 18375


@pytest.fixture
def edge(engine: docker.DockerClient, cleanup: Cleanup, app: str, proxy_image: str) -> Edge:
    return make_edge(engine, cleanup, app, HTTP_PORT, proxy_image)


MANIFEST = """\
app: {app}
environments:
  test:
    hosts: ["{host}"]
    proxy:
      http: "{http}"
      https: "127.0.0.1:{https}"
      image: "{image}"
      name: {name}
      drain_timeout: 5s
      acme: {{directory: "{directory}", email: ops@example.test, ca_root: "{ca_root}"}}
services:
  web:
    image: ${{WEB_IMAGE}}
    init: true
    proxy: {{host: {public}, port: 8080, tls: {tls}}}
rollout: {{health_timeout: 30s, healthy_after: 1s}}
"""


def self_signed(tmp: Path, name: str, sans: list[x509.GeneralName]) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    c, k = tmp / f"{name}.pem", tmp / f"{name}-key.pem"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return c, k


def bridge_gateway(engine: docker.DockerClient) -> str:
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "docker0"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout.split()
    for i, word in enumerate(out):
        if word == "inet":
            return out[i + 1].split("/")[0]
    raise AssertionError("no docker0 address")


@pytest.fixture
def pebble(tmp_path: Path, engine: docker.DockerClient) -> Iterator[tuple[str, Path]]:
    """(ACME directory URL, the CA file of pebble's own TLS listener)."""
    exe = shutil.which("pebble")
    if exe is None:
        pytest.fail("pebble is missing: run scripts/testenv.sh up (it installs Debian's pebble)")
    gw = bridge_gateway(engine)
    cert, key = self_signed(
        tmp_path,
        "pebble",
        [
            x509.IPAddress(ipaddress.ip_address(gw)),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.DNSName("localhost"),
        ],
    )
    cfg = tmp_path / "pebble.json"
    cfg.write_text(
        json.dumps(
            {
                "pebble": {
                    "listenAddress": f"{gw}:{PEBBLE_PORT}",
                    "managementListenAddress": f"127.0.0.1:{PEBBLE_MGMT}",
                    "certificate": str(cert),
                    "privateKey": str(key),
                    "httpPort": 18373,
                    "tlsPort": 18374,
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                }
            }
        )
    )
    env = {**os.environ, "PEBBLE_VA_ALWAYS_VALID": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
    log = open(tmp_path / "pebble.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([exe, "-config", str(cfg)], env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection((gw, PEBBLE_PORT), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError((tmp_path / "pebble.log").read_text()) from None
                time.sleep(0.2)
        yield f"https://{gw}:{PEBBLE_PORT}/dir", cert
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def pebble_root(ca: Path) -> str:
    """The root pebble issues under (made at its start), from its management API."""
    ctx = ssl.create_default_context(cafile=str(ca))
    conn = http.client.HTTPSConnection("127.0.0.1", PEBBLE_MGMT, context=ctx, timeout=10)
    try:
        conn.request("GET", "/roots/0")
        resp = conn.getresponse()
        assert resp.status == 200
        return resp.read().decode()
    finally:
        conn.close()


def https_get(host: str, cafile: Path, timeout: float = 5) -> tuple[int, str]:
    ctx = ssl.create_default_context(cafile=str(cafile))  # trusts this root only
    conn = http.client.HTTPSConnection("127.0.0.1", HTTPS_PORT, context=ctx, timeout=timeout)
    conn._tunnel_host = None
    try:
        # SNI and certificate check against the route's host name, connecting to 127.0.0.1
        sock = socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=timeout)
        conn.sock = ctx.wrap_socket(sock, server_hostname=host)
        conn.request("GET", "/version", headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.read().decode().strip()
    finally:
        conn.close()


def write(
    tmp: Path, app: str, testenv: TestEnv, edge: Edge, directory: str, ca_root: Path, tls: str
) -> Path:
    f = tmp / "deploy.yml"
    if ca_root.parent != tmp:  # a file of the checkout (outside it, only a variable's file)
        shutil.copy(ca_root, tmp / ca_root.name)
        ca_root = tmp / ca_root.name
    f.write_text(
        MANIFEST.format(
            app=app,
            host=testenv.engine_host,
            http=edge.address,
            https=HTTPS_PORT,
            image=edge.image,
            name=edge.name,
            directory=directory,
            ca_root=ca_root,
            public=f"{app}.example.test",
            tls=tls,
        )
    )
    return f


def test_a_certificate_from_the_local_acme_server_is_served(
    app: str, edge: Edge, testenv: TestEnv, tmp_path: Path, pebble: tuple[str, Path]
) -> None:
    directory, pebble_tls = pebble
    manifest = write(tmp_path, app, testenv, edge, directory, pebble_tls, "auto")
    code, out = deploy(manifest, testenv.image_v1)
    assert code == 0, out
    assert f"https://{app}.example.test:{HTTPS_PORT}" in out  # the environment URL
    root = tmp_path / "pebble-root.pem"
    root.write_text(pebble_root(pebble_tls))
    deadline = time.monotonic() + 120
    last: object = None
    while time.monotonic() < deadline:
        try:
            got = https_get(f"{app}.example.test", root)
            if got == (200, "v1"):
                break
            last = got
        except (OSError, ssl.SSLError) as e:  # not issued yet: Caddy's own fallback fails
            last = e
        time.sleep(1)
    else:
        raise AssertionError(f"no certificate from pebble served within 120 s: {last!r}")
    # a client trusting some other root refuses it: the root really is pebble's
    other, _ = self_signed(tmp_path, "other", [x509.DNSName("other.test")])
    with pytest.raises(ssl.SSLCertVerificationError):
        https_get(f"{app}.example.test", other)


def test_a_certificate_from_files_is_served(
    app: str, edge: Edge, testenv: TestEnv, tmp_path: Path
) -> None:
    host = f"{app}.example.test"
    cert, key = self_signed(tmp_path, "site", [x509.DNSName(host)])
    tls = f'{{certificate: "{cert}", key: "{key}"}}'
    manifest = write(tmp_path, app, testenv, edge, "https://127.0.0.1:1/dir", cert, tls)
    code, out = deploy(manifest, testenv.image_v1)
    assert code == 0, out
    assert "BEGIN" not in out  # the key never shows
    deadline = time.monotonic() + 60
    while True:
        try:
            assert https_get(host, cert) == (200, "v1")
            break
        except (OSError, ssl.SSLError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _get_pebble_cert(host: str, root: Path, want: str = "v1", timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            got = https_get(host, root)
            if got == (200, want):
                return
            last = got
        except (OSError, ssl.SSLError) as e:  # not issued yet
            last = e
        time.sleep(1)
    raise AssertionError(f"no certificate from pebble served for {host}: {last!r}")


def test_a_route_moved_from_files_to_acme_gets_its_certificate_from_the_acme_server(
    app: str, edge: Edge, testenv: TestEnv, tmp_path: Path, pebble: tuple[str, Path]
) -> None:
    """Files first (the host is on the proxy's list of names ACME must skip, and the
    file's certificate is loaded), then tls: auto: the host leaves that list and the old
    certificate goes, so the ACME server's certificate is the one served."""
    directory, pebble_tls = pebble
    host = f"{app}.example.test"
    cert, key = self_signed(tmp_path, "site", [x509.DNSName(host)])
    tls = f'{{certificate: "{cert}", key: "{key}"}}'
    code, out = deploy(
        write(tmp_path, app, testenv, edge, directory, pebble_tls, tls), testenv.image_v1
    )
    assert code == 0, out
    code, out = deploy(
        write(tmp_path, app, testenv, edge, directory, pebble_tls, "auto"), testenv.image_v1
    )
    assert code == 0, out
    root = tmp_path / "pebble-root.pem"
    root.write_text(pebble_root(pebble_tls))
    _get_pebble_cert(host, root)


def _policies(engine: docker.DockerClient, edge: Edge) -> list[dict[str, object]]:
    code, out = engine.containers.get(edge.name).exec_run(
        ["wget", "-q", "-O", "-", "http://127.0.0.1:2019/config/apps/tls/automation/policies"]
    )
    assert code == 0, out
    return list(json.loads(out) or [])


def test_one_apps_acme_settings_never_govern_another_apps_certificates(
    app: str,
    testenv: TestEnv,
    tmp_path: Path,
    engine: docker.DockerClient,
    engine2: docker.DockerClient,
    cleanup: Cleanup,
    proxy_image: str,
    pebble: tuple[str, Path],
) -> None:
    """App A gets its certificates from pebble; app B, on the same proxy, names another
    ACME directory. A's host names stay under A's issuer after B's deploy, and B's
    `deployer down` takes B's issuer away and leaves A's."""
    other = unique_app()
    cleanup.later(lambda: remove_app({"engine": engine, "engine2": engine2}, other))
    edge = make_edge(engine, cleanup, app, HTTP_PORT, proxy_image)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    directory, pebble_tls = pebble
    code, out = deploy(
        write(tmp_path / "a", app, testenv, edge, directory, pebble_tls, "auto"), testenv.image_v1
    )
    assert code == 0, out
    b = write(tmp_path / "b", other, testenv, edge, "https://127.0.0.1:1/dir", pebble_tls, "auto")
    code, out = deploy(b, testenv.image_v1)
    assert code == 0, out

    def issuer_of(host: str) -> object:
        for p in _policies(engine, edge):  # the proxy takes the first policy naming the host
            if host in (p.get("subjects") or [host]):  # type: ignore[operator]
                return p["issuers"][0]["ca"]  # type: ignore[index]
        return None

    assert issuer_of(f"{app}.example.test") == directory
    assert issuer_of(f"{other}.example.test") == "https://127.0.0.1:1/dir"
    root = tmp_path / "pebble-root.pem"
    root.write_text(pebble_root(pebble_tls))
    _get_pebble_cert(f"{app}.example.test", root)

    env = {k: v for k, v in os.environ.items() if k not in ("GITLAB_CI", "CI", "DOCKER_HOST")}
    down = subprocess.run(
        [sys.executable, "-m", "deployer", "down", "-f", str(b), "--env", "test"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "WEB_IMAGE": testenv.image_v1},
        cwd=ROOT,
        check=False,
    )
    assert down.returncode == 0, down.stdout + down.stderr
    ids = [p.get("@id") for p in _policies(engine, edge)]
    assert f"deployer-acme:{app}:test" in ids and f"deployer-acme:{other}:test" not in ids
    _get_pebble_cert(f"{app}.example.test", root)
