"""The pure plan: every action and reason, waves, scaling, orphans, --services."""

from __future__ import annotations

import dataclasses

import pytest

from deployer.manifest.model import (
    Environment,
    Manifest,
    Mount,
    Port,
    Service,
    UpdateConfig,
)
from deployer.plan import Action, Observed, ObservedContainer, make_plan, waves

D1 = "reg.example/app/web@sha256:" + "1" * 64
D2 = "reg.example/app/web@sha256:" + "2" * 64
DW = "reg.example/app/worker@sha256:" + "3" * 64


def svc(name: str = "web", **kw: object) -> Service:
    return Service(name=name, image=f"reg.example/app/{name}:v1", **kw)  # type: ignore[arg-type]


def manifest(*services: Service) -> Manifest:
    return Manifest(
        path="deploy.yml", app="shop", environment=Environment("prod"), services=services
    )


def running(
    s: Service, replica: int = 1, digest: str = D1, *, config: Service | None = None, **kw: object
) -> ObservedContainer:
    """A container deployed from ``config`` (default: ``s`` itself) with ``digest``."""
    c = config or s
    fields: dict[str, object] = {
        "id": f"{s.name}{replica}{digest[-4:]}",
        "name": f"shop-prod-{s.name}-{replica}",
        "service": s.name,
        "replica": replica,
        "running": True,
        "image_digest": digest,
        "config_hash": c.config_hash(),
        "config_parts": c.config_parts(),
        "release": "r1",
    }
    fields.update(kw)
    return ObservedContainer(**fields)  # type: ignore[arg-type]


def plan1(
    m: Manifest,
    *containers: ObservedContainer,
    digests: dict[str, str] | None = None,
    only: list[str] | None = None,
):  # type: ignore[no-untyped-def]
    digests = digests or {s.name: D1 for s in m.services}
    p = make_plan(m, [Observed("h1", tuple(containers))], digests, only)
    assert len(p.hosts) == 1
    return p


def test_first_deploy_creates_every_service() -> None:
    web, worker = svc("web"), svc("worker")
    p = plan1(manifest(web, worker))
    steps = p.hosts[0].steps
    assert [(s.service, s.action, s.reasons) for s in steps] == [
        ("web", Action.CREATE, ("not running",)),
        ("worker", Action.CREATE, ("not running",)),
    ]
    assert steps[0].old_digest is None and steps[0].new_digest == D1
    assert steps[0].replicas_before == 0 and steps[0].replicas_after == 1
    assert p.changes


def test_nothing_changed_is_unchanged_and_no_changes() -> None:
    web = svc("web")
    p = plan1(manifest(web), running(web))
    step = p.hosts[0].step("web")
    assert step.action is Action.UNCHANGED
    assert step.reasons == ("up to date",)
    assert step.old_digest == D1 == step.new_digest
    assert not step.changes and not p.changes


def test_new_digest_same_tag_replaces() -> None:
    web = svc("web")
    p = plan1(manifest(web), running(web, digest=D1), digests={"web": D2})
    step = p.hosts[0].step("web")
    assert step.action is Action.REPLACE
    assert step.reasons == ("new image digest",)
    assert (step.old_digest, step.new_digest) == (D1, D2)
    assert step.replace == (running(web).id,)


def test_an_image_known_by_several_digests_is_unchanged_when_one_is_desired() -> None:
    # An image pushed to two registries (or re-pushed) lists several RepoDigests for one
    # repository; the first one observe sees need not be the one the registry resolves now.
    web = svc("web")
    c = running(web, digest=D1, image_digests=(D1, D2))
    step = plan1(manifest(web), c, digests={"web": D2}).hosts[0].step("web")
    assert step.action is Action.UNCHANGED
    assert step.old_digest == D2
    other = "127.0.0.1:5000/shop/web@sha256:" + "9" * 64
    step = plan1(manifest(web), c, digests={"web": other}).hosts[0].step("web")
    assert step.action is Action.REPLACE
    assert step.reasons == ("new image digest",)


