"""gpus and the cgroup keys (cpuset, CPU periods and quotas, real-time CPU time, swappiness,
the OOM killer, cgroup namespace and parent, user and UTS namespaces, storage options,
block I/O, device rules): read as Docker Compose v2 reads them (its own `config` is the
referee), and a key left unset or at the value compose does not send keeps the config
hash. The refusals (located, exit 2) are in the corpus: ``invalid/keys_cgroup_*.yml``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deployer.manifest import check_manifest, load_manifest
from deployer.manifest.model import BlkioConfig, DeviceRequest, Service
from tests import composev2

COMPOSE = """\
services:
  web:
    image: registry.example.com/shop/web:1.0
    gpus: all
    cpuset: "0-1,3"
    cpu_rt_period: 1000000
    cpu_rt_runtime: "950000"
    mem_limit: 1g
    mem_swappiness: "10"
    oom_kill_disable: true
    cgroup: host
    cgroup_parent: /docker
    userns_mode: host
    storage_opt: {size: 10G}
    blkio_config:
      weight: 300
      weight_device: [{path: /dev/sda, weight: 400}]
      device_read_bps: [{path: /dev/sda, rate: 12mb}]
      device_write_bps: [{path: /dev/sda, rate: "1024k"}]
      device_read_iops: [{path: /dev/sda, rate: 120}]
      device_write_iops: [{path: /dev/sda, rate: "30"}]
    device_cgroup_rules: ["c 1:3 rwm", "a *:* r"]
  worker:
    image: registry.example.com/shop/worker:1.0
    gpus:
      - {driver: nvidia, count: 2, capabilities: [compute]}
      - {device_ids: ["0", "1"], options: {a: b}}
      - {capabilities: [gpu], count: "ALL"}
    deploy:
      resources:
        reservations:
          devices: [{capabilities: [gpu], driver: nvidia}]
    cpu_period: 100000
    cpu_quota: "50000"
    uts: host
    cgroup: private
"""
DEPLOY = """\
app: shop
compose: [docker-compose.yml]
environments:
  production: {}
policy:
  allow: [devices, host-cgroup, host-userns, host-uts, cgroup_parent, oom]
