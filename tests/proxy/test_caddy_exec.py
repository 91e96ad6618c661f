"""Commands in the edge proxy container (CaddyHost.exec and the switch's streamed exec)
keep every byte of their output when the client reads the engine's answer late.

The engine writes the answer's headers, starts the command and sends its output down the
same connection. A client that reads the headers late (a busy CI runner) finds the first
output in the same read, in its HTTP client's buffer: the Docker SDK's own exec reads the
socket under that buffer and lost those bytes. For the switch that was its "switched" line:
the deploy failed with "could not write the upstreams: drained 0 0" and rolled back.
"""

from __future__ import annotations

import http.client
import secrets
import time

import docker
import pytest

from deployer.manifest.model import EdgeProxy
from deployer.proxy.caddy import CaddyHost
from tests.conftest import Cleanup

pytestmark = pytest.mark.integration


@pytest.fixture
def app_name() -> str:
    return "fx" + secrets.token_hex(4)


@pytest.fixture
def proxy(engine: docker.DockerClient, cleanup: Cleanup, app: str, proxy_image: str) -> CaddyHost:
    name = f"{app}-exec"
    c = engine.containers.run(
        proxy_image,
        [
            "sh",
            "-c",
            "mkdir -p /www && echo ok > /www/up && busybox httpd -f -p 127.0.0.1:18630 -h /www",
        ],
        name=name,
        detach=True,
    )
    cleanup.later(lambda: c.remove(force=True))
    host = CaddyHost(engine, "test-host", EdgeProxy(name=name, image=proxy_image))
    deadline = time.monotonic() + 30
    while host.reachable("127.0.0.1:18630", "/up", 1) is not None:
        assert time.monotonic() < deadline, "busybox httpd did not answer"
        time.sleep(0.2)
    return host


@pytest.fixture
def late_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every answer's headers are read 0.5 s after they came: the command's first output
    is there by then."""
    begin = http.client.HTTPResponse.begin

    def late(self: http.client.HTTPResponse) -> None:
        time.sleep(0.5)
        begin(self)

    monkeypatch.setattr(http.client.HTTPResponse, "begin", late)


def test_exec_keeps_the_first_output_of_a_command(proxy: CaddyHost, late_reader: None) -> None:
    code, out = proxy.exec(["sh", "-c", "echo first; sleep 1; echo second; exit 3"])
    assert (code, out) == (3, "first\nsecond\n")


def test_the_switch_gets_its_outcome_when_read_late(proxy: CaddyHost, late_reader: None) -> None:
    proxy.write_upstreams({"/config/u/a": "10.9.9.9:80"})
    assert proxy.switch_upstream(
        "/config/u/a", "127.0.0.1:18630", "/up", 2, drain=[], drain_timeout=1
    ) == (True, "10.9.9.9:80", 0)
    assert proxy.read_upstream("/config/u/a") == "127.0.0.1:18630"
