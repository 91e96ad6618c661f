"""The compose keys real files use, on the real engine, with Docker Compose v2 as the peer.

One app is started with ``docker compose up -d`` (v2); its web service uses most of the
keys (container_name, hostname, ulimits, sysctls, a fixed IP address, mount options, cgroup
keys, block I/O limits, ...), its db service those that cannot go with web's (a CFS period
and quota beside cpus, uts: host beside hostname).
The container compose made carries each key (inspect); the deployer adopts the app with
nothing to do; each key changed alone plans a replace that names only that key; and the
container the deployer creates in its place carries every key again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import docker
import pytest

from deployer import labels as L
from deployer.context import Context
from deployer.docker import adopt
from deployer.docker.host import DockerHost
from deployer.errors import InvalidInput
from deployer.manifest.model import (
    DeviceRequest,
    Logging,
    Manifest,
    Mount,
    NetworkAttachment,
    Service,
)
from deployer.rollout import PrintLog, Rollout
from deployer.targets import check_engine_api
from tests import composev2
from tests.docker.compose_app import ENV, ComposeProject, actions, plan_of
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

MIB = 1024 * 1024

COMPOSE = """\
services:
  db:
    image: ${{WEB_IMAGE}}
    init: true
    networks: [back]
    cpu_period: 100000
    cpu_quota: "50000"
    uts: host
  web:
    image: ${{WEB_IMAGE}}
    init: true
    container_name: {app}-the-web
    hostname: webhost
    domainname: example.test
    stdin_open: true
    tty: true
    shm_size: 128m
    sysctls: {{net.core.somaxconn: 1024}}
    ulimits: {{nofile: {{soft: 1024, hard: 2048}}, nproc: 512}}
    dns: [10.0.0.53]
    dns_search: [example.test]
    dns_opt: ["ndots:2"]
    group_add: ["100"]
    pids_limit: 100
    mem_limit: 64m
    memswap_limit: 128m
    mem_reservation: 32m
    cpus: 0.5
    cpu_shares: 512
    oom_score_adj: 100
    cap_drop: [NET_RAW]
    security_opt: ["no-new-privileges:true"]
    devices: ["/dev/null:/dev/xnull:rwm"]
    runtime: runc
    cpuset: "0"
    cpu_rt_period: 100000
    mem_swappiness: 10
    oom_kill_disable: true
    cgroup: private
    cgroup_parent: /docker
    userns_mode: host
    device_cgroup_rules: ["c 1:3 rmw"]
    blkio_config:
      device_read_bps: [{{path: {blk}, rate: 10mb}}]
      device_write_bps: [{{path: {blk}, rate: 5mb}}]
      device_read_iops: [{{path: {blk}, rate: 1000}}]
      device_write_iops: [{{path: {blk}, rate: "500"}}]
    platform: linux/amd64
    mac_address: "02:42:0a:d5:{mac}:0a"
    pull_policy: missing
    attach: false
    stop_grace_period: 1m30s
    logging:
      options: {{max-size: 10m, max-file: "3"}}
    expose: ["8081", "9000-9001/udp"]
    depends_on:
      db: {{condition: service_started}}
    volumes:
      - {data}:/srv/data/:z
      - cache:/cache:nocopy
    networks:
      back:
        ipv4_address: {ip}
    deploy:
      restart_policy: {{condition: on-failure, max_attempts: 3}}
      resources: {{reservations: {{memory: 32m}}}}
networks:
  back:
    name: {app}-backnet
    labels: {{team: shop}}
    ipam:
      config:
        - subnet: {subnet}
volumes:
  cache:
    labels: {{team: shop}}
