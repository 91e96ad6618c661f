"""`deployer down` takes the edge proxy off the environment's network also when the
manifest names no proxy any more (no service is public now; the proxy joined the network
when one was). Before, the network removal waited 30 s for the proxy and failed (exit 1),
the release records still on the host."""

from __future__ import annotations

import time
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.errors import EXIT_OK
from tests.proxy.conftest import Edge
from tests.proxy.test_edge import deploy, wait_body, write_manifest
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration


def _down(manifest: Path, image: str) -> tuple[int, str, float]:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("GITLAB_CI", "CI", "DOCKER_HOST")}
    env["WEB_IMAGE"] = image
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "deployer", "down", "-f", str(manifest), "--env", "test"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started


def test_down_takes_the_edge_proxy_off_the_network_when_no_service_is_public_any_more(
    app: str, edge: Edge, testenv: TestEnv, tmp_path: Path, engine: docker.DockerClient
) -> None:
    """web was public (the proxy joined the app's network); a deploy made it private
    (its route went, the proxy stayed on the network); `down` with that manifest, which
    names no proxy any more, still takes the proxy off the network and removes it."""
    manifest = write_manifest(tmp_path, app, testenv, edge, f"web.{app}.test", replicas=1)
    code, out = deploy(manifest, testenv.image_v1)
    assert code == EXIT_OK, out
    wait_body(edge, f"web.{app}.test", "v1")
    text = manifest.read_text()
    at = text.index("    proxy: {host:")  # web's route (the environment's proxy stays)
    route = text[at : text.index("\n", at) + 1]
    manifest.write_text(text.replace(route, "", 1))
    code, out = deploy(manifest, testenv.image_v1)
    assert code == EXIT_OK, out
    (net,) = engine.networks.list(filters={"label": f"{L.APP}={app}"})
    proxy = engine.containers.get(edge.name)
    assert net.name in proxy.attrs["NetworkSettings"]["Networks"]  # still on it

    code, out, took = _down(manifest, testenv.image_v1)
    print(f"down took {took:.1f}s")
    assert code == EXIT_OK, out
    assert not engine.networks.list(filters={"label": f"{L.APP}={app}"}), out
    proxy.reload()
    assert proxy.status == "running"  # the proxy stays, for the other apps
    assert net.name not in proxy.attrs["NetworkSettings"]["Networks"]
    assert f"{edge.name} left network {net.name}" in out, out
