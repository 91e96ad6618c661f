"""What the deployer sends the edge proxy's admin API never travels in a command line.

Every admin call is a ``docker exec`` in the proxy. An exec's command line is public on
the host: the engine puts it in its event stream (``exec_create: sh -c ...``, what
``docker events`` and every event collector read), in the exec's inspect data, and in the
host's process list while it runs. A request body holds the certificates of the routes
with ``tls: {certificate, key}``, private keys included: it goes on the exec's standard
input instead. Run against a real proxy (Caddy) on the real engine.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import docker
import pytest
from cryptography import x509

from deployer.manifest.model import EdgeProxy
from deployer.proxy.caddy import CaddyHost
from deployer.proxy.tls import LOAD_PEM
from tests.proxy.conftest import Edge, free_port
from tests.proxy.test_acme import self_signed

pytestmark = pytest.mark.integration


def test_a_certificate_key_reaches_the_proxy_but_no_exec_command_line(
    engine: docker.DockerClient, edge: Edge, tmp_path: Path
) -> None:
    proxy = CaddyHost(
        engine,
        "test-host",
        EdgeProxy(
            http=edge.address,
            https=f"127.0.0.1:{free_port()}",
            image=edge.image,
            name=edge.name,
            drain_timeout=1,
        ),
    )
    proxy.ensure(lambda _: None)
    cert, key = self_signed(tmp_path, "site", [x509.DNSName("site.example.test")])
    since = time.time() - 1
    entry = {
        "certificate": cert.read_text(),
        "key": key.read_text(),
        "tags": ["deployer:shop:test:web"],
    }
    assert proxy.ensure_value(LOAD_PEM, [entry])
    assert proxy.get(LOAD_PEM) == [entry]  # it arrived, whole
    assert not proxy.ensure_value(LOAD_PEM, [entry])  # and reads back equal: no reload

    key_lines = [line for line in key.read_text().splitlines() if "-----" not in line]
    events = list(
        engine.api.events(
            since=since, until=time.time() + 1, filters={"container": edge.name}, decode=True
        )
    )
    assert any(str(e.get("Action", "")).startswith("exec_create") for e in events)
    for event in events:
        text = json.dumps(event)
        for line in key_lines:
            assert line not in text, f"the private key in the engine's event {text[:300]}"
    info = engine.api.inspect_container(edge.name)
    for exec_id in info.get("ExecIDs") or []:
        args = json.dumps(engine.api.exec_inspect(exec_id).get("ProcessConfig"))
        assert not any(line in args for line in key_lines), "the private key in an exec"