def test_config_change_names_the_keys_never_the_values() -> None:
    old = svc("web", environment=(("DB_PASSWORD", "hunter2"),))
    new = svc("web", environment=(("DB_PASSWORD", "s3cret-new"),), ports=(Port(8080),))
    p = plan1(manifest(new), running(new, config=old))
    step = p.hosts[0].step("web")
    assert step.action is Action.REPLACE
    assert step.reasons == ("config changed: environment, ports",)
    assert "hunter2" not in repr(p) and "s3cret-new" not in str(step.reasons)


def test_container_without_config_parts_reports_definition_changed() -> None:
    web = svc("web")
    c = running(web, config_hash="old", config_parts=None)
    step = plan1(manifest(web), c).hosts[0].step("web")
    assert step.action is Action.REPLACE
    assert step.reasons == ("config changed: definition",)


def test_image_tag_and_replicas_and_update_policy_do_not_change_the_config_hash() -> None:
    a = svc("web")
    b = dataclasses.replace(
        a, image="reg.example/app/web:v9", replicas=3, update_config=UpdateConfig(delay=5)
    )
    assert a.config_hash() == b.config_hash()


def test_stopped_container_with_same_config_is_replaced() -> None:
    web = svc("web")
    step = plan1(manifest(web), running(web, running=False)).hosts[0].step("web")
    assert step.action is Action.REPLACE
    assert step.reasons == ("1 container(s) not running",)


def test_a_service_that_runs_once_is_done_when_it_exited_0() -> None:
    migrate = svc("migrate", completes=True)
    for code, want in ((0, Action.UNCHANGED), (1, Action.REPLACE), (None, Action.REPLACE)):
        p = plan1(manifest(migrate), running(migrate, running=False, exit_code=code))
        (step,) = p.hosts[0].steps
        assert step.action == want, code
        assert step.strategy == "stop-first"
        assert step.strategy_reason == "runs once: a service waits for it to complete"
    # a long-running service that exited 0 is down all the same
    p = plan1(manifest(svc()), running(svc(), running=False, exit_code=0))
    assert p.hosts[0].steps[0].reasons == ("1 container(s) not running",)


def test_running_once_is_not_configuration() -> None:
    assert svc(completes=True).config_hash() == svc().config_hash()


def test_scale_up_only() -> None:
    web = svc("web", replicas=3)
    step = plan1(manifest(web), running(web)).hosts[0].step("web")
    assert step.action is Action.SCALE
    assert step.reasons == ("scale 1 → 3",)
    assert (step.replicas_before, step.replicas_after) == (1, 3)
    assert step.replace == () and step.remove == ()


def test_scale_down_removes_the_highest_replicas() -> None:
    web = svc("web", replicas=1)
    cs = [running(web, r) for r in (1, 2, 3)]
    step = plan1(manifest(web), *reversed(cs)).hosts[0].step("web")
    assert step.action is Action.SCALE
    assert step.reasons == ("scale 3 → 1",)
    assert step.remove == (cs[1].id, cs[2].id)


def test_scale_and_new_digest_replace_kept_and_remove_extra() -> None:
    web = svc("web", replicas=1)
    cs = [running(web, r) for r in (1, 2)]
    step = plan1(manifest(web), *cs, digests={"web": D2}).hosts[0].step("web")
    assert step.action is Action.REPLACE
    assert step.reasons == ("new image digest", "scale 2 → 1")
    assert step.replace == (cs[0].id,)
    assert step.remove == (cs[1].id,)


def test_replace_only_the_replicas_that_differ() -> None:
    web = svc("web", replicas=2)
    a, b = running(web, 1, D2), running(web, 2, D1)
    step = plan1(manifest(web), a, b, digests={"web": D2}).hosts[0].step("web")
    assert step.action is Action.REPLACE
    assert step.replace == (b.id,)
    assert step.old_digest == ", ".join(sorted([D1, D2]))


def test_orphan_service_is_removed_in_a_last_wave() -> None:
    web, worker = svc("web"), svc("worker")
    p = plan1(manifest(web), running(web), running(worker, digest=DW))
    step = p.hosts[0].step("worker")
    assert step.action is Action.REMOVE
    assert step.reasons == ("no longer in the manifest",)
    assert step.old_digest == DW and step.new_digest is None
    assert step.wave == len(p.waves)
    assert step.remove == (running(worker, digest=DW).id,)


