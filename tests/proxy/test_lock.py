"""The proxy lock, against the real engine: held as long as a deploy edits the proxy's
config, however long that takes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from deployer.docker.host import connect_host
from deployer.errors import EXIT_OK, Blocked
from deployer.proxy import caddy, switch
from tests.cli import cli
from tests.proxy.conftest import Edge
from tests.proxy.test_edge import write_manifest
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

TTL = 3.0  # the proxy lock's lease here (300 s in a deploy)
SLOW = 3 * TTL  # what the proxy's preparation takes here


def test_the_proxy_lock_is_renewed_while_a_deploy_prepares_the_proxy(
    app: str, edge: Edge, testenv: TestEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deploy whose proxy preparation outlasts the lock's lease (a slow pull of the
    proxy's image, a loaded host) still holds the lock: another deploy cannot take it
    and edit the proxy's config at the same time. Before, the lease expired under it."""
    manifest = write_manifest(tmp_path, app, testenv, edge, f"{app}.example.test", replicas=1)
    for name in ("GITLAB_CI", "CI", "CI_ENVIRONMENT_NAME", "DOCKER_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WEB_IMAGE", testenv.image_v1)
    monkeypatch.setattr(switch, "PROXY_LOCK_TTL", TTL)
    preparing = threading.Event()
    ensure = caddy.CaddyHost.ensure

    def slow_ensure(self: caddy.CaddyHost, *args: object, **kwargs: object) -> object:
        preparing.set()
        time.sleep(SLOW)
        return ensure(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(caddy.CaddyHost, "ensure", slow_ensure)
    result: list[tuple[int, str]] = []
    deploy = threading.Thread(
        target=lambda: result.append(cli("deploy", "-f", str(manifest), "--env", "test"))
    )
    deploy.start()
    host = connect_host(testenv.engine_host, {})
    try:
        assert preparing.wait(120), "the deploy never prepared the proxy"
        time.sleep(2 * TTL)  # well past the lease it took
        with pytest.raises(Blocked) as held:
            lease = host.acquire_lock(f"edge/{edge.name}", "another deploy", ttl=60)
            host.release_lock(lease)
        assert "holds the lock" in held.value.message, held.value.message
    finally:
        deploy.join(300)
        host.close()
    code, out = result[0]
    assert code == EXIT_OK, out
