"""Registry credentials per image, and digests resolved through the engine without pulls."""

from __future__ import annotations

import base64
import json

import docker
import pytest

from deployer.docker.host import connect_host
from deployer.docker.registry import auth_for, registry_of
from deployer.errors import InvalidInput, Unreachable
from deployer.manifest.model import RegistryAuth
from tests.testenv import TestEnv, push_as, repo_digest


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("nginx:1.25", "docker.io"),
        ("library/nginx", "docker.io"),
        ("acme/web:v1", "docker.io"),
        ("registry.gitlab.example/acme/web:v1", "registry.gitlab.example"),
        ("127.0.0.1:5000/a/b@sha256:" + "0" * 64, "127.0.0.1:5000"),
        ("localhost/web", "localhost"),
    ],
)
def test_registry_of(image: str, registry: str) -> None:
    assert registry_of(image) == registry


IMG = "registry.gitlab.example/acme/web:v1"


def test_manifest_entry_wins() -> None:
    mine = RegistryAuth("registry.gitlab.example", "u", "p")
    env = {"CI_REGISTRY": "registry.gitlab.example", "CI_REGISTRY_USER": "x",
           "CI_REGISTRY_PASSWORD": "y"}
    assert auth_for(IMG, (mine,), env) == mine


def test_docker_auth_config_auth_and_username_forms() -> None:
    cfg = {"auths": {"https://registry.gitlab.example": {
        "auth": base64.b64encode(b"bot:pa:ss").decode()}}}
    assert auth_for(IMG, (), {"DOCKER_AUTH_CONFIG": json.dumps(cfg)}) == RegistryAuth(
        "registry.gitlab.example", "bot", "pa:ss"
    )
    cfg = {"auths": {"registry.gitlab.example": {"username": "a", "password": "b"}}}
    assert auth_for(IMG, (), {"DOCKER_AUTH_CONFIG": json.dumps(cfg)}) == RegistryAuth(
        "registry.gitlab.example", "a", "b"
    )
    hub = {"auths": {"https://index.docker.io/v1/": {"username": "h", "password": "p"}}}
    assert auth_for("nginx", (), {"DOCKER_AUTH_CONFIG": json.dumps(hub)}) == RegistryAuth(
        "docker.io", "h", "p"
    )


def test_docker_auth_config_must_be_json() -> None:
    with pytest.raises(InvalidInput, match="DOCKER_AUTH_CONFIG is not valid JSON"):
        auth_for(IMG, (), {"DOCKER_AUTH_CONFIG": "{nope"})


def test_deploy_token_before_job_token_and_only_for_ci_registry() -> None:
    env = {
        "CI_REGISTRY": "registry.gitlab.example",
        "CI_REGISTRY_USER": "gitlab-ci-token",
        "CI_REGISTRY_PASSWORD": "job-token",
        "CI_DEPLOY_USER": "gitlab+deploy-token-1",
        "CI_DEPLOY_PASSWORD": "deploy-token",
    }
    assert auth_for(IMG, (), env) == RegistryAuth(
        "registry.gitlab.example", "gitlab+deploy-token-1", "deploy-token"
    )
    del env["CI_DEPLOY_USER"]
    assert auth_for(IMG, (), env) == RegistryAuth(
        "registry.gitlab.example", "gitlab-ci-token", "job-token"
    )
    assert auth_for("other.example/acme/web:v1", (), env) is None
    assert auth_for(IMG, (), {}) is None


@pytest.mark.integration
def test_resolve_gives_the_registry_digest_without_pulling(
    testenv: TestEnv, engine: docker.DockerClient, engine2: docker.DockerClient, app: str
) -> None:
    # On the second engine over TLS: the image is not pulled by resolving it. The repository
    # is this test's own, so no other test's pull or removal on that engine can hide a pull
    # or look like one.
    repo = f"{testenv.registry}/testapp/resolve-{app}"
    pushed = push_as(engine, testenv.image_task, f"{repo}:v1")
    host = connect_host(testenv.tls_host, testenv.tls_environ())
    try:
        digest = host.resolve(f"{repo}:v1", None)
    finally:
        host.close()
    refs = [r for i in engine2.images.list() for r in i.tags + i.attrs.get("RepoDigests", [])]
    assert [r for r in refs if r.startswith((f"{repo}:", f"{repo}@"))] == []
    assert digest.startswith(f"{repo}@sha256:")
    assert digest == pushed == repo_digest(engine2, f"{repo}:v1")


@pytest.mark.integration
def test_resolve_with_credentials(testenv: TestEnv) -> None:
    image = testenv.image_v2.replace(testenv.registry, testenv.auth_registry)
    good = RegistryAuth(testenv.auth_registry, testenv.auth_user, testenv.auth_password)
    host = connect_host(testenv.engine_host, {})
    try:
        digest = host.resolve(image, good)
        assert digest.split("@")[1] == host.resolve(testenv.image_v2, None).split("@")[1]
        with pytest.raises(Unreachable, match=r"refused .* anonymously"):
            host.resolve(image, None)
        bad = RegistryAuth(testenv.auth_registry, testenv.auth_user, "pw-not-this-one")
        with pytest.raises(Unreachable) as e:
            host.resolve(image, bad)
        assert "pw-not-this-one" not in e.value.render()
    finally:
        host.close()


@pytest.mark.integration
def test_pull_policy_never_gives_the_local_image_id(
    testenv: TestEnv, engine: docker.DockerClient
) -> None:
    host = connect_host(testenv.engine_host, {})
    try:
        local = host.resolve(testenv.image_base, None, pull_policy="never")
        assert local == engine.images.get(testenv.image_base).id
        with pytest.raises(Unreachable, match=r"is not on the host \(pull_policy: never\)"):
            host.resolve("deployer-test/absent:1", None, pull_policy="never")
    finally:
        host.close()
