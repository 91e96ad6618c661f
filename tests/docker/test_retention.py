"""Retention on a real engine: a release of several services leaves several stopped
containers, which the prune removes side by side; what the kept releases need stays."""

from __future__ import annotations

import docker

from deployer import labels as L
from deployer.docker.host import DockerHost
from deployer.engine import KEPT_SEP
from deployer.manifest.model import Healthcheck, UpdateConfig
from tests.docker.test_host_rollout import ENV, deploy, manifest, web
from tests.testenv import TestEnv

# This test is about the prune, not about health: a patient check (a 2 s timeout, 2
# retries failed healthy containers of 4 services started at once on a loaded machine,
# and the deploy rolled back) and no post-switch watch (tests/commands/test_monitor.py).
PATIENT = Healthcheck(interval=0.5, timeout=10.0, retries=5)


def test_prune_removes_every_container_of_a_dropped_release(
    app: str, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    names = ("a", "b", "c", "d")
    releases = []
    for image in (testenv.image_v1, testenv.image_v2, testenv.image_v1):
        services = tuple(
            web(image, name=n, healthcheck=PATIENT, update_config=UpdateConfig(monitor=0.0))
            for n in names
        )
        r = deploy(manifest(app, *services, keep_releases=1), [h1])
        assert r.error is None, r.lines  # type: ignore[attr-defined]
        releases.append(r.release_id)
    # the third deploy kept only its own release: the first release's stopped containers
    # (the second deploy kept them for rollback) are gone, all four
    prune = next(s for s in r.result.steps if s.name == "prune")
    assert prune.detail.startswith("kept 1 release(s)"), prune.detail
    left = engine.api.containers(all=True, filters={"label": f"{L.APP}={app}"})
    by_release: dict[str, set[str]] = {}
    for c in left:
        labels = c.get("Labels") or {}
        if labels.get(L.ROLE) in (L.ROLE_LOCK, L.ROLE_TASK):
            continue
        by_release.setdefault(labels.get(L.RELEASE, ""), set()).add(labels.get(L.SERVICE, ""))
    assert releases[0] not in by_release, by_release
    assert by_release.get(releases[2]) == set(names), by_release
    kept = [c for c in left if KEPT_SEP in (c.get("Names") or ["/"])[0]]
    assert {(c.get("Labels") or {}).get(L.RELEASE) for c in kept} <= {releases[1]}
    assert [x.id for x in h1.releases(app, ENV)] == [releases[2]]
