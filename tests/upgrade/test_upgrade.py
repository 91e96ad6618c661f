"""Upgrading the deployer replaces nothing: containers labelled by an older release of the
deployer plan unchanged against the same manifest.

``labels-1a08b27.json`` holds the config labels a real deploy of ``deploy.yml`` wrote with
the deployer at commit 1a08b27, the release before the config-hash stability rule (its
labels hold every key, defaults included).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from deployer import labels as L
from deployer.manifest import load_manifest
from deployer.manifest.model import Manifest, Service
from deployer.plan import Action, Observed, ObservedContainer, make_plan

HERE = Path(__file__).parent
DIGEST = "127.0.0.1:5000/testapp/web@sha256:" + "e" * 64


def _manifest() -> Manifest:
    return load_manifest(HERE / "deploy.yml", "production", {})


def _recorded() -> dict[str, dict[str, str]]:
    data = json.loads((HERE / "labels-1a08b27.json").read_text())
    return dict(data["containers"])


def _observed(labels: dict[str, dict[str, str]]) -> Observed:
    containers = tuple(
        ObservedContainer(
            id=f"{service}1",
            name=f"upgradefix-production-{service}-1",
            service=service,
            replica=1,
            running=True,
            image_digest=DIGEST,
            config_hash=got[L.CONFIG_HASH],
            config_parts=json.loads(got[L.CONFIG_PARTS]),
            release="r1",
        )
        for service, got in labels.items()
    )
    return Observed("h1", containers)


def _plan(m: Manifest, labels: dict[str, dict[str, str]]):  # type: ignore[no-untyped-def]
    return make_plan(m, [_observed(labels)], {s.name: DIGEST for s in m.services})


def test_labels_of_the_previous_release_plan_unchanged() -> None:
    plan = _plan(_manifest(), _recorded())
    assert {s.service: s.action for s in plan.hosts[0].steps} == {
        "web": Action.UNCHANGED,
        "worker": Action.UNCHANGED,
    }


def test_the_recorded_labels_hold_every_key_and_the_new_ones_only_what_is_set() -> None:
    m = _manifest()
    recorded = _recorded()
    old_web = json.loads(recorded["web"][L.CONFIG_PARTS])
    # every key of that release, defaults included; this release knows more keys
    assert set(old_web) < set(m.service("web").full_config_parts())
    assert set(m.service("web").config_parts()) < set(old_web)
    assert m.service("worker").config_parts() == {}


def test_a_real_change_is_still_seen_against_old_labels() -> None:
    m = _manifest()
    web = m.service("web")
    changed = dataclasses.replace(web, environment=(*web.environment, ("EXTRA", "1")))
    m2 = dataclasses.replace(m, services=(changed, m.service("worker")))
    step = _plan(m2, _recorded()).hosts[0].step("web")
    assert step.action is Action.REPLACE
    assert step.reasons == ("config changed: environment",)


@dataclasses.dataclass(frozen=True)
class _NextService(Service):
    """The model of a later release: one more key, at its default for this manifest."""

    future_setting: tuple[str, ...] = ()


@pytest.mark.parametrize("service", ["web", "worker"])
def test_a_new_default_valued_field_changes_neither_parts_nor_hash(service: str) -> None:
    svc = _manifest().service(service)
    nxt = _NextService(**{f.name: getattr(svc, f.name) for f in dataclasses.fields(svc)})
    assert nxt.config_parts() == svc.config_parts()
    assert nxt.config_hash() == svc.config_hash()
    assert "future_setting" in nxt.full_config_parts()
