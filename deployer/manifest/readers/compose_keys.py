"""The container keys of compose added after the first release, as a table of readers.

Each reader puts only the keys the service sets into ``out`` (``Service`` keyword arguments),
so the others keep their defaults and stay out of the config hash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from deployer.manifest import parse
from deployer.manifest.problems import Path
from deployer.manifest.readers import cgroups, deploy, lifecycle, security
from deployer.manifest.readers.values import (
    CONTAINER_NAME,
    MAC,
    PLATFORM,
    ULIMIT_NAME,
    is_ip,
)

if TYPE_CHECKING:
    from deployer.manifest.readers.core import Builder

Reader = Callable[["Builder", Path, dict[str, Any], dict[str, Any]], None]


def compose_keys(b: Builder, path: Path, raw: dict[str, Any]) -> dict[str, Any]:
    """The keys this service sets, as ``Service`` keyword arguments."""
    out: dict[str, Any] = {}
    for reader in READERS:
        reader(b, path, raw, out)
    return out


def read_texts(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    for key in ("hostname", "domainname", "runtime"):
        value = raw.get(key)
        if isinstance(value, str) and value:
            out[key] = value


def read_container_name(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    name = raw.get("container_name")
    if not isinstance(name, str):
        return
    p = (*path, "container_name")
    if not CONTAINER_NAME.match(name):
        b.err(
            p,
            f'"{name}" is not a valid container name',
            "use letters, digits and _ . - (starting with a letter or digit)",
        )
        return
    out["container_name"] = name
    spec = deploy.section(raw)
    replicas = spec.get("replicas", raw.get("scale", 1))
    if isinstance(replicas, int) and replicas > 1:
        b.err(
            p,
            f"container_name names one container, but the service has {replicas} replicas",
            "remove container_name, or use replicas: 1",
        )
    uc = spec.get("update_config")
    if isinstance(uc, dict) and uc.get("order") == "start-first":
        b.err(
            (*path, "deploy", "update_config", "order"),
            "start-first cannot work with container_name: the new container "
            "cannot take the name while the old one has it",
            "use order: stop-first, or remove container_name",
        )
    if b.engine == "swarm":
        b.err(
            p,
            "container_name is not possible with engine: swarm (Swarm names the "
            "task containers itself)",
            "remove container_name, or deploy this environment with engine: container",
        )


def read_mac_platform(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    mac = raw.get("mac_address")
    if isinstance(mac, str):
        if not MAC.match(mac):
            b.err((*path, "mac_address"), f'"{mac}" is not a MAC address')
        else:
            out["mac_address"] = mac.lower()
    platform = raw.get("platform")
    if isinstance(platform, str) and platform:  # empty (`${DOCKER_PLATFORM:-}`): unset
        if not PLATFORM.match(platform):
            b.err(
                (*path, "platform"),
                f'"{platform}" is not a platform',
                "write OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8",
            )
        else:
            out["platform"] = platform


def size(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any], key: str) -> None:
    """A byte size ``key`` of the service, into ``out`` under its field's name."""
    value = raw.get(key)
    name = "memory" if key == "mem_limit" else key
    if value is None:
        return
    if key == "memswap_limit" and value in (-1, "-1"):
        out[name] = -1
        return
    got = b.parsed((*path, key), parse.size, value)
    if got:  # 0 is no limit (the engine's default), as compose reads it: not set
        out[name] = got


