"""The Swarm service spec built from the manifest (pure; no engine)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from deployer import labels as L
from deployer.errors import InvalidInput
from deployer.manifest.model import (
    Healthcheck,
    Mount,
    NetworkAttachment,
    Port,
    Service,
    Task,
    TopNetwork,
    TopVolume,
    UpdateConfig,
)
from deployer.swarm import spec as S
from tests.swarm.helpers import manifest

DIGEST = "registry.example:5000/team/web@sha256:" + "a" * 64


def svc(**kw: object) -> Service:
    base = Service(name="web", image="registry.example:5000/team/web:v2")
    return replace(base, **kw)  # type: ignore[arg-type]


def test_image_is_pinned_to_the_digest_and_named_like_a_stack() -> None:
    m = manifest("shop", svc())
    spec = S.service_spec(m, m.services[0], DIGEST)
    assert spec["Name"] == "shop_web"
    assert spec["TaskTemplate"]["ContainerSpec"]["Image"] == DIGEST
    assert spec["Labels"][S.STACK_NAMESPACE] == "shop"
    assert spec["TaskTemplate"]["ContainerSpec"]["Labels"][S.STACK_NAMESPACE] == "shop"
    assert spec["Labels"][L.DIGEST] == DIGEST
    assert spec["Labels"][L.CONFIG_HASH] == m.services[0].config_hash()
    assert json.loads(spec["Labels"][L.CONFIG_PARTS]) == m.services[0].config_parts()


def test_task_containers_do_not_carry_the_container_mode_app_label() -> None:
    m = manifest("shop", svc(labels=(("team", "a"),)))
    labels = S.service_spec(m, m.services[0], DIGEST)["TaskTemplate"]["ContainerSpec"]["Labels"]
    assert labels == {"team": "a", S.STACK_NAMESPACE: "shop"}
    assert L.APP not in labels


def test_update_config_maps_the_manifest() -> None:
    uc = UpdateConfig(
        order="stop-first", parallelism=2, delay=1.5, failure_action="rollback", monitor=7
    )
    m = manifest("shop", svc(update_config=uc))
    spec = S.service_spec(m, m.services[0], DIGEST)
    assert spec["UpdateConfig"] == {
        "Parallelism": 2,
        "Delay": 1_500_000_000,
        "FailureAction": "rollback",
        "Monitor": 7_000_000_000,
        "MaxFailureRatio": 0,
        "Order": "stop-first",
    }
    # A failing rollback pauses instead of looping.
    assert spec["RollbackConfig"] == {**spec["UpdateConfig"], "FailureAction": "pause"}


def test_parallelism_zero_stays_unlimited_and_monitor_zero_uses_healthy_after() -> None:
    m = manifest("shop", svc(update_config=UpdateConfig(parallelism=0, monitor=0)))
    uc = S.service_spec(m, m.services[0], DIGEST)["UpdateConfig"]
    assert uc["Parallelism"] == 0
    assert uc["Monitor"] == S.ns(m.rollout.healthy_after)
    assert uc["Order"] == "start-first"  # default without fixed host ports


def test_ports_are_published_in_host_mode_and_fixed_ports_force_stop_first() -> None:
    m = manifest("shop", svc(ports=(Port(target=8080, published=80), Port(target=9000))))
    spec = S.service_spec(m, m.services[0], DIGEST)
    assert spec["EndpointSpec"]["Ports"] == [
        {"Protocol": "tcp", "TargetPort": 8080, "PublishMode": "host", "PublishedPort": 80},
        {"Protocol": "tcp", "TargetPort": 9000, "PublishMode": "host"},
    ]
    assert spec["UpdateConfig"]["Order"] == "stop-first"


def test_networks_default_to_the_app_overlay_with_the_service_alias() -> None:
    m = manifest("shop", svc())
    assert S.service_spec(m, m.services[0], DIGEST)["TaskTemplate"]["Networks"] == [
        {"Target": "shop_default", "Aliases": ["web"]}
    ]
    m2 = replace(
        manifest(
            "shop", svc(networks=(NetworkAttachment("front", ("www",)), NetworkAttachment("ext")))
        ),
        networks=(TopNetwork("front"), TopNetwork("ext", external=True)),
    )
    assert S.service_spec(m2, m2.services[0], DIGEST)["TaskTemplate"]["Networks"] == [
        {"Target": "shop_front", "Aliases": ["web", "www"]},
        {"Target": "ext", "Aliases": ["web"]},
    ]
    assert S.app_networks(m2) == [("ext", True), ("shop_front", False)]


def test_container_settings() -> None:
    s = svc(
        command=("serve", "--port", "8080"),
        entrypoint=("/entry",),
        environment=(("A", "1"), ("B", "two")),
        healthcheck=Healthcheck(
            test=("CMD", "true"), interval=2, timeout=1, retries=3, start_period=5
        ),
        restart="on-failure:3",
        stop_grace_period=4,
        init=True,
        user="app",
        cpus=0.5,
        memory=64 * 1024 * 1024,
        volumes=(Mount("volume", "/data", "data"), Mount("bind", "/cfg", "/etc/app", True)),
        tmpfs=("/run",),
        extra_hosts=("db.local:10.0.0.5",),
    )
    m = replace(manifest("shop", s), volumes=(TopVolume("data"),))
    spec = S.service_spec(m, m.services[0], DIGEST)
    c = spec["TaskTemplate"]["ContainerSpec"]
    assert c["Command"] == ["/entry"]  # Swarm's Command replaces the entrypoint
    assert c["Args"] == ["serve", "--port", "8080"]
    assert c["Env"] == ["A=1", "B=two"]
    assert c["Healthcheck"] == {
        "Test": ["CMD", "true"],
        "Interval": 2_000_000_000,
        "Timeout": 1_000_000_000,
        "StartPeriod": 5_000_000_000,
        "Retries": 3,
    }
    assert c["StopGracePeriod"] == 4_000_000_000
    assert c["Init"] is True
    assert c["User"] == "app"
    assert c["Hosts"] == ["10.0.0.5 db.local"]
    assert c["Mounts"] == [
        {
            "Type": "volume",
            "Target": "/data",
            "ReadOnly": False,
            "Source": "shop_data",
            "VolumeOptions": {"Labels": {S.STACK_NAMESPACE: "shop"}},
        },
        {"Type": "bind", "Target": "/cfg", "ReadOnly": True, "Source": "/etc/app"},
        {"Type": "tmpfs", "Target": "/run"},
    ]
    assert spec["TaskTemplate"]["RestartPolicy"] == {"Condition": "on-failure", "MaxAttempts": 3}
    assert spec["TaskTemplate"]["Resources"] == {
        "Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 64 * 1024 * 1024}
    }
    assert spec["Mode"] == {"Replicated": {"Replicas": 1}}


def test_disabled_healthcheck_and_restart_no() -> None:
    m = manifest("shop", svc(healthcheck=Healthcheck(disable=True), restart="no"))
    spec = S.service_spec(m, m.services[0], DIGEST)
    assert spec["TaskTemplate"]["ContainerSpec"]["Healthcheck"] == {"Test": ["NONE"]}
    assert spec["TaskTemplate"]["RestartPolicy"] == {"Condition": "none"}


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"privileged": True}, "privileged"),
        ({"network_mode": "host"}, "network_mode"),
        ({"pid": "host"}, "pid"),
        ({"ports": (Port(target=80, published=8080, host_ip="127.0.0.1"),)}, "ports"),
        (
            {"depends_on": (("migrate", "service_completed_successfully"),)},
            "depends_on.migrate.condition",
        ),
        ({"volumes_from": ("service:data:rw",)}, "volumes_from"),
        ({"ports": (Port(target=80, published=8080, published_end=8082),)}, "ports"),
    ],
)
def test_keys_swarm_cannot_honour_are_refused_with_the_key_and_a_fix(
    change: dict[str, object], key: str
) -> None:
    m = manifest("shop", svc(**change))
    with pytest.raises(InvalidInput) as e:
        S.service_spec(m, m.services[0], DIGEST)
    assert f"services.web.{key}" in e.value.message
    assert "engine: swarm" in e.value.message
    assert e.value.hint


def test_job_spec_runs_the_command_once_without_healthcheck_or_ports() -> None:
    s = svc(healthcheck=Healthcheck(test=("CMD", "true")), ports=(Port(target=80),))
    m = manifest("shop", s, tasks=(Task("migrate", "web", ("migrate", "--all")),))
    spec = S.job_spec(m, s, DIGEST, "shop_task-migrate-abc", ("migrate", "--all"), {})
    assert spec["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}
    assert spec["TaskTemplate"]["ContainerSpec"]["Args"] == ["migrate", "--all"]
    assert "Healthcheck" not in spec["TaskTemplate"]["ContainerSpec"]
    assert spec["TaskTemplate"]["RestartPolicy"] == {"Condition": "none"}
    assert spec["EndpointSpec"] == {"Mode": "vip"}
    assert spec["Labels"][L.ROLE] == L.ROLE_TASK
    assert "UpdateConfig" not in spec


def test_pinned_drops_the_tag_of_a_digest_reference() -> None:
    assert S.pinned("127.0.0.1:5000/a/web:v1@sha256:abc") == "127.0.0.1:5000/a/web@sha256:abc"
    assert S.pinned("127.0.0.1:5000/a/web@sha256:abc") == "127.0.0.1:5000/a/web@sha256:abc"
    assert S.pinned("web:v1") == "web:v1"


def test_convergence_deadline_grows_with_batches() -> None:
    one = svc(update_config=UpdateConfig(parallelism=1, monitor=2, delay=1))
    m = manifest("shop", one, health_timeout=10)
    assert S.convergence_deadline(m, one, 1) == 2 * (10 + 2 + 1) + 10
    assert S.convergence_deadline(m, one, 3) == 2 * 3 * (10 + 2 + 1) + 10
    allatonce = svc(update_config=UpdateConfig(parallelism=0, monitor=2))
    assert S.convergence_deadline(m, allatonce, 3) == 2 * (10 + 2) + 10


def test_named_volumes_carry_the_top_level_driver_and_labels() -> None:
    s = svc(volumes=(Mount("volume", "/data", "data"),))
    m = replace(
        manifest("shop", s), volumes=(TopVolume("data", driver="local", labels=(("k", "v"),)),)
    )
    (mount,) = S.service_spec(m, m.services[0], DIGEST)["TaskTemplate"]["ContainerSpec"]["Mounts"]
    assert mount["Source"] == "shop_data"
    assert mount["VolumeOptions"] == {
        "Labels": {"k": "v", S.STACK_NAMESPACE: "shop"},
        "DriverConfig": {"Name": "local"},
    }


def test_a_tmpfs_mount_carries_its_size_and_mode() -> None:
    s = svc(volumes=(Mount("tmpfs", "/scratch", tmpfs_size=16 * 2**20, tmpfs_mode=0o1770),))
    m = manifest("shop", s)
    (mount,) = S.service_spec(m, m.services[0], DIGEST)["TaskTemplate"]["ContainerSpec"]["Mounts"]
    assert mount["TmpfsOptions"] == {"SizeBytes": 16 * 2**20, "Mode": 0o1770}
