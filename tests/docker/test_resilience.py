"""A lost connection to a host during a deploy, against the real peers: the TLS engine and
sshd behind a relay the test cuts (tests/relay.py); and which requests are sent again
(deployer/docker/resilience.py), with a scripted ``send``."""

from __future__ import annotations

import socket
import ssl
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import requests
import requests.exceptions
import urllib3.exceptions

from deployer import labels as L
from deployer.docker import resilience
from deployer.docker.connect import connect
from deployer.errors import EXIT_OK, EXIT_ROLLBACK_FAILED, Unreachable
from tests.cli import act_at, cli
from tests.relay import Relay
from tests.testenv import TestEnv

MANIFEST = """\
app: {app}
environments:
  test:
    hosts: ["{host}"]
services:
  web:
    image: ${{WEB_IMAGE}}
    init: true
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/version"]
      interval: 1s
      retries: 3
    deploy: {{replicas: 2}}
rollout: {{health_timeout: 60s, healthy_after: 1s}}
"""
BLIP = 5.0  # seconds the connection is cut: well inside resilience.RIDE_OUT


@pytest.fixture(params=["tcp+tls", "ssh"])
def relayed(
    request: pytest.FixtureRequest, testenv: TestEnv, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Relay]]:
    """The host URL through a relay to the TLS engine or sshd, its CI variables set."""
    for var in ("GITLAB_CI", "CI", "CI_ENVIRONMENT_NAME", "DOCKER_HOST"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WEB_IMAGE", testenv.image_v1)
    if request.param == "ssh":
        real = urllib.parse.urlsplit(testenv.ssh_host)
        relay = Relay(real.port or 22)
        env = testenv.ssh_environ()
        # the host key as known for the relay's port
        env["SSH_KNOWN_HOSTS"] = env["SSH_KNOWN_HOSTS"].replace(
            f"[127.0.0.1]:{real.port}", f"[127.0.0.1]:{relay.port}"
        )
        host = f"ssh://{real.username}@127.0.0.1:{relay.port}"
    else:
        relay = Relay(urllib.parse.urlsplit(testenv.tls_host).port or 2376)
        env = testenv.tls_environ()
        host = f"tcp://127.0.0.1:{relay.port}"
    for k, v in env.items():
        if k != "DOCKER_HOST":
            monkeypatch.setenv(k, v)
    try:
        yield host, relay
    finally:
        relay.close()


def _images(client: docker.DockerClient, app: str) -> list[str]:
    found = client.api.containers(filters={"label": [f"{L.APP}={app}", f"{L.SERVICE}=web"]})
    return sorted(c["Labels"][L.DIGEST] for c in found)


@pytest.mark.integration
def test_a_connection_lost_for_seconds_during_a_deploy_is_ridden_out(
    relayed: tuple[str, Relay],
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    engine2: docker.DockerClient,
    tmp_path: Path,
) -> None:
    """The connection to the host is cut for 5 s while the new container's health is
    awaited: the deploy goes on once it is back and ends deployed. Before: the first call
    failed the step, the rollback's calls failed the same way (exit 5), the lock stayed."""
    host, relay = relayed
    client = engine if host.startswith("ssh://") else engine2
    manifest = tmp_path / "deploy.yml"
    manifest.write_text(MANIFEST.format(app=app, host=host))
    code, out = cli("deploy", "-f", str(manifest), "--env", "test")
    assert code == EXIT_OK, out

    def blip(_proc: object) -> None:
        relay.cut()
        time.sleep(BLIP)
        relay.restore()

    code, out = act_at(manifest, testenv.image_v2, "waiting until healthy", blip)
    assert code == EXIT_OK, out
    repo = testenv.image_v2.rpartition(":")[0]
    digests = engine.api.inspect_image(testenv.image_v2)["RepoDigests"]
    (v2,) = [d for d in digests if d.startswith(f"{repo}@")]
    assert _images(client, app) == [v2] * 2, out


@pytest.mark.integration
def test_a_host_gone_for_good_fails_the_deploy_in_bounded_time(
    app: str,
    testenv: TestEnv,
    engine2: docker.DockerClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The connection is cut and never restored: the deploy ends (exit 5: the rollback
    could not reach the host either) within the ride-out window and a margin, saying the
    engine did not answer; no hang."""
    for var in ("GITLAB_CI", "CI", "CI_ENVIRONMENT_NAME", "DOCKER_HOST"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WEB_IMAGE", testenv.image_v1)
    for k, v in testenv.tls_environ().items():
        if k != "DOCKER_HOST":
            monkeypatch.setenv(k, v)
    relay = Relay(urllib.parse.urlsplit(testenv.tls_host).port or 2376)
    try:
        manifest = tmp_path / "deploy.yml"
        manifest.write_text(MANIFEST.format(app=app, host=f"tcp://127.0.0.1:{relay.port}"))
        code, out = cli("deploy", "-f", str(manifest), "--env", "test")
        assert code == EXIT_OK, out
        t0 = time.monotonic()
        code, out = act_at(
            manifest, testenv.image_v2, "waiting until healthy", lambda _p: relay.cut()
        )
        took = time.monotonic() - t0
    finally:
        relay.close()
    assert code == EXIT_ROLLBACK_FAILED, out
    assert "did not answer" in out, out
    assert took < resilience.RIDE_OUT + 45, (took, out)


# -- which requests are sent again --------------------------------------------------------


class Script:
    """A ``send`` that raises the scripted errors, then answers."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self, request: Any, **kwargs: Any) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "answer"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Api:
    def __init__(self, send: Script) -> None:
        self.send = send


def _wrapped(root: BaseException, kind: type[Exception] = requests.exceptions.ConnectionError):
    outer = kind(urllib3.exceptions.MaxRetryError(None, "/", root))  # type: ignore[arg-type]
    return outer


def _request(method: str = "POST", body: object = b"{}") -> requests.PreparedRequest:
    r = requests.Request(method, "http://docker/containers/create").prepare()
    r.body = body  # type: ignore[assignment]
    return r


def _install(script: Script, window: float = 30.0) -> tuple[Api, Clock]:
    api, clock = Api(script), Clock()
    resilience.install(api, window=window, clock=clock, sleep=clock.sleep)
    return api, clock


REFUSED = _wrapped(urllib3.exceptions.NewConnectionError(None, "refused"))  # type: ignore[arg-type]
RESET = requests.exceptions.ConnectionError(ConnectionResetError(104, "reset"))
HANDSHAKE_CUT = _wrapped(ssl.SSLEOFError(8, "EOF"), requests.exceptions.SSLError)
BAD_CERT = _wrapped(ssl.SSLCertVerificationError(1, "bad"), requests.exceptions.SSLError)


@pytest.mark.parametrize("error", [REFUSED, HANDSHAKE_CUT, socket.gaierror()], ids=str)
def test_a_request_never_sent_is_sent_again_whatever_its_method(error: BaseException) -> None:
    script = Script(error, error)
    api, _ = _install(script)
    assert api.send(_request("POST"), stream=False) == "answer"
    assert script.calls == 3


def test_a_post_that_may_have_reached_the_engine_is_not_sent_again() -> None:
    script = Script(RESET)
    api, _ = _install(script)
    with pytest.raises(requests.exceptions.ConnectionError):
        api.send(_request("POST"), stream=False)
    assert script.calls == 1


def test_a_post_whose_answer_was_cut_mid_tls_is_not_sent_again() -> None:
    """The TLS connection closed while the answer was read: the engine may have done it."""
    cut = requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError("Connection aborted.", ssl.SSLEOFError(8, "EOF"))
    )
    script = Script(cut)
    api, _ = _install(script)
    with pytest.raises(requests.exceptions.ConnectionError):
        api.send(_request("POST"), stream=False)
    assert script.calls == 1


def test_a_read_is_sent_again_after_a_reset() -> None:
    script = Script(RESET, RESET)
    api, _ = _install(script)
    assert api.send(_request("GET", None), stream=False) == "answer"


@pytest.mark.parametrize(
    ("error", "kwargs", "body"),
    [
        (BAD_CERT, {"stream": False}, None),  # a certificate to fix, not a lost connection
        (REFUSED, {"stream": True}, None),  # a stream is never replayed
        (REFUSED, {"stream": False}, iter([b"x"])),  # nor a body that was a stream
    ],
    ids=["certificate", "stream", "streamed-body"],
)
def test_what_is_never_sent_again(
    error: BaseException, kwargs: dict[str, Any], body: object
) -> None:
    script = Script(error)
    api, _ = _install(script)
    with pytest.raises(type(error)):
        api.send(_request("GET", body), **kwargs)
    assert script.calls == 1


def test_the_window_bounds_an_outage_and_then_calls_fail_at_once() -> None:
    script = Script(*[REFUSED] * 100)
    api, clock = _install(script, window=10.0)
    with pytest.raises(requests.exceptions.ConnectionError):
        api.send(_request(), stream=False)
    assert clock.now == pytest.approx(10.0)
    calls = script.calls
    with pytest.raises(requests.exceptions.ConnectionError):
        api.send(_request(), stream=False)
    assert script.calls == calls + 1 and clock.now == pytest.approx(10.0)  # no wait
    script.errors.clear()  # the host answers again: the outage is over
    assert api.send(_request(), stream=False) == "answer"
    script.errors[:] = [REFUSED]
    assert api.send(_request(), stream=False) == "answer"  # a new outage, a new window


@pytest.mark.integration
def test_a_connection_closed_during_the_tls_handshake_is_not_called_a_bad_certificate(
    testenv: TestEnv,
) -> None:
    """Connecting through a relay that closes every connection at once: the error says
    the connection was closed during the handshake, and fails at once (a host that never
    answered is not ridden out). It said "TLS verification failed" with a certificate
    hint, sending the operator to the wrong place."""
    relay = Relay(urllib.parse.urlsplit(testenv.tls_host).port or 2376)
    relay.cut()
    env = {**testenv.tls_environ(), "DOCKER_HOST": f"tcp://127.0.0.1:{relay.port}"}
    t0 = time.monotonic()
    try:
        with pytest.raises(Unreachable) as e:
            connect(env["DOCKER_HOST"], env)
    finally:
        relay.close()
    assert "closed during the TLS handshake" in e.value.message, e.value.message
    assert "verification" not in e.value.message
    assert time.monotonic() - t0 < 10
