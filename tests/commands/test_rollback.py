"""What a rollback takes from the chosen release (shared by container and Swarm
environments): the digests of the services the manifest still has, and the scope."""

from __future__ import annotations

import pytest

from deployer.engine import Release
from deployer.errors import InvalidInput
from deployer.manifest.model import Environment, Manifest, Service
from deployer.releases import release_digests

WEB = "r/web@sha256:" + "1" * 64
WORKER = "r/worker@sha256:" + "2" * 64
GONE = "r/gone@sha256:" + "3" * 64


def manifest(*names: str) -> Manifest:
    return Manifest(
        path="deploy.yml",
        app="shop",
        environment=Environment("production"),
        services=tuple(Service(n, f"r/{n}:v1") for n in names),
    )


def release(digests: dict[str, str]) -> Release:
    return Release(
        id="20260101T000000000Z-a", app="shop", environment="production", digests=digests
    )


def test_every_service_in_the_release_means_no_scope() -> None:
    digests, only = release_digests(
        release({"web": WEB, "worker": WORKER}), manifest("web", "worker")
    )
    assert digests == {"web": WEB, "worker": WORKER}
    assert only is None


def test_services_gone_from_the_manifest_are_dropped_and_the_rest_scoped() -> None:
    rel = release({"web": WEB, "gone": GONE})
    digests, only = release_digests(rel, manifest("web", "worker"))
    assert digests == {"web": WEB}
    assert only == ["web"]


def test_a_release_with_none_of_the_services_names_the_release_and_the_fix() -> None:
    with pytest.raises(
        InvalidInput, match=r"release 20260101T000000000Z-a has none of the services of deploy\.yml"
    ) as e:
        release_digests(release({"gone": GONE}), manifest("web"))
    assert "--to" in (e.value.hint or "")
