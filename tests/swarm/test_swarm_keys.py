"""The compose keys on a real single-node swarm: what Swarm has is in the service spec and on
the task container; what it has not is refused naming the key before anything changes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import docker
import pytest

from deployer.errors import InvalidInput
from deployer.manifest.model import BlkioConfig, DeviceRequest, Mount
from deployer.report.log import PrintLog
from deployer.result import Outcome
from deployer.swarm import SwarmTarget
from deployer.swarm.api import SwarmApi
from tests.swarm.helpers import manifest, web
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

QUIET = PrintLog(lambda _: None)
MIB = 1024 * 1024


def deploy(swarm: docker.DockerClient, m: Any) -> Any:
    t = SwarmTarget(SwarmApi(m, swarm, "local-manager"))
    return t.apply(t.plan(), QUIET)


def test_the_keys_swarm_has_reach_the_service_and_its_task(
    swarm: docker.DockerClient, swarm_app: str, testenv: TestEnv
) -> None:
    svc = replace(
        web(testenv.image_v1),
        hostname="webhost",
        tty=True,
        stdin_open=True,
        sysctls=(("net.core.somaxconn", "1024"),),
        ulimits=(("nofile", 1024, 2048),),
        dns=("10.0.0.53",),
        dns_search=("example.test",),
        dns_opt=("ndots:2",),
        group_add=("100",),
        cap_drop=("NET_RAW",),
        pids_limit=100,
        mem_reservation=32 * MIB,
        cpus_reservation=0.1,
        deploy_labels=(("com.example.team", "shop"),),
        placement_constraints=("node.role == manager",),
        platform="linux/amd64",
        restart="on-failure:3",
        restart_delay=1.0,
        global_mode=True,
    )
    m = manifest(swarm_app, svc)
    r = deploy(swarm, m)
    assert r.outcome is Outcome.DEPLOYED, r.error

    api: Any = swarm.api
    spec = api.inspect_service(f"{swarm_app}_web")["Spec"]
    assert spec["Labels"]["com.example.team"] == "shop"
    assert "Global" in spec["Mode"]
    template = spec["TaskTemplate"]
    c = template["ContainerSpec"]
    assert c["Hostname"] == "webhost" and c["TTY"] is True and c["OpenStdin"] is True
    assert c["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert c["DNSConfig"] == {
        "Nameservers": ["10.0.0.53"],
        "Search": ["example.test"],
        "Options": ["ndots:2"],
    }
    assert c["Groups"] == ["100"] and c["CapabilityDrop"] == ["NET_RAW"]
    assert template["Resources"]["Limits"]["Pids"] == 100
    assert template["Resources"]["Reservations"] == {
        "NanoCPUs": 100_000_000,
        "MemoryBytes": 32 * MIB,
    }
    assert template["Placement"]["Constraints"] == ["node.role == manager"]
    assert template["RestartPolicy"]["Condition"] == "on-failure"
    assert template["RestartPolicy"]["MaxAttempts"] == 3

    # the task container carries them (the engine applied the spec)
    tasks = api.tasks(filters={"service": f"{swarm_app}_web", "desired-state": "running"})
    (task,) = [t for t in tasks if t["Status"]["State"] == "running"]
    info = api.inspect_container(task["Status"]["ContainerStatus"]["ContainerID"])
    assert info["Config"]["Hostname"] == "webhost" and info["Config"]["Tty"] is True
    host = info["HostConfig"]
    assert host["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert [(u["Name"], u["Soft"], u["Hard"]) for u in host["Ulimits"]] == [("nofile", 1024, 2048)]
    assert host["Dns"] == ["10.0.0.53"] and host["GroupAdd"] == ["100"]
    assert host["PidsLimit"] == 100  # (a reservation is for the scheduler, not the container)

    # the same manifest again: nothing to do; one key changed: a replace naming it
    t = SwarmTarget(SwarmApi(m, swarm, "local-manager"))
    assert not t.plan().changes
    changed = manifest(swarm_app, replace(svc, ulimits=(("nofile", 1024, 4096),)))
    plan = SwarmTarget(SwarmApi(changed, swarm, "local-manager")).plan()
    (step,) = plan.hosts[0].steps
    assert step.reasons == ("config changed: ulimits",)


@pytest.mark.parametrize(
    ("key", "change"),
    [
        ("shm_size", {"shm_size": 128 * MIB}),
        ("security_opt", {"security_opt": ("no-new-privileges:true",)}),
        ("devices", {"devices": ("/dev/null",)}),
        (
            "deploy.resources.reservations.devices",
            {"device_requests": (DeviceRequest(("gpu",), "nvidia", -1),)},
        ),
        ("mac_address", {"mac_address": "02:42:ac:11:00:02"}),
        ("volumes[0]", {"volumes": (Mount("bind", "/x", "/srv", selinux="z"),)}),
        ("gpus", {"gpus": (DeviceRequest(("gpu",), count=-1),)}),
        ("cpuset", {"cpuset": "0"}),
        ("cpu_period", {"cpu_period": 100_000}),
        ("cpu_quota", {"cpu_quota": 50_000}),
        ("cpu_rt_period", {"cpu_rt_period": 100_000}),
        ("cpu_rt_runtime", {"cpu_rt_runtime": 1000}),
        ("mem_swappiness", {"mem_swappiness": 10}),
        ("oom_kill_disable", {"oom_kill_disable": True}),
        ("cgroup", {"cgroup": "private"}),
        ("cgroup_parent", {"cgroup_parent": "/docker"}),
        ("userns_mode", {"userns_mode": "host"}),
        ("uts", {"uts": "host"}),
        ("storage_opt", {"storage_opt": (("size", "1G"),)}),
        ("blkio_config", {"blkio_config": BlkioConfig(device_read_iops=(("/dev/sda", 9),))}),
        ("device_cgroup_rules", {"device_cgroup_rules": ("c 1:3 rwm",)}),
    ],
)
def test_a_key_swarm_has_not_is_refused_before_anything_changes(
    swarm: docker.DockerClient, swarm_app: str, testenv: TestEnv, key: str, change: dict[str, Any]
) -> None:
    m = manifest(swarm_app, replace(web(testenv.image_v1), **change))
    with pytest.raises(InvalidInput) as exc:
        deploy(swarm, m)
    assert f"services.web.{key}" in exc.value.message
    assert "engine: container" in (exc.value.hint or "")
    api: Any = swarm.api
    assert api.services(filters={"name": f"{swarm_app}_web"}) == []
