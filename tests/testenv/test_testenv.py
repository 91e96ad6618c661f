"""The test peers are up and behave as the other tests assume."""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from deployer import labels as L
from tests.testenv import TestEnv, TestEnvNotUp, cleanup, repo_digest, run_deployed

integration = pytest.mark.integration


@integration
def test_both_engines_answer_and_are_distinct(
    engine: docker.DockerClient, engine2: docker.DockerClient
) -> None:
    assert engine.ping() and engine2.ping()
    assert engine.info()["DockerRootDir"] != engine2.info()["DockerRootDir"]


@integration
def test_images_have_distinct_digests_in_both_registries(
    testenv: TestEnv, engine: docker.DockerClient
) -> None:
    v1 = repo_digest(engine, testenv.image_v1)
    v2 = repo_digest(engine, testenv.image_v2)
    assert v1.split("@")[1] != v2.split("@")[1]
    auth = {"username": testenv.auth_user, "password": testenv.auth_password}
    on_auth = engine.images.get_registry_data(
        testenv.image_v1.replace(testenv.registry, testenv.auth_registry), auth_config=auth
    )
    assert on_auth.id == v1.split("@")[1]


@integration
def test_cleanup_removes_only_the_apps_containers(
    testenv: TestEnv, engine: docker.DockerClient, engine2: docker.DockerClient, app: str
) -> None:
    digest = repo_digest(engine, testenv.image_v1)
    other = app + "x"
    try:
        run_deployed(engine, app=app, environment="e", service="web", replica=1,
                     digest=digest, config_hash="h")
        run_deployed(engine2, app=app, environment="e", service="web", replica=1,
                     digest=digest, config_hash="h")
        keep = run_deployed(engine, app=other, environment="e", service="web", replica=1,
                            digest=digest, config_hash="h")
        removed = cleanup({"a": engine, "b": engine2}, app)
        assert len(removed) == 2
        assert not engine.containers.list(all=True, filters={"label": f"{L.APP}={app}"})
        keep.reload()
        assert keep.status == "running"
    finally:
        cleanup({"a": engine}, other)


def test_missing_env_file_says_how_to_start_it(tmp_path: Path) -> None:
    with pytest.raises(TestEnvNotUp, match=r"run scripts/testenv\.sh up"):
        TestEnv.load(tmp_path / "env")
    (tmp_path / "env").write_text("DEPLOYER_TEST_ROOT=/x\n")
    with pytest.raises(TestEnvNotUp, match="has no DEPLOYER_TEST_ENGINE_HOST"):
        TestEnv.load(tmp_path / "env")


@pytest.mark.integration
def test_env_file_is_sourceable_by_a_shell(testenv: TestEnv) -> None:
    out = subprocess.run(
        ["bash", "-c", f"set -a; . {testenv.root / 'env'}; echo $DEPLOYER_TEST_SSH_HOST"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert out == testenv.ssh_host


@integration
def test_second_engine_containers_reach_each_other_on_one_network_only(
    testenv: TestEnv, engine2: docker.DockerClient, app: str
) -> None:
    """The second engine has no iptables of its own: scripts/testenv.sh lets bridged
    traffic inside its subnets through the host's FORWARD DROP (the edge proxy reaches an
    app's containers that way over TCP+TLS); two of its networks stay apart."""
    engine2.images.pull(testenv.image_v1)
    networks: list[Any] = []
    containers: list[Any] = []
    try:
        one = engine2.networks.create(f"{app}-one")
        two = engine2.networks.create(f"{app}-two")
        networks += [one, two]
        for name, net in (("server", one), ("near", one), ("far", two)):
            containers.append(
                engine2.containers.run(
                    testenv.image_v1, name=f"{app}-{name}", network=net.name, detach=True,
                    init=True,
                )
            )
        server, near, far = containers
        server.reload()
        ip = server.attrs["NetworkSettings"]["Networks"][one.name]["IPAddress"]
        fetch = ["sh", "-c", f"timeout 3 wget -q -O - http://{ip}:8080/version"]
        code, out = near.exec_run(fetch)
        for _ in range(20):  # httpd may not listen yet
            if code == 0:
                break
            time.sleep(0.2)
            code, out = near.exec_run(fetch)
        assert (code, out.strip()) == (0, b"v1")
        code, _ = far.exec_run(fetch)
        assert code != 0
    finally:
        for c in containers:
            with contextlib.suppress(docker.errors.APIError):
                c.remove(force=True)
        for n in networks:
            with contextlib.suppress(docker.errors.APIError):
                n.remove()
