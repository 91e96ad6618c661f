"""Swarm services and tasks (the Engine API's JSON) → the plan's Observed (pure)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from deployer import labels as L
from deployer.errors import InvalidInput
from deployer.manifest.model import Service
from deployer.plan import Action, Observed, make_plan
from deployer.swarm import observe as O
from deployer.swarm import spec as S
from tests.swarm.helpers import manifest

V1 = "127.0.0.1:5000/testapp/web@sha256:" + "1" * 64
V2 = "127.0.0.1:5000/testapp/web@sha256:" + "2" * 64


def deployed(m: Any, service: Service, digest: str, sid: str, running: int) -> tuple[dict, list]:
    """A service as the deployer created it, with ``running`` of its slots running."""
    spec = S.service_spec(m, service, digest, {L.RELEASE: "r1"})
    spec["TaskTemplate"]["ContainerSpec"]["Image"] = digest.replace("@", ":v1@")
    svc = {"ID": sid, "Spec": spec, "CreatedAt": "2026-01-01T00:00:00Z"}
    tasks = [
        {
            "ID": f"{sid}-t{slot}",
            "ServiceID": sid,
            "Slot": slot,
            "DesiredState": "running",
            "Status": {"State": "running" if slot <= running else "starting"},
            "Spec": spec["TaskTemplate"],
        }
        for slot in range(1, service.replicas + 1)
    ]
    return svc, tasks


def containers_like(observed: Observed) -> Observed:
    """The same state as container mode would observe it (one container per replica)."""
    return Observed(
        observed.host,
        tuple(
            replace(c, id=f"c{c.service}{c.replica}", name=f"x-{c.replica}")
            for c in observed.containers
        ),
    )


def steps(plan: Any) -> list[tuple[object, ...]]:
    return [
        (
            s.service,
            s.action,
            s.reasons,
            s.old_digest,
            s.new_digest,
            s.replicas_before,
            s.replicas_after,
            s.strategy,
        )
        for s in plan.hosts[0].steps
    ]


def test_one_entry_per_slot_with_the_service_spec() -> None:
    web = Service(name="web", image="x", replicas=3)
    m = manifest("shop", web)
    svc, tasks = deployed(m, web, V1, "s1", running=2)
    obs = O.observed("mgr", "shop", "production", [svc], tasks)
    assert [(c.service, c.replica, c.running) for c in obs.containers] == [
        ("web", 1, True),
        ("web", 2, True),
        ("web", 3, False),
    ]
    c = obs.containers[0]
    assert c.image_digest == V1  # the label, not the spec's tag@digest form
    assert c.config_hash == web.config_hash()
    assert dict(c.config_parts) == web.config_parts()
    assert c.release == "r1"
    assert c.adopted_from is None


def test_old_tasks_of_a_previous_spec_do_not_count_as_running() -> None:
    web = Service(name="web", image="x")
    m = manifest("shop", web)
    svc, tasks = deployed(m, web, V1, "s1", running=1)
    tasks[0]["Spec"] = {**tasks[0]["Spec"], "ContainerSpec": {"Image": V2}}
    assert O.observed("mgr", "shop", "production", [svc], tasks).containers[0].running is False


@pytest.mark.parametrize(
    ("before", "after", "action", "reasons"),
    [
        (Service("web", "x"), Service("web", "x"), Action.UNCHANGED, ("up to date",)),
        (Service("web", "x"), Service("web", "x", replicas=3), Action.SCALE, ("scale 1 → 3",)),
        (
            Service("web", "x"),
            Service("web", "x", environment=(("A", "1"),)),
            Action.REPLACE,
            ("config changed: environment",),
        ),
    ],
)
def test_the_plan_has_the_same_detail_as_for_containers(
    before: Service, after: Service, action: Action, reasons: tuple[str, ...]
) -> None:
    svc, tasks = deployed(manifest("shop", before), before, V1, "s1", running=before.replicas)
    swarm = O.observed("mgr", "shop", "production", [svc], tasks)
    m = manifest("shop", after)
    from_swarm = make_plan(m, [swarm], {"web": V1})
    from_containers = make_plan(m, [containers_like(swarm)], {"web": V1})
    assert steps(from_swarm) == steps(from_containers)
    assert from_swarm.hosts[0].steps[0].action is action
    assert from_swarm.hosts[0].steps[0].reasons == reasons


def test_new_digest_and_orphans_plan_like_containers() -> None:
    web, api = Service("web", "x"), Service("api", "y")
    m_old = manifest("shop", web, api)
    s1, t1 = deployed(m_old, web, V1, "s1", 1)
    s2, t2 = deployed(m_old, api, V1, "s2", 1)
    swarm = O.observed("mgr", "shop", "production", [s1, s2], t1 + t2)
    m = manifest("shop", web)
    plan = make_plan(m, [swarm], {"web": V2})
    assert steps(plan) == steps(make_plan(m, [containers_like(swarm)], {"web": V2}))
    web_step, api_step = plan.hosts[0].steps
    assert (web_step.action, web_step.reasons) == (Action.REPLACE, ("new image digest",))
    assert (web_step.old_digest, web_step.new_digest) == (V1, V2)
    assert (api_step.action, api_step.reasons) == (Action.REMOVE, ("no longer in the manifest",))


def test_a_stack_service_without_our_labels_is_adopted_and_replaced() -> None:
    web = Service("web", "x")
    svc, tasks = deployed(manifest("shop", web), web, V1, "s1", 1)
    svc["Spec"]["Labels"] = {S.STACK_NAMESPACE: "shop"}  # `docker stack deploy` made it
    obs = O.observed("mgr", "shop", "production", [svc], tasks)
    assert obs.containers[0].adopted_from == "stack"
    assert obs.containers[0].service == "web"
    step = make_plan(manifest("shop", web), [obs], {"web": V1}).hosts[0].steps[0]
    assert step.action is Action.REPLACE and step.adopted
    assert step.reasons == ("config changed: definition",)


def test_jobs_and_other_apps_are_not_observed() -> None:
    web = Service("web", "x")
    m = manifest("shop", web)
    svc, tasks = deployed(m, web, V1, "s1", 1)
    job = {"ID": "j", "Spec": S.job_spec(m, web, V1, "shop_task-x", ("true",), {})}
    other, _ = deployed(manifest("blog", web), web, V1, "s9", 1)
    obs = O.observed("mgr", "shop", "production", [svc, job, other], tasks)
    assert {c.id for c in obs.containers} == {"s1.1"}


def test_another_environment_in_the_same_namespace_is_refused() -> None:
    web = Service("web", "x")
    svc, tasks = deployed(manifest("shop", web, environment="staging"), web, V1, "s1", 1)
    with pytest.raises(InvalidInput) as e:
        O.observed("mgr", "shop", "production", [svc], tasks)
    assert "staging" in e.value.message and "shop_web" in e.value.message


def test_status_rows_and_table() -> None:
    web = Service("web", "x", replicas=2)
    svc, tasks = deployed(manifest("shop", web), web, V1, "s1", running=1)
    svc["UpdateStatus"] = {"State": "rollback_completed", "Message": "rolled back: task x"}
    rows = O.status_rows("shop", [svc], tasks)
    assert [(r.service, r.running, r.desired, r.update_state, r.digest) for r in rows] == [
        ("web", 1, 2, "rollback_completed", V1)
    ]
    assert rows[0].healthy is False
    text = O.render_status("mgr", "shop", "production", rows)
    assert "web" in text and "1/2" in text and "rollback_completed" in text and V1 in text
    assert "rolled back: task x" in text