"""


@dataclass
class App(ComposeProject):
    ip: str
    data: str
    blk: str  # the block device the blkio limits name

    def web_id(self, engine: docker.DockerClient) -> str:
        return self.service_id(engine, "web")

    def service_id(self, engine: docker.DockerClient, service: str) -> str:
        labels = [f"{L.COMPOSE_PROJECT}={self.project}", f"{L.COMPOSE_SERVICE}={service}"]
        found = engine.api.containers(filters={"label": labels})
        assert len(found) == 1, found
        return str(found[0]["Id"])


def block_device() -> str:
    """A block device of the engine's host (the tests' own machine) for the blkio limits."""
    for name in ("loop0", "vda", "sda", "nvme0n1", "xvda"):
        if Path(f"/dev/{name}").is_block_device():
            return f"/dev/{name}"
    raise AssertionError("no block device for the blkio limits on this host")


@pytest.fixture
def keys_app(app: str, testenv: TestEnv, tmp_path: Path) -> Iterator[App]:
    n = int(hashlib.sha256(app.encode()).hexdigest(), 16) % 200 + 20  # this test's subnet
    subnet, ip = f"10.213.{n}.0/24", f"10.213.{n}.10"
    data = tmp_path / "data"
    data.mkdir()
    path = tmp_path / "app"
    path.mkdir()
    text = COMPOSE.format(
        app=app, subnet=subnet, ip=ip, data=data, mac=f"{n:02x}", blk=block_device()
    )
    (path / "docker-compose.yml").write_text(text)
    (path / ".env").write_text(f"COMPOSE_PROJECT_NAME={app}\nWEB_IMAGE={testenv.image_v1}\n")
    (path / "deploy.yml").write_text(
        f"app: {app}\n"
        "compose: [docker-compose.yml]\n"
        f"environments:\n  {ENV}: {{}}\n"
        "policy:\n  allow: [devices, host-userns, host-uts, cgroup_parent, oom]\n"
        "rollout:\n  health_timeout: 60s\n  healthy_after: 1s\n"
    )
    ka = App(app, path, testenv.engine_host, ip, str(data), block_device())
    try:
        ka.compose("up", "-d")
        yield ka
    finally:
        composev2.run(
            ["-p", app, "down", "-v", "--timeout", "1"],
            cwd=path,
            docker_host=testenv.engine_host,
            check=False,
        )


def check_every_key(c: dict[str, Any], ka: App, subnet_ip: str) -> None:
    """The container carries each key of the web service."""
    config, host = c["Config"], c["HostConfig"]
    assert c["Name"] == f"/{ka.project}-the-web"
    assert (config["Hostname"], config["Domainname"]) == ("webhost", "example.test")
    assert config["Tty"] is True and config["OpenStdin"] is True
    assert config["MacAddress"].startswith("02:42:0a:d5:")
    assert host["ShmSize"] == 128 * MIB
    assert host["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert sorted((u["Name"], u["Soft"], u["Hard"]) for u in host["Ulimits"]) == [
        ("nofile", 1024, 2048),
        ("nproc", 512, 512),
    ]
    assert host["Dns"] == ["10.0.0.53"] and host["DnsSearch"] == ["example.test"]
    assert host["DnsOptions"] == ["ndots:2"] and host["GroupAdd"] == ["100"]
    assert host["PidsLimit"] == 100
    assert (host["Memory"], host["MemorySwap"], host["MemoryReservation"]) == (
        64 * MIB,
        128 * MIB,
        32 * MIB,
    )
    assert (host["NanoCpus"], host["CpuShares"], host["OomScoreAdj"]) == (500_000_000, 512, 100)
    assert [d.upper().removeprefix("CAP_") for d in host["CapDrop"]] == ["NET_RAW"]
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert [(d["PathOnHost"], d["PathInContainer"]) for d in host["Devices"]] == [
        ("/dev/null", "/dev/xnull")
    ]
    assert host["Runtime"] == "runc"
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert config["StopTimeout"] == 90
    # options without a driver: the engine's default driver's
    assert host["LogConfig"]["Config"] == {"max-size": "10m", "max-file": "3"}
    # as compose gives them: the entries as written (a range too), tcp when left out
    exposed = {k if "/" in k else f"{k}/tcp" for k in config["ExposedPorts"]}
    assert {"8081/tcp", "9000-9001/udp"} <= exposed
    mounts = {m["Destination"]: m for m in c["Mounts"]}
    assert mounts["/srv/data"]["Source"] == ka.data and "z" in mounts["/srv/data"]["Mode"]
    assert [m.get("VolumeOptions") for m in host["Mounts"] or [] if m["Target"] == "/cache"] == [
        {"NoCopy": True}
    ]
    (net,) = c["NetworkSettings"]["Networks"].items()
    assert net[0] == f"{ka.project}-backnet"
    assert net[1]["IPAddress"] == subnet_ip == net[1]["IPAMConfig"]["IPv4Address"]
    assert "web" in net[1]["Aliases"]
    assert (host["CpusetCpus"], host["CpuRealtimePeriod"]) == ("0", 100_000)
    assert (host["MemorySwappiness"], host["OomKillDisable"]) == (10, True)
    assert (host["CgroupnsMode"], host["CgroupParent"]) == ("private", "/docker")
    assert host["UsernsMode"] == "host" and host["DeviceCgroupRules"] == ["c 1:3 rmw"]
    blkio = [
        [(d["Path"], d["Rate"]) for d in host[key]]
        for key in (
            "BlkioDeviceReadBps",
            "BlkioDeviceWriteBps",
            "BlkioDeviceReadIOps",
            "BlkioDeviceWriteIOps",
        )
    ]
    assert blkio == [[(ka.blk, r)] for r in (10 * MIB, 5 * MIB, 1000, 500)]


def check_db_keys(c: dict[str, Any]) -> None:
    """The db service's keys (those that cannot go with web's)."""
    host = c["HostConfig"]
    assert (host["CpuPeriod"], host["CpuQuota"], host["UTSMode"]) == (100_000, 50_000, "host")


# Each new key changed alone: (key, a changed web service).
def changes(svc: Service) -> list[tuple[str, Service]]:
    back = svc.networks[0]
    blkio = svc.blkio_config
    assert blkio is not None
    return [
        ("container_name", replace(svc, container_name="other-name")),
        ("hostname", replace(svc, hostname="other")),
        ("domainname", replace(svc, domainname="other.test")),
        ("mac_address", replace(svc, mac_address="02:42:0a:d5:ff:0b")),
        ("runtime", replace(svc, runtime="other")),
        ("platform", replace(svc, platform="linux/arm64")),
        ("shm_size", replace(svc, shm_size=256 * MIB)),
        ("stdin_open", replace(svc, stdin_open=False)),
        ("tty", replace(svc, tty=False)),
        ("sysctls", replace(svc, sysctls=(("net.core.somaxconn", "512"),))),
        ("ulimits", replace(svc, ulimits=(("nofile", 1024, 4096),))),
        ("dns", replace(svc, dns=("10.0.0.54",))),
        ("dns_search", replace(svc, dns_search=())),
        ("dns_opt", replace(svc, dns_opt=("ndots:3",))),
        ("group_add", replace(svc, group_add=("101",))),
        ("pids_limit", replace(svc, pids_limit=200)),
        ("memory", replace(svc, memory=96 * MIB)),
        ("memswap_limit", replace(svc, memswap_limit=256 * MIB)),
        ("mem_reservation", replace(svc, mem_reservation=16 * MIB)),
        ("cpus", replace(svc, cpus=0.25)),
        ("cpu_shares", replace(svc, cpu_shares=1024)),
        ("oom_score_adj", replace(svc, oom_score_adj=0)),
        ("cap_drop", replace(svc, cap_drop=("NET_RAW", "MKNOD"))),
        ("security_opt", replace(svc, security_opt=())),
        ("devices", replace(svc, devices=())),
        ("restart", replace(svc, restart="always")),
        ("stop_grace_period", replace(svc, stop_grace_period=30.0)),
        ("logging", replace(svc, logging=Logging(options=(("max-size", "20m"),)))),
        ("logging", replace(svc, logging=None)),
        ("expose", replace(svc, expose=("8081", "9000-9002/udp"))),
        ("volumes", replace(svc, volumes=tuple(replace(m, selinux="") for m in svc.volumes))),
        ("volumes", replace(svc, volumes=tuple(replace(m, nocopy=False) for m in svc.volumes))),
        (
            "networks",
            replace(svc, networks=(replace(back, ipv4_address=back.ipv4_address[:-1] + "1"),)),
        ),
        ("cpuset", replace(svc, cpuset="1")),
        ("cpu_rt_period", replace(svc, cpu_rt_period=200_000)),
        ("cpu_rt_runtime", replace(svc, cpu_rt_runtime=1000)),
        ("mem_swappiness", replace(svc, mem_swappiness=None)),
        ("oom_kill_disable", replace(svc, oom_kill_disable=False)),
        ("cgroup", replace(svc, cgroup="host")),
        ("cgroup_parent", replace(svc, cgroup_parent=None)),
        ("userns_mode", replace(svc, userns_mode=None)),
        ("device_cgroup_rules", replace(svc, device_cgroup_rules=("c 1:5 rwm",))),
        ("storage_opt", replace(svc, storage_opt=(("size", "1G"),))),
        ("gpus", replace(svc, gpus=(DeviceRequest(("gpu",), count=-1),))),
        (
            "blkio_config",
            replace(svc, blkio_config=replace(blkio, device_write_iops=())),
        ),
        ("blkio_config", replace(svc, blkio_config=replace(blkio, weight=500))),
    ]


def db_changes(svc: Service) -> list[tuple[str, Service]]:
    return [
        ("cpu_period", replace(svc, cpu_period=200_000)),
        ("cpu_quota", replace(svc, cpu_quota=25_000)),
        ("uts", replace(svc, uts=None)),
    ]


def test_compose_v2_app_with_the_keys_is_adopted_and_each_key_is_compared(
    keys_app: App, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    web = engine.api.inspect_container(keys_app.web_id(engine))
    check_every_key(web, keys_app, keys_app.ip)
    db = engine.api.inspect_container(keys_app.service_id(engine, "db"))
    check_db_keys(db)

    m = keys_app.manifest()
    svc = m.service("web")
    assert svc.order == "stop-first"  # container_name and a fixed address: one at a time
    plan, _ = plan_of(h1, m)
    assert actions(plan) == {
        "db": ("unchanged", ("up to date",)),
        "web": ("unchanged", ("up to date",)),
    }

    image = engine.api.inspect_image(web["Image"])
    driver = engine.api.info()["LoggingDriver"]
    names = m.engine_names()
    parts = adopt.config_parts(svc, web, image, keys_app.project, driver, names)
    assert adopt.differing(parts, svc) == []
    for key, changed in changes(svc):
        parts = adopt.config_parts(changed, web, image, keys_app.project, driver, names)
        assert adopt.differing(parts, changed) == [key], key
    db_svc = m.service("db")
    parts = adopt.config_parts(db_svc, db, image, keys_app.project, driver, names)
    assert adopt.differing(parts, db_svc) == []
    for key, changed in db_changes(db_svc):
        parts = adopt.config_parts(changed, db, image, keys_app.project, driver, names)
        assert adopt.differing(parts, changed) == [key], key

    # a key changed in the compose file plans a replace naming only that key
    compose_file = keys_app.path / "docker-compose.yml"
    original = compose_file.read_text()
    compose_file.write_text(original.replace("pids_limit: 100", "pids_limit: 200"))
    plan, _ = plan_of(h1, keys_app.manifest())
    assert actions(plan)["web"] == ("replace", ("config changed: pids_limit",))
    assert actions(plan)["db"][0] == "unchanged"
    compose_file.write_text(original)


def test_the_deployer_s_own_container_keeps_every_key(
    keys_app: App, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    before = keys_app.web_id(engine)
    (keys_app.path / ".env").write_text(
        f"COMPOSE_PROJECT_NAME={keys_app.project}\nWEB_IMAGE={testenv.image_v2}\n"
    )
    m = keys_app.manifest()
    plan, observed = plan_of(h1, m)
    assert actions(plan)["web"] == ("replace", ("new image digest",))
    r = Rollout(m, plan, {h1.name: h1}, observed, Context(), PrintLog(lambda s: None))
    r.run()
    assert r.error is None, r.result.error

    after = keys_app.web_id(engine)
    assert after != before
    new = engine.api.inspect_container(after)
    assert new["State"]["Running"]
    check_every_key(new, keys_app, keys_app.ip)  # the name and the address too
    check_db_keys(engine.api.inspect_container(keys_app.service_id(engine, "db")))
    # the compose container is kept (stopped, renamed) for a rollback
    old = engine.api.inspect_container(before)
    assert not old["State"]["Running"] and old["Name"] != new["Name"]

    # the next plan sees nothing to do (the deployer's labels record every key)
    plan, _ = plan_of(h1, keys_app.manifest())
    assert not plan.changes, actions(plan)
    # and Compose v2 still lists both services, running
    running = keys_app.compose("ps", "--services", "--filter", "status=running").split()
    assert sorted(running) == ["db", "web"]


def test_a_trailing_slash_in_a_volume_target_is_the_same_mount(
    keys_app: App, h1: DockerHost, engine: docker.DockerClient
) -> None:
    m = keys_app.manifest()
    svc = m.service("web")
    assert [v.target for v in svc.volumes] == ["/srv/data", "/cache"]
    plan, _ = plan_of(h1, m)
    assert actions(plan)["web"][0] == "unchanged"


def test_settings_newer_engines_have_are_refused_before_anything_changes(
    h1: DockerHost,
) -> None:
    m = Manifest(
        path="deploy.yml",
        app="x",
        environment=load_environment(),
        services=(
            Service(
                "web",
                "r/web:1",
                volumes=(Mount("volume", "/data", "data", subpath="sub"),),
                annotations=(("a", "b"),),
                networks=(NetworkAttachment("default"),),
            ),
        ),
    )
    with pytest.raises(InvalidInput) as exc:
        check_engine_api(m, [(h1.name, h1.conn.api_version)])
    text = exc.value.message
    assert "services.web.volumes[0]: a volume subpath needs Docker API 1.45" in text
    assert "services.web.annotations: annotations needs Docker API 1.43" in text
    assert f"speaks {h1.conn.api_version}" in text


def load_environment() -> Any:
    from deployer.manifest.model import Environment

    return Environment(ENV)
