"""Does a container docker compose started already run what the manifest describes?

The deployer's own containers carry per-key config hashes (``io.deployer.config-parts``);
compose's do not, so adoption compares the container's inspect with what our create
(deployer/docker/containers.py) would produce for the desired ``Service``, key by key,
normalising the defaults the engine fills in at create (it merges the image's Env, Cmd,
Entrypoint, User, WorkingDir, StopSignal, Labels, ExposedPorts, Volumes and Healthcheck
into the container's config).

``config_parts`` returns, for each key of ``Service.config_parts()``, the desired part's
hash when the container matches it and ``DIFFERS`` when it does not, so the pure plan
(deployer/plan.py) diffs an adopted container exactly like one of ours and names the keys
that changed. When a key cannot be shown to match, it differs: a needless replace is safe,
a missed change is not.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from deployer.apispec import exposed_ports, nano_cpus
from deployer.docker.containers import healthcheck_config
from deployer.manifest.model import (
    API_SOCKET,
    API_SOCKET_CONFIG,
    BlkioConfig,
    DeviceRequest,
    Service,
    differing_parts,
)
from deployer.naming import by_priority

DIFFERS = "differs"
EXTRA = "settings outside the manifest"  # a part only a container can have

_ANONYMOUS = re.compile(r"^[0-9a-f]{64}$")
_HC_KEYS = ("Interval", "Timeout", "StartPeriod", "Retries")
_COMPOSE_LABEL = "com.docker.compose."


class Inspect:
    """The parts of a container's and its image's inspect the comparisons read."""

    def __init__(
        self,
        container: Mapping[str, Any],
        image: Mapping[str, Any],
        project: str,
        default_log_driver: str | None,
        engine_names: Mapping[str, str] | None = None,
        default_cgroupns: str | None = None,
        services: Mapping[str, str] | None = None,
        project_containers: Collection[str] | None = None,
    ) -> None:
        self.id = str(container.get("Id", ""))
        self.name = str(container.get("Name", "")).lstrip("/")
        self.config: Mapping[str, Any] = container.get("Config") or {}
        self.host: Mapping[str, Any] = container.get("HostConfig") or {}
        self.mounts: list[Mapping[str, Any]] = list(container.get("Mounts") or [])
        settings = container.get("NetworkSettings") or {}
        self.networks: Mapping[str, Any] = settings.get("Networks") or {}
        self.image: Mapping[str, Any] = image.get("Config") or {}
        self.image_root: Mapping[str, Any] = image
        self.project = project
        self.default_log_driver = default_log_driver
        self.engine_names = engine_names or {}
        self.default_cgroupns = default_cgroupns  # None: not known
        # container id -> its compose service, of the project's containers
        self.services = services or {}
        # the names of the project's containers (None: not known)
        self.project_containers = project_containers

    def names(self, name: str, kind: str) -> set[str]:
        """Engine names a network or volume (``kind``) ``name`` of the compose project may
        have (compose's `name:` gives it its own)."""
        given = self.engine_names.get(f"{kind}:{name}")
        return {given} if given else {f"{self.project}_{name}", name}


def _env(entries: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in entries or []:
        k, _, v = str(e).partition("=")
        out[k] = v
    return out


def _list(value: Any) -> list[str] | None:
    return [str(v) for v in value] if value else None


def _command(svc: Service, i: Inspect) -> bool:
    return _list(i.config.get("Cmd")) == _expected_cmd_entrypoint(svc, i)[0]


def _entrypoint(svc: Service, i: Inspect) -> bool:
    return _list(i.config.get("Entrypoint")) == _expected_cmd_entrypoint(svc, i)[1]


def _expected_cmd_entrypoint(svc: Service, i: Inspect) -> tuple[list[str] | None, list[str] | None]:
    """(Cmd, Entrypoint) as the engine stores them: with no entrypoint given the image's
    Cmd (when no command) and Entrypoint apply; a given entrypoint drops the image's Cmd."""
    if not svc.entrypoint:
        cmd = list(svc.command) if svc.command else _list(i.image.get("Cmd"))
        ep = (
            _list(i.image.get("Entrypoint"))
            if svc.entrypoint is None
            else list(svc.entrypoint) or None
        )
        return cmd, ep
    return (list(svc.command) or None if svc.command is not None else None), list(svc.entrypoint)


def _environment(svc: Service, i: Inspect) -> bool:
    want = {**_env(i.image.get("Env")), **dict(svc.environment)}
    have = _env(i.config.get("Env"))
    if "DOCKER_CONFIG" not in want and have.get("DOCKER_CONFIG") == API_SOCKET_CONFIG:
        del have["DOCKER_CONFIG"]  # use_api_socket's (compared there)
    return have == want


def _api_socket_mount(svc: Service, i: Inspect) -> Mapping[str, Any] | None:
    """The bind of the engine's socket compose adds for ``use_api_socket``: one the
    service's ``volumes`` do not name."""
    if any(m.type == "bind" and m.target == API_SOCKET for m in svc.volumes):
        return None
    for h in i.mounts:
        if h.get("Type") == "bind" and h.get("Destination") == API_SOCKET:
            return h if h.get("Source") == API_SOCKET else None
    return None


def _use_api_socket(svc: Service, i: Inspect) -> bool:
    mounted = _api_socket_mount(svc, i) is not None
    env = {**_env(i.image.get("Env")), **dict(svc.environment)}
    have = _env(i.config.get("Env")).get("DOCKER_CONFIG")
    config = have == env.get("DOCKER_CONFIG", API_SOCKET_CONFIG)
    return mounted == svc.use_api_socket and (config or not svc.use_api_socket)


def _ports(svc: Service, i: Inspect) -> bool:
    want = sorted(
        (
            f"{p.target}/{p.protocol}",
            p.host_ip or "",
            p.host_port,
        )
        for p in svc.ports
    )
    have = sorted(
        (str(key), str(b.get("HostIp") or ""), str(b.get("HostPort") or ""))
        for key, bindings in (i.host.get("PortBindings") or {}).items()
        for b in bindings or []
    )
    return have == want


def _port_key(text: str) -> str:
    port, _, proto = text.partition("/")
    return f"{port}/{proto or 'tcp'}"


def _expose(svc: Service, i: Inspect) -> bool:
    # Compose v2 writes an exposed port without its protocol ("8081"): the engine means tcp
    want = {_port_key(k) for k in (i.image.get("ExposedPorts") or {})}
    want |= {f"{p.target}/{p.protocol}" for p in svc.ports}
    want |= set(exposed_ports(svc.expose))
    return {_port_key(k) for k in (i.config.get("ExposedPorts") or {})} == want


def _nocopy(i: Inspect, target: str) -> bool:
    """Whether the container's mount at ``target`` was created with nocopy."""
    for m in i.host.get("Mounts") or []:
        if posixpath.normpath(str(m.get("Target") or "")) == target:
            return bool((m.get("VolumeOptions") or {}).get("NoCopy"))
    for b in i.host.get("Binds") or []:
        parts = str(b).split(":")
        if len(parts) >= 3 and posixpath.normpath(parts[1]) == target:
            return "nocopy" in parts[2].split(",")
    return False


def _volumes_from(svc: Service, i: Inspect) -> bool:
    """As many sources as the service names: compose gives the engine container ids (and
    leaves out the mode), which name no service once their containers are replaced."""
    return len(i.host.get("VolumesFrom") or []) == len(svc.volumes_from)


def _tmpfs_options(i: Inspect, target: str) -> tuple[int, int]:
    """(size, mode) the container's tmpfs mount at ``target`` was created with (0: unset)."""
    for m in i.host.get("Mounts") or []:
        if posixpath.normpath(str(m.get("Target") or "")) == target:
            options = m.get("TmpfsOptions") or {}
            return int(options.get("SizeBytes") or 0), int(options.get("Mode") or 0)
    return 0, 0


def _subpath(i: Inspect, target: str) -> str:
    for m in i.host.get("Mounts") or []:
        if posixpath.normpath(str(m.get("Target") or "")) == target:
            return str((m.get("VolumeOptions") or {}).get("Subpath") or "")
    return ""


def _selinux(h: Mapping[str, Any]) -> str:
    modes = str(h.get("Mode") or "").split(",")
    return "Z" if "Z" in modes else "z" if "z" in modes else ""


def _volumes(svc: Service, i: Inspect) -> bool:
    socket = _api_socket_mount(svc, i)  # use_api_socket's (compared there)
    unmatched = [h for h in i.mounts if h is not socket]
    for m in svc.volumes:
        found = None
        for h in unmatched:
            destination = posixpath.normpath(str(h.get("Destination") or "/"))
            if destination != m.target or bool(h.get("RW", True)) == m.read_only:
                continue
            kind, name = h.get("Type"), str(h.get("Name") or "")
            if m.type == "volume" and kind == "volume":
                ok = (
                    (name in i.names(m.source, "volume"))
                    if m.source
                    else bool(_ANONYMOUS.match(name))
                )
                ok = ok and _nocopy(i, m.target) == m.nocopy and _subpath(i, m.target) == m.subpath
            elif m.type == "bind" and kind == "bind":
                ok = h.get("Source") == m.source and _selinux(h) == m.selinux
                ok = ok and (h.get("Propagation") or "rprivate") == (m.propagation or "rprivate")
            else:
                ok = m.type == "tmpfs" and kind == "tmpfs"
                ok = ok and _tmpfs_options(i, m.target) == (m.tmpfs_size, m.tmpfs_mode)
            if ok:
                found = h
                break
        if found is None:
            return False
        unmatched.remove(found)
    if svc.volumes_from:
        return True  # the mounts left are the sources' (compared by `volumes_from`)
    image_volumes = set((i.image.get("Volumes") or {}).keys())
    # Anonymous volumes the image declares are carried over by our create as well.
    return all(
        h.get("Type") == "volume"
        and _ANONYMOUS.match(str(h.get("Name") or ""))
        and h.get("Destination") in image_volumes
        for h in unmatched
    )


def _networks(svc: Service, i: Inspect) -> bool:
    if svc.network_mode:
        return not svc.networks  # our create joins no network then
    attachments = svc.networks or ()
    wanted = (
        [(i.names(a.name, "network"), {svc.name, *a.aliases}) for a in attachments]
        if attachments
        else [(i.names("default", "network"), {svc.name})]
    )
    if len(i.networks) != len(wanted):
        return False
    if any(a.priority for a in attachments):
        # the container was created on the network of the highest priority (compose's
        # and ours): its network mode names it
        first = by_priority(attachments)[0].name
        if str(i.host.get("NetworkMode") or "") not in i.names(first, "network"):
            return False
    ignore = {i.id[:12], i.id, i.name}
    hostname = str(i.config.get("Hostname") or "")
    if hostname:
        ignore.add(hostname)  # compose v2 adds the host name as an alias; our create does too
    addresses = (
        [(a.ipv4_address, a.ipv6_address) for a in attachments] if attachments else [("", "")]
    )
    for (names, aliases), (ip4, ip6) in zip(wanted, addresses, strict=True):
        hit = [n for n in i.networks if n in names]
        if len(hit) != 1:
            return False
        endpoint = i.networks[hit[0]] or {}
        have = {str(a) for a in endpoint.get("Aliases") or []} - ignore
        if have != aliases - ignore:
            return False
        ipam = endpoint.get("IPAMConfig") or {}
        if str(ipam.get("IPv4Address") or "") != ip4 or str(ipam.get("IPv6Address") or "") != ip6:
            return False
    for a in attachments:  # the MAC address and gateway priority written on a network
        hit = [n for n in i.networks if n in i.names(a.name, "network")]
        endpoint = (i.networks[hit[0]] or {}) if hit else {}
        mac = str(endpoint.get("MacAddress") or "").lower()
        if a.mac_address and mac != a.mac_address:
            return False
        if int(endpoint.get("GwPriority") or 0) != a.gw_priority:
            return False
    return True


def _pairs(links: Any) -> set[tuple[str, str]]:
    """Links as (container, alias): given as ``CONTAINER:ALIAS``, or as the engine shows
    its legacy links in HostConfig.Links, ``/CONTAINER:/THIS-CONTAINER/ALIAS``."""
    out = set()
    for link in links or []:
        container, _, alias = str(link).partition(":")
        out.add((container.lstrip("/"), alias.rsplit("/", 1)[-1] or container.lstrip("/")))
    return out


def _legacy_links(svc: Service, i: Inspect) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """The container's legacy links (HostConfig.Links: the engine keeps there the links of
    its default bridge only) split in (the external ones, the others). compose writes
    there its ``external_links`` and its ``links`` to the project's own containers (under
    three aliases each), which our create does not make. Without the names of the
    project's containers, the links to the containers ``external_links`` names are the
    external ones."""
    legacy = _pairs(i.host.get("Links"))
    if i.project_containers is None:
        named = {c for c, _ in _pairs(svc.external_links)}
        external = {(c, a) for c, a in legacy if c in named}
    else:
        own = set(i.project_containers)
        external = {(c, a) for c, a in legacy if c not in own}
    return external, legacy - external


def _external_links(svc: Service, i: Inspect) -> bool:
    """On the default bridge the engine keeps the links (``CONTAINER:ALIAS``) as legacy
    links in HostConfig.Links; on a user network compose gives each endpoint the links,
    its own links to the project's containers beside them."""
    want = _pairs(svc.external_links)
    external, _ = _legacy_links(svc, i)
    if external or _on_default_bridge(i):
        return external == want
    if not want:
        return True
    endpoints = list(i.networks.values())
    return bool(endpoints) and all(want <= _pairs((ep or {}).get("Links")) for ep in endpoints)


def _on_default_bridge(i: Inspect) -> bool:
    return str(i.host.get("NetworkMode") or "") == "bridge" or "bridge" in i.networks


def _network_mode(svc: Service, i: Inspect) -> bool:
    mode = str(i.host.get("NetworkMode") or "")
    if svc.network_service:
        # compose names the container (container:<id>): compared by its service
        return _joined(str(svc.network_mode), mode, i)
    if svc.network_mode:
        return mode == svc.network_mode
    return mode not in ("", "host", "none", "default", "bridge") and not mode.startswith(
        "container:"
    )


def _hostname(svc: Service, i: Inspect) -> str:
    """The engine's default host name: the short id, of the container whose network
    namespace this one joins (``container:<id>``) when it shares one."""
    if svc.hostname:
        return svc.hostname
    kind, _, joined = str(i.host.get("NetworkMode") or "").partition(":")
    return joined[:12] if kind == "container" and joined else i.id[:12]


def _hc_norm(hc: Mapping[str, Any] | None) -> tuple[Any, ...] | None:
    if not hc or not hc.get("Test"):
        return None
    test = [str(t) for t in hc["Test"]]
    if test == ["NONE"]:
        return ("NONE",)
    return (tuple(test), *(int(hc.get(k) or 0) for k in _HC_KEYS))


def _healthcheck(svc: Service, i: Inspect) -> bool:
    image_hc: Mapping[str, Any] = i.image.get("Healthcheck") or {}
    desired = healthcheck_config(svc.healthcheck)
    if desired is None:
        want: Mapping[str, Any] | None = image_hc
    else:
        merged = dict(desired)
        if image_hc:  # the engine fills what is not given from the image's
            if not merged.get("Test"):
                merged["Test"] = image_hc.get("Test")
            for k in _HC_KEYS:
                if not merged.get(k):
                    merged[k] = image_hc.get(k)
        want = merged
    return _hc_norm(i.config.get("Healthcheck")) == _hc_norm(want)


def _labels(svc: Service, i: Inspect) -> bool:
    want = {**(i.image.get("Labels") or {}), **dict(svc.labels)}
    have = {
        k: v for k, v in (i.config.get("Labels") or {}).items() if not k.startswith(_COMPOSE_LABEL)
    }
    want = {k: v for k, v in want.items() if not k.startswith(_COMPOSE_LABEL)}
    return dict(have) == want


def _restart(svc: Service, i: Inspect) -> bool:
    policy = i.host.get("RestartPolicy") or {}
    name = str(policy.get("Name") or "no")
    count = int(policy.get("MaximumRetryCount") or 0)
    want = svc.restart or "no"
    if want.startswith("on-failure"):
        _, _, n = want.partition(":")
        return name == "on-failure" and count == int(n or 0)
    return name == want


def _simple(get: Callable[[Inspect], Any], want: Callable[[Service, Inspect], Any]) -> Any:
    return lambda svc, i: get(i) == want(svc, i)


def _logging(svc: Service, i: Inspect) -> bool:
    log = i.host.get("LogConfig") or {}
    kind, options = log.get("Type"), dict(log.get("Config") or {})
    want = dict(svc.logging.options) if svc.logging else {}
    driver = svc.logging.driver if svc.logging else None
    if not driver:  # the engine's default driver, with the options written (or none)
        return i.default_log_driver is not None and kind == i.default_log_driver and options == want
    return kind == driver and options == want


def _tmpfs(svc: Service, i: Inspect) -> bool:
    want: dict[str, str] = {}
    for t in svc.tmpfs:
        path, _, opts = t.partition(":")
        want[path] = opts
    return dict(i.host.get("Tmpfs") or {}) == want


def _stop_grace(svc: Service, i: Inspect) -> bool:
    have = i.config.get("StopTimeout")
    if svc.stop_grace_period is None:
        return have is None
    return have is not None and int(have) == int(svc.stop_grace_period)


def _joined(want: str, mode: str, i: Inspect) -> bool:
    """``service:NAME`` against the engine's ``container:<id>``, compared by the service of
    that container (compose names it by id)."""
    kind, _, joined = mode.partition(":")
    return kind == "container" and i.services.get(joined) == want.removeprefix("service:")


def _pid(svc: Service, i: Inspect) -> bool:
    mode = str(i.host.get("PidMode") or "")
    if svc.pid and svc.pid.startswith("service:"):
        return _joined(svc.pid, mode, i)
    return mode == (svc.pid or "")


def _ipc(svc: Service, i: Inspect) -> bool:
    mode = str(i.host.get("IpcMode") or "")
    if svc.ipc and svc.ipc.startswith("service:"):
        return _joined(svc.ipc, mode, i)
    if svc.ipc is None:
        return mode in ("", "private", "shareable")
    return mode == svc.ipc


def _memswap(svc: Service, i: Inspect) -> bool:
    have = int(i.host.get("MemorySwap") or 0)
    if svc.memswap_limit is None:
        # unset: the engine leaves it 0, or twice the memory limit
        return have == 0 or (svc.memory is not None and have == 2 * svc.memory)
    return have == svc.memswap_limit


def _caps(values: Any) -> list[str]:
    return sorted(str(v).upper().removeprefix("CAP_") for v in values or [])


def _device_requests(items: Any) -> list[tuple[Any, ...]]:
    """HostConfig.DeviceRequests compared as values (the engine writes null for empty)."""
    return [
        (
            str(r.get("Driver") or ""),
            int(r.get("Count") or 0),
            tuple(r.get("DeviceIDs") or ()),
            tuple(tuple(c) for c in r.get("Capabilities") or ()),
            tuple(sorted((r.get("Options") or {}).items())),
        )
        for r in items or []
    ]


def _wanted_requests(requests: tuple[DeviceRequest, ...]) -> list[tuple[Any, ...]]:
    return _device_requests(
        [
            {
                "Driver": r.driver,
                "Count": r.count,
                "DeviceIDs": list(r.device_ids),
                "Capabilities": [list(r.capabilities)],
                "Options": dict(r.options),
            }
            for r in requests
        ]
    )


def _requests_match(svc: Service, i: Inspect) -> tuple[bool, bool]:
    """Whether the container's DeviceRequests hold (the reservations, the gpus): compose
    sends the reservations first, then the gpus. The one part that fits keeps its key;
    when only the whole list can tell (one entry too many), both keys differ."""
    have = _device_requests(i.host.get("DeviceRequests"))
    reserved, gpus = _wanted_requests(svc.device_requests), _wanted_requests(svc.gpus)
    head = have[: len(reserved)] == reserved
    tail = len(have) >= len(gpus) and have[len(have) - len(gpus) :] == gpus
    reserved_ok = have[: len(have) - len(gpus)] == reserved if tail else head
    gpus_ok = have[len(reserved) :] == gpus if head else tail
    return reserved_ok, gpus_ok


def _blkio(svc: Service, i: Inspect) -> bool:
    def pairs(items: Any, value: str) -> list[tuple[str, int]]:
        return [(str(d.get("Path")), int(d.get(value) or 0)) for d in items or []]

    b = svc.blkio_config or BlkioConfig()
    h = i.host
    return (
        int(h.get("BlkioWeight") or 0) == b.weight
        and pairs(h.get("BlkioWeightDevice"), "Weight") == list(b.weight_device)
        and pairs(h.get("BlkioDeviceReadBps"), "Rate") == list(b.device_read_bps)
        and pairs(h.get("BlkioDeviceWriteBps"), "Rate") == list(b.device_write_bps)
        and pairs(h.get("BlkioDeviceReadIOps"), "Rate") == list(b.device_read_iops)
        and pairs(h.get("BlkioDeviceWriteIOps"), "Rate") == list(b.device_write_iops)
    )


def _number(key: str, setting: str) -> Callable[[Service, Inspect], bool]:
    """The service's integer ``key`` (None: 0) against the container's ``setting``."""

    def compare(svc: Service, i: Inspect) -> bool:
        want: int | None = getattr(svc, key)
        return int(i.host.get(setting) or 0) == (want or 0)

    return compare


def _mem_swappiness(svc: Service, i: Inspect) -> bool:
    have = i.host.get("MemorySwappiness")
    if svc.mem_swappiness is None:
        return have in (None, -1)  # unset: the engine writes null (older ones -1)
    return have is not None and int(have) == svc.mem_swappiness


def _cgroup(svc: Service, i: Inspect) -> bool:
    mode = str(i.host.get("CgroupnsMode") or "")
    if svc.cgroup is None:
        # unset: the engine's default, host with cgroup v1 and private with v2
        return mode in ("", i.default_cgroupns) if i.default_cgroupns else True
    return mode == svc.cgroup


def _devices(svc: Service, i: Inspect) -> bool:
    want = []
    for d in svc.devices:
        parts = d.split(":")
        host = parts[0]
        target = parts[1] if len(parts) > 1 and parts[1].startswith("/") else host
        perms = parts[-1] if len(parts) > 1 and not parts[-1].startswith("/") else "rwm"
        want.append((host, target, perms))
    have = [
        (str(d.get("PathOnHost")), str(d.get("PathInContainer")), str(d.get("CgroupPermissions")))
        for d in i.host.get("Devices") or []
    ]
    return sorted(have) == sorted(want)


def _platform(svc: Service, i: Inspect) -> bool:
    if not svc.platform:
        return True
    want = svc.platform.split("/")
    have = [str(i.image_root.get("Os") or ""), str(i.image_root.get("Architecture") or "")]
    if i.image_root.get("Variant"):
        have.append(str(i.image_root["Variant"]))
    return have[: len(want)] == want or (len(want) == 3 and have == want[:2])


def _ulimits(svc: Service, i: Inspect) -> bool:
    have = sorted(
        (str(u.get("Name")), int(u.get("Soft") or 0), int(u.get("Hard") or 0))
        for u in i.host.get("Ulimits") or []
    )
    return have == sorted(svc.ulimits)


def _compose_depends(i: Inspect) -> list[tuple[str, str, bool]] | None:
    """compose records ``depends_on`` (links included) in a label, ``db:service_started:true``
    (service, condition, restart) joined by commas; None without it (an older compose)."""
    label = (i.config.get("Labels") or {}).get(_COMPOSE_LABEL + "depends_on")
    if label is None:
        return None
    out = []
    for part in str(label).split(","):
        fields = part.split(":")
        if len(fields) >= 2:
            out.append((fields[0], fields[1], len(fields) > 2 and fields[2] == "true"))
    return out


def _depends_on(svc: Service, i: Inspect) -> bool:
    """The dependencies and their conditions (an order of the rollout, recorded by compose)."""
    have = _compose_depends(i)
    if have is None:
        return True
    want = dict(svc.depends_on)
    for name in svc.links:
        want.setdefault(name, "service_started")
    return {(n, c) for n, c, _ in have} == set(want.items())


def _depends_restart(svc: Service, i: Inspect) -> bool:
    have = _compose_depends(i)
    if have is None:
        return not svc.depends_restart
    return {n for n, _, restart in have if restart} == set(svc.depends_restart)


_MIB64 = 64 * 1024 * 1024
_SWARM_ONLY = (
    "cpus_reservation",
    "deploy_labels",
    "global_mode",
    "placement_constraints",
    "placement_preferences",
    "max_replicas_per_node",
    "restart_delay",
    "restart_window",
)


_COMPARE: dict[str, Callable[[Service, Inspect], bool]] = {
    # no files from the repository: nothing to compare; with some, compose's container binds
    # the checkout's copy, never the deployer's shipped one: that service is replaced
    "files": lambda svc, i: not svc.files,
    "command": _command,
    "entrypoint": _entrypoint,
    "environment": _environment,
    "ports": _ports,
    "expose": _expose,
    "volumes": _volumes,
    "networks": _networks,
    "network_mode": _network_mode,
    "volumes_from": _volumes_from,
    "healthcheck": _healthcheck,
    "depends_on": _depends_on,
    # compose sets a link on the linking container (its endpoint's Links), not an alias on
    # the linked one: the alias resolves for the linking containers either way
    "link_aliases": lambda svc, i: True,
    "external_links": _external_links,
    "depends_restart": _depends_restart,
    "labels": _labels,
    "restart": _restart,
    "user": _simple(
        lambda i: str(i.config.get("User") or ""),
        lambda svc, i: svc.user or str(i.image.get("User") or ""),
    ),
    "working_dir": _simple(
        lambda i: str(i.config.get("WorkingDir") or ""),
        lambda svc, i: svc.working_dir or str(i.image.get("WorkingDir") or ""),
    ),
    "init": _simple(lambda i: i.host.get("Init"), lambda svc, i: svc.init),
    "stop_signal": _simple(
        lambda i: str(i.config.get("StopSignal") or ""),
        lambda svc, i: svc.stop_signal or str(i.image.get("StopSignal") or ""),
    ),
    "stop_grace_period": _stop_grace,
    "read_only": _simple(lambda i: bool(i.host.get("ReadonlyRootfs")), lambda s, i: s.read_only),
    "tmpfs": _tmpfs,
    "extra_hosts": _simple(
        lambda i: sorted(i.host.get("ExtraHosts") or []), lambda s, i: sorted(s.extra_hosts)
    ),
    "logging": _logging,
    "cpus": _simple(
        lambda i: int(i.host.get("NanoCpus") or 0),
        lambda s, i: nano_cpus(s.cpus) if s.cpus else 0,
    ),
    "memory": _simple(lambda i: int(i.host.get("Memory") or 0), lambda s, i: s.memory or 0),
    "privileged": _simple(lambda i: bool(i.host.get("Privileged")), lambda s, i: s.privileged),
    "pid": _pid,
    "ipc": _ipc,
    "cap_add": _simple(
        lambda i: sorted(i.host.get("CapAdd") or []), lambda s, i: sorted(s.cap_add)
    ),
    # compose creates the container under this name; ours keep it through a replace
    "container_name": lambda s, i: s.container_name in (None, i.name),
    "hostname": _simple(lambda i: str(i.config.get("Hostname") or ""), _hostname),
    "domainname": _simple(
        lambda i: str(i.config.get("Domainname") or ""), lambda s, i: s.domainname or ""
    ),
    "mac_address": _simple(
        lambda i: str(i.config.get("MacAddress") or "").lower(), lambda s, i: s.mac_address or ""
    ),
    "runtime": lambda s, i: str(i.host.get("Runtime") or "runc") == (s.runtime or "runc"),
    "platform": _platform,
    "shm_size": lambda s, i: (
        int(i.host.get("ShmSize") or 0) in ((0, _MIB64) if s.shm_size is None else (s.shm_size,))
    ),
    "stdin_open": _simple(lambda i: bool(i.config.get("OpenStdin")), lambda s, i: s.stdin_open),
    "tty": _simple(lambda i: bool(i.config.get("Tty")), lambda s, i: s.tty),
    "sysctls": _simple(
        lambda i: {str(k): str(v) for k, v in (i.host.get("Sysctls") or {}).items()},
        lambda s, i: dict(s.sysctls),
    ),
    "ulimits": _ulimits,
    "dns": _simple(lambda i: list(i.host.get("Dns") or []), lambda s, i: list(s.dns)),
    "dns_search": _simple(
        lambda i: list(i.host.get("DnsSearch") or []), lambda s, i: list(s.dns_search)
    ),
    "dns_opt": _simple(
        lambda i: list(i.host.get("DnsOptions") or []), lambda s, i: list(s.dns_opt)
    ),
    "group_add": _simple(
        lambda i: [str(g) for g in i.host.get("GroupAdd") or []], lambda s, i: list(s.group_add)
    ),
    "pids_limit": _simple(
        lambda i: int(i.host.get("PidsLimit") or 0), lambda s, i: s.pids_limit or 0
    ),
    "memswap_limit": _memswap,
    "mem_reservation": _simple(
        lambda i: int(i.host.get("MemoryReservation") or 0), lambda s, i: s.mem_reservation or 0
    ),
    "cpu_shares": _simple(
        lambda i: int(i.host.get("CpuShares") or 0), lambda s, i: s.cpu_shares or 0
    ),
    "oom_score_adj": _simple(
        lambda i: int(i.host.get("OomScoreAdj") or 0), lambda s, i: s.oom_score_adj or 0
    ),
    "cap_drop": _simple(lambda i: _caps(i.host.get("CapDrop")), lambda s, i: _caps(s.cap_drop)),
    "security_opt": _simple(
        lambda i: sorted(i.host.get("SecurityOpt") or []), lambda s, i: sorted(s.security_opt)
    ),
    "devices": _devices,
    "device_requests": lambda s, i: _requests_match(s, i)[0],
    "gpus": lambda s, i: _requests_match(s, i)[1],
    "cpuset": _simple(lambda i: str(i.host.get("CpusetCpus") or ""), lambda s, i: s.cpuset or ""),
    "cpu_period": _number("cpu_period", "CpuPeriod"),
    "cpu_quota": _number("cpu_quota", "CpuQuota"),
    "cpu_rt_period": _number("cpu_rt_period", "CpuRealtimePeriod"),
    "cpu_rt_runtime": _number("cpu_rt_runtime", "CpuRealtimeRuntime"),
    "mem_swappiness": _mem_swappiness,
    "oom_kill_disable": _simple(
        lambda i: bool(i.host.get("OomKillDisable")), lambda s, i: s.oom_kill_disable
    ),
    "cgroup": _cgroup,
    "cgroup_parent": _simple(
        lambda i: str(i.host.get("CgroupParent") or ""), lambda s, i: s.cgroup_parent or ""
    ),
    "userns_mode": _simple(
        lambda i: str(i.host.get("UsernsMode") or ""), lambda s, i: s.userns_mode or ""
    ),
    "uts": _simple(lambda i: str(i.host.get("UTSMode") or ""), lambda s, i: s.uts or ""),
    "storage_opt": _simple(
        lambda i: {str(k): str(v) for k, v in (i.host.get("StorageOpt") or {}).items()},
        lambda s, i: dict(s.storage_opt),
    ),
    "blkio_config": _blkio,
    "device_cgroup_rules": _simple(
        lambda i: list(i.host.get("DeviceCgroupRules") or []),
        lambda s, i: list(s.device_cgroup_rules),
    ),
    "annotations": _simple(
        lambda i: dict(i.host.get("Annotations") or {}), lambda s, i: dict(s.annotations)
    ),
    # commands run at a start and before a stop, not settings of the container: nothing
    # shows them on it (compose ran its post_start when it started the container)
    "post_start": lambda s, i: True,
    "pre_stop": lambda s, i: True,
    "use_api_socket": _use_api_socket,
    # Swarm-only settings: a container has none of them (compose does not set them either)
    **{key: (lambda s, i: True) for key in _SWARM_ONLY},
}

# Container settings the manifest cannot express: set on the container, they differ.
_UNMODELLED_HOST = ("CpusetMems",)


def _extra_settings(svc: Service, i: Inspect) -> list[str]:
    extra = [k for k in _UNMODELLED_HOST if i.host.get(k) not in (None, [], {}, 0, "", False)]
    if _legacy_links(svc, i)[1]:
        # legacy links that are not external ones: compose's `links` on the default
        # bridge, which our create does not make
        extra.append("Links")
    return extra


def config_parts(  # noqa: PLR0913 (everything an adoption reads)
    service: Service,
    container: Mapping[str, Any],
    image: Mapping[str, Any],
    project: str,
    default_log_driver: str | None,
    engine_names: Mapping[str, str] | None = None,
    default_cgroupns: str | None = None,
    services: Mapping[str, str] | None = None,
    project_containers: Collection[str] | None = None,
) -> dict[str, str]:
    """Per-key parts for a compose container: the desired hash where it matches, else DIFFERS.

    ``container``/``image``: the engine's inspect of the container and of its image;
    ``project``: the compose project (its networks and volumes are ``<project>_<name>``);
    ``default_log_driver``: the engine's (``docker info``), what no ``logging`` means;
    ``default_cgroupns``: the engine's cgroup namespace mode (``default_cgroupns``), what
    no ``cgroup`` means (None: unknown, any mode is taken for it); ``services``: the compose
    service of each container of the project, by id (a ``network_mode: service:NAME``
    container names the one whose network it shares by id); ``project_containers``: the
    names of the project's containers (a legacy link to one is compose's ``links``, to
    any other container an ``external_links`` one).
    """
    i = Inspect(
        container,
        image,
        project,
        default_log_driver,
        engine_names,
        default_cgroupns,
        services,
        project_containers,
    )
    parts: dict[str, str] = {}
    for key, value in service.full_config_parts().items():
        compare = _COMPARE.get(key)
        parts[key] = value if compare is not None and compare(service, i) else DIFFERS
    if _extra_settings(service, i):
        parts[EXTRA] = DIFFERS
    return parts


def default_cgroupns(info: Mapping[str, Any]) -> str | None:
    """The cgroup namespace mode a container gets with none given, from ``docker info``:
    private with cgroup v2, host with v1 (the engine's defaults); None when not told."""
    version = str(info.get("CgroupVersion") or "")
    return {"1": "host", "2": "private"}.get(version)


def differing(parts: Mapping[str, str], service: Service) -> list[str]:
    """The keys of ``parts`` that do not match ``service`` (empty: unchanged)."""
    return differing_parts(service.config_parts(), parts)


def config_hash(parts: Mapping[str, str], service: Service) -> str:
    """``service.config_hash()`` when every part matches, else a hash that never does."""
    return service.config_hash() if not differing(parts, service) else f"compose-{DIFFERS}"
