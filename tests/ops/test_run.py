"""`deployer run --service S -- CMD` on two hosts (socket or SSH, and tcp+TLS): a one-off
container of the deployed release's digest (not whatever its tag points at now), with
the service's environment, removed afterwards, exiting with the command's code."""

from __future__ import annotations

import pytest

from deployer import labels as L
from tests.ops.conftest import ONE_TRANSPORT, Fleet
from tests.testenv import TestEnv, push_as


@ONE_TRANSPORT
@pytest.mark.integration
def test_run_uses_the_deployed_digest_and_returns_the_exit_code(
    fleet: Fleet, testenv: TestEnv
) -> None:
    engine = fleet.clients[0]
    image = f"{testenv.registry}/testapp/base:{fleet.app}"
    push_as(engine, testenv.image_base, image)
    fleet.deploy(image=image)
    push_as(engine, testenv.image_v1, image)  # the tag moves on: web:v1 has /web.sh

    script = "test -e /web.sh; echo web=$? mark=$MARK; exit 5"
    code, out = fleet.run("run", "--service", "api", "--", "sh", "-c", script)
    assert code == 5, out
    assert "web=1 mark=1" in out  # the deployed base image, with the service's environment
    assert "exited with code 5" in out
    for client in fleet.clients:  # removed afterwards
        left = client.api.containers(
            all=True, filters={"label": [f"{L.APP}={fleet.app}", f"{L.ROLE}={L.ROLE_TASK}"]}
        )
        assert left == []

    code, _ = fleet.run("run", "nosuchtask")
    assert code == 2
