"""A deployed app on two hosts, for the day-2 commands: ``fleet`` is parametrised over
the transports (the main engine over its socket or over SSH, with the second engine over
tcp+TLS), deploys ``MANIFEST`` through the CLI and cleans both engines afterwards."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from tests.cli import cli
from tests.testenv import TestEnv

# Two services of two replicas each that print numbered lines (one quotes a secret) and
# keep running; a named volume holds data that `down` keeps unless told otherwise.
MANIFEST = """\
app: {app}
environments:
  prod:
    hosts: ["{h1}", "{h2}"]
volumes:
  data: {{}}
services:
  api:
    image: {base}
    command:
      - sh
      - -c
      - >-
        [ -e /data/broken ] || touch /tmp/ok; i=0; while [ $$i -lt {lines} ]; do
        echo "api $$HOSTNAME line $$i token=$$API_TOKEN";
        i=$$((i+1)); sleep {pause}; done; exec sleep 86400
    environment:
      API_TOKEN: s3cr3t-token-value-{app}
      MARK: "{mark}"
    init: true
    stop_grace_period: 1s
    volumes: ["data:/data"]
    deploy: {{replicas: 2}}
    healthcheck:  # a replica started while /data/broken exists never becomes healthy
      test: ["CMD-SHELL", "test -e /tmp/ok"]
      interval: 500ms
      retries: 3
  worker:
    image: {base}
    command:
      - sh
      - -c
      - >-
        i=0; while [ $$i -lt {lines} ]; do
        echo "worker $$HOSTNAME line $$i";
        i=$$((i+1)); sleep {pause}; done; exec sleep 86400
    environment:
      MARK: "{mark}"
    init: true
    stop_grace_period: 1s
    deploy: {{replicas: 2}}
    healthcheck:
      test: ["CMD-SHELL", "true"]
      interval: 500ms
      retries: 3
rollout:
  health_timeout: 60s
  drain: 100ms
"""

TRANSPORTS = ["unix+tls", "ssh+tls"]
# Every day-2 command goes through the same connection code as a deploy; what differs per
# transport is streaming (`logs --follow`, `events`) and the hijacked socket of `exec -i/-t`.
# Those tests run on every transport; the others (plain API calls) over the socket and
# tcp+TLS only, which keeps the suite's time for what can break per transport.
ONE_TRANSPORT = pytest.mark.parametrize("fleet", TRANSPORTS[:1], indirect=True)


@dataclass
class Fleet:
    app: str
    path: Path
    hosts: list[str]
    clients: list[docker.DockerClient]  # the two engines, in the order of ``hosts``
    write: Callable[..., None]
    transport: str  # one of TRANSPORTS

    @property
    def base(self) -> list[str]:
        return ["-f", str(self.path), "--env", "prod"]

    def run(self, *argv: str) -> tuple[int, str]:
        return cli(argv[0], *self.base, *argv[1:])

    def deploy(self, **fmt: object) -> str:
        self.write(**fmt)
        code, out = self.run("deploy", "--report-dir", str(self.path.parent))
        assert code == 0, out
        return out


@pytest.fixture(params=TRANSPORTS)
def fleet(
    request: pytest.FixtureRequest,
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    engine2: docker.DockerClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Fleet:
    for var in ("GITLAB_CI", "CI", "CI_ENVIRONMENT_NAME", "DOCKER_HOST", "CI_JOB_URL"):
        monkeypatch.delenv(var, raising=False)
    env = testenv.tls_environ()
    if request.param == "ssh+tls":
        env.update(testenv.ssh_environ())
        first = testenv.ssh_host
    else:
        first = testenv.engine_host
    for k, v in env.items():
        if k != "DOCKER_HOST":
            monkeypatch.setenv(k, v)
    hosts = [first, testenv.tls_host]
    path = tmp_path / "deploy.yml"

    def write(
        lines: int = 5, pause: str = "0.2", mark: str = "1", image: str | None = None
    ) -> None:
        path.write_text(
            MANIFEST.format(
                app=app,
                h1=hosts[0],
                h2=hosts[1],
                base=image or testenv.image_base,
                lines=lines,
                pause=pause,
                mark=mark,
            )
        )

    write()
    return Fleet(app, path, hosts, [engine, engine2], write, request.param)