def read_shm_tty(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    size(b, path, raw, out, "shm_size")
    for key in ("stdin_open", "tty"):
        if raw.get(key) is True:
            out[key] = True


def read_pairs(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    for key in ("annotations", "sysctls"):
        pairs = b.pairs((*path, key), raw.get(key))
        if pairs:
            out[key] = pairs
    limits = ulimits(b, (*path, "ulimits"), raw.get("ulimits"))
    if limits:
        out["ulimits"] = limits


def ulimits(b: Builder, path: Path, raw: Any) -> tuple[tuple[str, int, int], ...]:
    out = []
    if not isinstance(raw, dict):
        return ()
    for name, spec in raw.items():
        p = (*path, name)
        if not ULIMIT_NAME.match(name):
            b.err(p, f'"{name}" is not a ulimit name', "e.g. nofile, nproc, memlock")
            continue
        if isinstance(spec, int) and not isinstance(spec, bool):
            out.append((name, spec, spec))
        elif isinstance(spec, dict):
            soft, hard = spec.get("soft"), spec.get("hard")
            if not isinstance(soft, int) or not isinstance(hard, int):
                b.err(p, "a ulimit needs `soft` and `hard` (integers)", key=True)
            elif soft > hard and hard != -1:
                b.err(p, f"the soft limit {soft} is above the hard limit {hard}")
            else:
                out.append((name, soft, hard))
    return tuple(sorted(out))


def read_lists(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    """dns, dns_search, dns_opt, group_add, cap_drop: a string or a list of them."""
    for key in ("dns", "dns_search", "dns_opt", "group_add", "cap_drop"):
        value = raw.get(key)
        items = [value] if isinstance(value, str | int) else value
        if isinstance(items, list) and items:
            out[key] = tuple(str(v) for v in items if isinstance(v, str | int))
    for i, d in enumerate(out.get("dns", ())):
        if not is_ip(d):
            p = (*path, "dns", i) if isinstance(raw.get("dns"), list) else (*path, "dns")
            b.err(p, f'"{d}" is not an IP address (a DNS server)')
    for key in ("dns", "dns_search", "dns_opt", "cap_drop"):
        if key in out:  # compose keeps the first of equal entries (group_add: refused)
            out[key] = tuple(dict.fromkeys(out[key]))


def read_numbers(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    for key in ("pids_limit", "cpu_shares", "oom_score_adj"):
        value = raw.get(key)
        # 0 is the engine's default for each: not set, as compose reads it
        if isinstance(value, int) and not isinstance(value, bool) and value != 0:
            if key == "oom_score_adj" and not -1000 <= value <= 1000:
                b.err((*path, key), f"{value} is out of range", "use -1000 to 1000")
            out[key] = value


def read_limits(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    """mem_limit, memswap_limit, mem_reservation and cpus (compose's v2 style)."""
    for key in ("mem_limit", "memswap_limit", "mem_reservation"):
        size(b, path, raw, out, key)
    if raw.get("cpus") is not None:
        cpus = b.parsed((*path, "cpus"), parse.cpus, raw["cpus"])
        if cpus:  # 0 is no limit
            out["cpus"] = cpus


def read_security(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    security.security_opt(b, path, raw, out)
    security.devices(b, path, raw, out)


def read_gpus(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    """``gpus: all`` or a list of requests, as compose gives them to the engine (after the
    reservations of ``deploy.resources.reservations.devices``): policy-gated as devices."""
    value = raw.get("gpus")
    p = (*path, "gpus")
    if isinstance(value, str):
        if value.strip().lower() != "all":
            b.err(
                p,
                f'"{value}" is not a GPU request',
                "write `gpus: all`, or a list of {driver, count, device_ids, capabilities, "
                "options}",
            )
            return
        value = [{"count": "all"}]  # compose's own reading of the short form
    requests = deploy.device_requests(b, p, value, gpus=True)
    if requests:
        out["gpus"] = requests


def read_namespaces(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    security.namespaces(b, path, raw, out)
    security.runtime_and_cgroup_parent(b, path, raw)
    security.device_cgroup_rules(b, path, raw, out)


def read_deploy_keys(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    deploy.deploy_keys(b, (*path, "deploy"), deploy.section(raw), out)


READERS: tuple[Reader, ...] = (
    read_texts,
    read_container_name,
    read_mac_platform,
    read_shm_tty,
    read_pairs,
    read_lists,
    read_numbers,
    read_limits,
    read_security,
    read_deploy_keys,
    read_gpus,
    cgroups.read_cpu,
    cgroups.read_memory,
    cgroups.read_cgroup_parent,
    cgroups.read_blkio,
    read_namespaces,
    lifecycle.read_hooks,
    lifecycle.read_api_socket,
)