"""
MIB = 1024 * 1024


def project(tmp_path: Path, compose: str = COMPOSE, deploy: str = DEPLOY) -> Path:
    (tmp_path / "docker-compose.yml").write_text(compose)
    (tmp_path / "deploy.yml").write_text(deploy)
    return tmp_path / "deploy.yml"


def test_the_keys_are_read_as_docker_compose_gives_them_to_the_engine(tmp_path: Path) -> None:
    m = load_manifest(project(tmp_path), "production", {})
    web, worker = m.service("web"), m.service("worker")
    assert web.gpus == (DeviceRequest(("gpu",), "", -1),)  # `all`: compose's own reading
    assert (web.cpuset, web.cpu_rt_period, web.cpu_rt_runtime) == ("0-1,3", 1_000_000, 950_000)
    assert (web.mem_swappiness, web.oom_kill_disable) == (10, True)
    assert (web.cgroup, web.cgroup_parent, web.userns_mode) == ("host", "/docker", "host")
    assert web.storage_opt == (("size", "10G"),)
    assert web.blkio_config == BlkioConfig(
        weight=300,
        weight_device=(("/dev/sda", 400),),
        device_read_bps=(("/dev/sda", 12 * MIB),),
        device_write_bps=(("/dev/sda", MIB),),
        device_read_iops=(("/dev/sda", 120),),
        device_write_iops=(("/dev/sda", 30),),
    )
    assert web.device_cgroup_rules == ("c 1:3 rwm", "a *:* r")
    # compose adds "gpu" to each request's capabilities, also where it is listed already
    assert worker.gpus == (
        DeviceRequest(("compute", "gpu"), "nvidia", 2),
        DeviceRequest(("gpu",), "", 0, ("0", "1"), (("a", "b"),)),
        DeviceRequest(("gpu", "gpu"), "", -1),
    )
    assert worker.device_requests == (DeviceRequest(("gpu",), "nvidia", -1),)
    assert (worker.cpu_period, worker.cpu_quota, worker.uts, worker.cgroup) == (
        100_000,
        50_000,
        "host",
        "private",
    )


def test_docker_compose_config_reads_the_same_values(tmp_path: Path) -> None:
    m = load_manifest(project(tmp_path), "production", {})
    theirs = composev2.config_services(tmp_path)
    for svc in m.services:
        compare(svc, theirs[svc.name])


def compare(svc: Service, theirs: dict[str, Any]) -> None:
    for key in ("cpuset", "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime"):
        assert getattr(svc, key) == theirs.get(key), key
    assert svc.mem_swappiness == (
        int(theirs["mem_swappiness"]) if "mem_swappiness" in theirs else None
    )
    for key in ("cgroup", "cgroup_parent", "userns_mode", "uts"):
        assert getattr(svc, key) == theirs.get(key), key
    assert svc.oom_kill_disable == theirs.get("oom_kill_disable", False)
    assert dict(svc.storage_opt) == theirs.get("storage_opt", {})
    assert list(svc.device_cgroup_rules) == theirs.get("device_cgroup_rules", [])
    blkio = theirs.get("blkio_config", {})
    if svc.blkio_config is not None:
        b = svc.blkio_config
        assert b.weight == blkio.get("weight", 0)
        assert list(b.weight_device) == [(d["Path"], d["Weight"]) for d in blkio["weight_device"]]
        for key in ("device_read_bps", "device_write_bps", "device_read_iops", "device_write_iops"):
            assert list(getattr(b, key)) == [(d["Path"], int(d["Rate"])) for d in blkio[key]], key
    gpus = [
        DeviceRequest(
            (*g.get("capabilities", ()), "gpu"),
            g.get("driver", ""),
            g.get("count", 0),
            tuple(g.get("device_ids", ())),
            tuple(sorted(g.get("options", {}).items())),
        )
        for g in theirs.get("gpus", [])
    ]
    assert list(svc.gpus) == gpus


def test_keys_left_unset_or_at_what_compose_does_not_send_keep_the_config_hash(
    tmp_path: Path,
) -> None:
    base = "services:\n  web:\n    image: registry.example.com/shop/web:1.0\n"
    plain = load_manifest(project(tmp_path, base), "production", {}).service("web")
    zeros = (
        "    cpu_period: 0\n    cpu_quota: 0\n    cpu_rt_period: 0\n    cpu_rt_runtime: 0\n"
        "    mem_swappiness: 0\n    oom_kill_disable: false\n    cgroup_parent: ''\n"
        "    storage_opt: {}\n    blkio_config: {weight: 0}\n    device_cgroup_rules: []\n"
        "    gpus: []\n"
    )
    report = check_manifest(project(tmp_path, base + zeros), "production", {})
    assert report.ok, [p.render() for p in report.problems]
    (warning,) = report.warnings  # mem_swappiness: 0 is not sent, as compose
    assert warning.path == "services.web.mem_swappiness" and "docker compose" in warning.message
    same = load_manifest(project(tmp_path, base + zeros), "production", {}).service("web")
    assert same.config_parts() == plain.config_parts()
    assert same.config_hash() == plain.config_hash()
    set_ = load_manifest(project(tmp_path, base + "    cpuset: '0'\n"), "production", {})
    assert set(set_.service("web").config_parts()) - set(plain.config_parts()) == {"cpuset"}


def test_an_engine_too_old_for_a_key_is_refused_before_anything_changes(tmp_path: Path) -> None:
    from deployer.errors import InvalidInput
    from deployer.targets import check_engine_api

    m = load_manifest(project(tmp_path), "production", {})
    check_engine_api(m, [("h1", "1.41")])
    with pytest.raises(InvalidInput) as exc:
        check_engine_api(m, [("h1", "1.39")])
    lines = exc.value.message.splitlines()
    assert sorted(line.split(": ")[1] for line in lines) == [
        "services.web.cgroup",
        "services.web.gpus",
        "services.worker.cgroup",
        "services.worker.gpus",
    ]
    assert "a GPU request needs Docker API 1.40 (the engine of h1 speaks 1.39)" in lines[1]
