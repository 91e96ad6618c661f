"""The edge proxy over SSH and over TCP+TLS: the proxy is run and switched through
`docker exec` on the transport the deploy uses, with no failed request through its public
port. (The unix socket is every other proxy test.)

The TCP+TLS host is the second test engine, which runs without iptables; scripts/testenv.sh
lets containers on one of its bridges reach each other (the proxy reaches the app's
containers that way), as an engine with iptables does by default."""

from __future__ import annotations

import subprocess
from pathlib import Path

import docker
import pytest

from bench.proxy_probe import ProxyProbe, get
from deployer.errors import EXIT_OK
from tests.conftest import Cleanup
from tests.proxy.conftest import ROOT, free_port, make_edge
from tests.proxy.test_edge import deploy, wait_body, write_manifest
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("transport", ["ssh", "tls"])
def test_a_switch_over_a_remote_transport_fails_no_request(
    transport: str,
    app: str,
    testenv: TestEnv,
    tmp_path: Path,
    engine: docker.DockerClient,
    engine2: docker.DockerClient,
    cleanup: Cleanup,
    proxy_image: str,
) -> None:
    if transport == "ssh":
        client, host, env, port = engine, testenv.ssh_host, testenv.ssh_environ(), free_port()
    else:
        client, host, env, port = engine2, testenv.tls_host, testenv.tls_environ(), free_port()
        built = subprocess.run(
            [str(ROOT / "scripts" / "build-proxy-image"), "--tag", proxy_image],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**env, "DOCKER_HOST": testenv.engine2_host},
        )
        assert built.returncode == 0, built.stderr
    env.pop("DOCKER_HOST")
    edge = make_edge(client, cleanup, app, port, proxy_image)
    public = f"{app}.example.test"
    manifest = write_manifest(tmp_path, app, testenv, edge, public, replicas=1)
    manifest.write_text(manifest.read_text().replace(testenv.engine_host, host))
    code, out = deploy(manifest, testenv.image_v1, **env)
    assert code == EXIT_OK, out
    wait_body(edge, public, "v1")
    probe = ProxyProbe(edge.address, public).start()
    try:
        code, out = deploy(manifest, testenv.image_v2, **env)
    finally:
        probe.stop()
    assert code == EXIT_OK, out
    assert probe.failed == 0, probe.summary()
    assert get(edge.address, public) == (200, "v2")
