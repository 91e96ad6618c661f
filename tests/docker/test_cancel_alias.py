"""A cancelled job (SIGTERM) during the drain of a plain start-first service reached by
its network alias: the deploy rolls back at once, the old containers serve the alias
again, the new ones are gone, the lock is released (the killed case, SIGKILL, and its
rerun: tests/commands/test_interrupted.py)."""

from __future__ import annotations

import json
import secrets
import signal
from pathlib import Path

import docker
import pytest

from bench.rollout_probe import ensure_base, wait_serving
from deployer.errors import EXIT_OK, EXIT_ROLLED_BACK
from deployer.naming import default_network
from tests.commands.test_interrupted import MANIFEST, running_of_app
from tests.conftest import Cleanup
from tests.proxy.test_kill_rerun import cli, signal_at
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration


@pytest.fixture
def app_name() -> str:
    return "fx" + secrets.token_hex(4)


def test_sigterm_during_the_drain_rolls_back_the_alias(
    app: str, testenv: TestEnv, tmp_path: Path, engine: docker.DockerClient, cleanup: Cleanup
) -> None:
    manifest = tmp_path / "deploy.yml"
    manifest.write_text(MANIFEST.format(app=app, host=testenv.engine_host))
    code, out = cli(manifest, "deploy", image=testenv.image_v1)
    assert code == EXIT_OK, out
    code, out = signal_at(manifest, testenv.image_v2, r"draining the old container", signal.SIGTERM)
    assert code == EXIT_ROLLED_BACK, out
    assert "SIGTERM" in out and "rolled back" in out, out
    assert running_of_app(engine, app) == {f"{app}-test-web-1", f"{app}-test-web-2"}
    probe = ensure_base(engine, f"deployer-test-probe/{app}:1")
    cleanup.later(lambda: engine.api.remove_image(probe, force=True))
    wait_serving(engine, "http://web:8080/version", default_network(app, "test"), image=probe)
    code, js = cli(manifest, "status", "--format", "json", image=testenv.image_v1)
    assert code == EXIT_OK, js
    host = json.loads(js)["hosts"][0]
    assert host["leftovers"] == []
    code, out = cli(manifest, "plan", image=testenv.image_v1)
    assert code == EXIT_OK and "No changes" in out, out
    code, out = cli(manifest, "unlock", image=testenv.image_v1)
    assert code == EXIT_OK and "no deploy lock is held" in out, out