def test_adopted_compose_containers_are_replaced_and_marked() -> None:
    web = svc("web")
    c = running(web, config_hash=None, config_parts={}, adopted_from="compose")
    step = plan1(manifest(web), c).hosts[0].step("web")
    assert step.action is Action.REPLACE and step.adopted


def test_strategy_is_stop_first_with_a_fixed_host_port_unless_set() -> None:
    fixed = svc("web", ports=(Port(8080, 80),))
    free = svc("api", ports=(Port(8080),))
    forced = svc("db", ports=(Port(5432, 5432),), update_config=UpdateConfig(order="start-first"))
    p = plan1(manifest(fixed, free, forced))
    assert {s.service: s.strategy for s in p.hosts[0].steps} == {
        "web": "stop-first",
        "api": "start-first",
        "db": "start-first",
    }


def test_stateful_services_default_to_stop_first_and_say_why() -> None:
    db = svc("db", volumes=(Mount("volume", "/var/lib/db", "data"),))
    files = svc("files", volumes=(Mount("bind", "/srv/files", "/srv/files"),))
    ro = svc("ro", volumes=(Mount("volume", "/c", "c", read_only=True), Mount("tmpfs", "/t")))
    anon = svc("anon", volumes=(Mount("volume", "/cache"),))
    kept = svc(
        "kept",
        volumes=(Mount("volume", "/d", "d"),),
        update_config=UpdateConfig(order="start-first"),
    )
    p = plan1(manifest(db, files, ro, anon, kept))
    got = {s.service: (s.strategy, s.strategy_reason) for s in p.hosts[0].steps}
    assert got == {
        "db": ("stop-first", "stateful: volume data at /var/lib/db is writable"),
        "files": ("stop-first", "stateful: bind data at /srv/files is writable"),
        "ro": ("start-first", "default"),
        "anon": ("start-first", "default"),
        "kept": ("start-first", "written in update_config.order"),
    }
    # the update policy is not in the config hash: no container is replaced by this
    same = dataclasses.replace(db, update_config=UpdateConfig(order="stop-first"))
    assert db.config_hash() == same.config_hash()


def test_waves_follow_depends_on() -> None:
    db = svc("db")
    cache = svc("cache")
    api = svc("api", depends_on=(("db", "service_healthy"), ("cache", "service_started")))
    web = svc("web", depends_on=(("api", "service_started"),))
    worker = svc("worker", depends_on=(("db", "service_started"),))
    m = manifest(web, api, worker, db, cache)
    assert waves(m.services) == (("db", "cache"), ("api", "worker"), ("web",))
    p = plan1(m)
    assert p.waves == waves(m.services)
    assert {s.service: s.wave for s in p.hosts[0].steps} == {
        "db": 0,
        "cache": 0,
        "api": 1,
        "worker": 1,
        "web": 2,
    }
    assert [s.service for s in p.hosts[0].steps] == ["db", "cache", "api", "worker", "web"]


def test_waves_refuse_a_cycle_as_a_bug() -> None:
    a = svc("a", depends_on=(("b", "service_started"),))
    b = svc("b", depends_on=(("a", "service_started"),))
    with pytest.raises(AssertionError, match="cycle"):
        waves([a, b])


def test_only_restricts_services_and_leaves_orphans_alone() -> None:
    web, worker, old = svc("web"), svc("worker"), svc("old")
    m = manifest(web, worker)
    p = plan1(
        m,
        running(web),
        running(worker),
        running(old),
        digests={"web": D2},
        only=["web"],
    )
    steps = p.hosts[0].steps
    assert [(s.service, s.action) for s in steps] == [("web", Action.REPLACE)]
    assert p.waves == (("web",),)
    assert p.digests == {"web": D2}


def test_every_host_gets_its_own_steps() -> None:
    web = svc("web")
    m = manifest(web)
    p = make_plan(m, [Observed("h1", (running(web),)), Observed("h2", ())], {"web": D1})
    assert [h.host for h in p.hosts] == ["h1", "h2"]
    assert p.hosts[0].step("web").action is Action.UNCHANGED
    assert p.hosts[1].step("web").action is Action.CREATE
    assert p.changes and not p.hosts[0].changes and p.hosts[1].changes


def test_local_image_id_digest_for_pull_policy_never() -> None:
    web = svc("web", pull_policy="never")
    local = "sha256:" + "a" * 64
    step = plan1(manifest(web), running(web, digest=local), digests={"web": local}).hosts[0]
    assert step.step("web").action is Action.UNCHANGED


def test_a_service_sharing_a_replaced_services_network_is_replaced_with_it() -> None:
    """``network_mode: service:vpn``: web's containers live in vpn's container's network
    namespace, which goes with it; a new vpn container means new web containers."""
    vpn = svc("vpn")
    web = svc(
        "web",
        network_mode="service:vpn",
        depends_on=(("vpn", "service_started"),),
        depends_restart=("vpn",),
    )
    m = manifest(vpn, web)
    p = plan1(m, running(vpn), running(web), digests={"vpn": D2, "web": D1})
    step = p.hosts[0].step("web")
    assert p.waves == (("vpn",), ("web",))
    assert step.action is Action.REPLACE
    assert step.reasons == (
        "shares the network of vpn, which is replaced (its containers join the new one)",
    )
    assert step.replace == (running(web).id,)
    assert (step.strategy, step.strategy_reason) == ("stop-first", "shares the network of vpn")
    unchanged = plan1(m, running(vpn), running(web))
    assert not unchanged.changes
    gone = plan1(m, running(web)).hosts[0]  # vpn's container removed by hand
    assert gone.step("vpn").action is Action.CREATE
    assert gone.step("web").reasons == (
        "shares the network of vpn, which has no container (its containers join the new one)",
    )


def test_only_names_the_services_sharing_a_named_services_network() -> None:
    from deployer.errors import InvalidInput
    from deployer.plan import check_only

    m = manifest(svc("vpn"), svc("web", network_mode="service:vpn"), svc("db"))
    with pytest.raises(InvalidInput) as e:
        check_only(m, ["vpn", "db"])
    assert "web" in e.value.message and e.value.hint == "name web too"
    assert check_only(m, ["vpn", "web"]) == ["vpn", "web"]
    assert check_only(m, ["web"]) == ["web"]


def test_a_service_left_in_the_network_of_a_replaced_container_is_replaced() -> None:
    """A deploy interrupted between vpn's switch and web's step: web's container joined a
    container of vpn that is no longer vpn's current one (its namespace is gone)."""
    vpn = svc("vpn")
    web = svc("web", network_mode="service:vpn")
    m = manifest(vpn, web)
    current = running(vpn)
    joined_old = running(web, joined="vpn-old-id")
    p = plan1(m, current, joined_old)
    step = p.hosts[0].step("web")
    assert step.action is Action.REPLACE
    assert step.reasons == (
        "shares the network of a container of vpn that is no longer its current one",
    )
    assert step.replace == (joined_old.id,)
    assert not plan1(m, current, running(web, joined=current.id)).changes
    assert not plan1(m, current, running(web)).changes  # not known: left as it is


def test_a_service_left_in_the_pid_or_ipc_namespace_of_a_replaced_container_is_replaced() -> None:
    """The same for ``pid`` / ``ipc: service:NAME`` (read by inspect, ``joined_ns``): each
    namespace left behind is named; one joined of the current container changes nothing."""
    main = svc("main", ipc="shareable")
    side = svc("side", pid="service:main", ipc="service:main")
    m = manifest(main, side)
    current = running(main)
    left = running(side, joined_ns=(("pid", current.id), ("ipc", "main-old-id")))
    step = plan1(m, current, left).hosts[0].step("side")
    assert step.action is Action.REPLACE
    assert step.reasons == (
        "shares the IPC namespace of a container of main that is no longer its current one",
    )
    assert step.replace == (left.id,)
    both = running(side, joined_ns=(("pid", "main-old-id"), ("ipc", "main-old-id")))
    assert len(plan1(m, current, both).hosts[0].step("side").reasons) == 2
    ok = running(side, joined_ns=(("pid", current.id), ("ipc", current.id)))
    assert not plan1(m, current, ok).changes
