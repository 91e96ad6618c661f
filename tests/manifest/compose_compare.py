"""What the deployer will deploy for a service, key by key, against what compose would create
from ``docker compose config --format json`` for the same service.

Each group below yields ``(key, deployer's, compose's)`` in one normal form for both sides:
durations in seconds, sizes in bytes, compose's defaults where its output leaves a key out.
A normal form only ever says that two spellings make the same container (each one says
why); a value one side drops or reads otherwise stays a difference.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from typing import Any

from deployer import apispec
from deployer.manifest.model import NetworkAttachment, Service

# What every GitLab CI job has: the deploy job names the images CI built for `build:`-only
# services from these (the documented convention)
CI = {"CI_REGISTRY_IMAGE": "registry.example.com/group/app", "CI_COMMIT_SHA": "0123456789abcdef"}

Pair = tuple[str, Any, Any]


def compare(
    service: Service, spec: dict[str, Any], active: Collection[str] | None = None
) -> list[str]:
    """Differences between what the deployer will deploy and what compose would create.
    ``active``: the services compose selected (its output's ``services``), when known."""
    return [
        f"{service.name}.{what}: deployer {mine!r} != compose {theirs!r}"
        for what, mine, theirs in pairs(service, spec, active)
        if mine != theirs
    ]


def pairs(
    service: Service, spec: dict[str, Any], active: Collection[str] | None = None
) -> Iterator[Pair]:
    yield from _process(service, spec)
    yield from _dependencies(service, spec, active)
    yield from _network(service, spec)
    yield from _storage(service, spec)
    yield from _health(service, spec)
    yield from _resources(service, spec)
    yield from _privileges(service, spec)
    yield from _metadata(service, spec)


# -- normal forms ------------------------------------------------------------------------
def _words(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(_literal(v) for v in value) if isinstance(value, list) else (_literal(value),)


def _literal(value: Any) -> str:
    """`docker compose config` keeps a literal `$` escaped as `$$` (its output is a compose
    file again); the container gets one `$`."""
    return str(value).replace("$$", "$")


def _text(value: Any) -> str | None:
    return None if value is None else _literal(value)


def _mapping(value: Any) -> dict[str, str]:
    """A compose mapping as the engine takes it: text values (compose prints a list form,
    ``["KEY=VALUE"]``, as a mapping already)."""
    return {_literal(k): _literal("" if v is None else v) for k, v in (value or {}).items()}


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def _seconds(value: Any) -> float | None:
    """Compose prints a duration as Go does (``1m30s``, ``1.5s``, ``500ms``)."""
    if value is None:
        return None
    text = str(value)
    total, end = 0.0, 0
    for m in _DURATION.finditer(text):
        assert m.start() == end, f"not a Go duration: {text!r}"
        total += float(m.group(1)) * _UNIT[m.group(2)]
        end = m.end()
    assert end == len(text) and end, f"not a Go duration: {text!r}"
    return round(total, 6)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _int(value: Any) -> int | None:
    """Compose prints sizes in bytes as text (``"1073741824"``), counts as numbers."""
    return None if value is None else int(value)


# -- the groups of keys ------------------------------------------------------------------
def _process(service: Service, spec: dict[str, Any]) -> Iterator[Pair]:
    built = f"{CI['CI_REGISTRY_IMAGE']}/{service.name}:{CI['CI_COMMIT_SHA']}"
    yield "image", service.image, spec.get("image") or (built if "build" in spec else None)
    # `KEY` with no value and no variable: compose shows null and the container has no KEY
    # (the engine leaves a bare `KEY` out of the process environment), as with the deployer
    env = {
        _literal(k): _literal(v)
        for k, v in (spec.get("environment") or {}).items()
        if v is not None
    }
    yield "environment", service.env_dict, env
    yield "command", service.command, _words(spec.get("command"))
    yield "entrypoint", service.entrypoint, _words(spec.get("entrypoint"))
    yield "user", service.user, spec.get("user")
    yield "working_dir", service.working_dir, _text(spec.get("working_dir"))
    yield "init", service.init, spec.get("init")
    yield "tty", service.tty, bool(spec.get("tty"))
    yield "stdin_open", service.stdin_open, bool(spec.get("stdin_open"))
    yield "read_only", service.read_only, bool(spec.get("read_only"))
    yield "stop_signal", service.stop_signal, spec.get("stop_signal")
    yield (
        "stop_grace_period",
        _round(service.stop_grace_period),
        _seconds(spec.get("stop_grace_period")),
    )
    yield "restart", _restart_mine(service.restart), _restart_theirs(spec)
    yield "platform", service.platform, spec.get("platform")
    yield "runtime", service.runtime, spec.get("runtime")
    yield "container_name", service.container_name, spec.get("container_name")


def _restart_mine(restart: str | None) -> tuple[str, int]:
    """The engine's RestartPolicy the deployer sends (docker/containers.py): none for "no"."""
    text = (restart or "").strip()
    if not text or text == "no":
        return ("no", 0)
    name, _, count = text.partition(":")
    return (name, int(count or 0)) if name == "on-failure" else (name, 0)


_ENGINE_RESTART = {"": "no", "none": "no", "no": "no", "any": "always", "always": "always"}


def _restart_theirs(spec: dict[str, Any]) -> tuple[str, int]:
    """Compose's RestartPolicy: ``restart:``, replaced by ``deploy.restart_policy`` when that
    is written (compose's getRestartPolicy; a condition left out is the engine's "no")."""
    name, count = "no", 0
    if spec.get("restart"):
        name, _, attempts = str(spec["restart"]).partition(":")
        count = int(attempts) if attempts.isdigit() else 0
    policy = (spec.get("deploy") or {}).get("restart_policy")
    if policy is not None:
        name, count = str(policy.get("condition") or ""), int(policy.get("max_attempts") or 0)
    name = _ENGINE_RESTART.get(name, name)
    # the engine counts restarts on failure only: an empty condition ("no") with a count
    # (compose sends max_attempts as it is) never restarts either
    return (name, count if name != "no" else 0)


def _dependencies(
    service: Service, spec: dict[str, Any], active: Collection[str] | None
) -> Iterator[Pair]:
    # a link is a dependency too: the linked services start first (compose records it in
    # depends_on, the deployer as the service's links)
    mine = dict(service.depends_on)
    for linked in service.links:
        mine.setdefault(linked, "service_started")
    # `config` keeps a dependency with `required: false` on a service no active profile
    # selects; `up` skips it (nothing to wait for), as the deployer does
    theirs = {
        k: v.get("condition", "service_started")
        for k, v in (spec.get("depends_on") or {}).items()
        if active is None or k in active or v.get("required", True) is not False
    }
    yield "depends_on", mine, theirs


def _network(service: Service, spec: dict[str, Any]) -> Iterator[Pair]:
    mine_ports = sorted((p.target, p.host_port, p.host_ip, p.protocol) for p in service.ports)
    theirs_ports = sorted(
        (
            int(p["target"]),
            str(p.get("published") or ""),
            p.get("host_ip", ""),
            p.get("protocol", "tcp"),
        )
        for p in spec.get("ports") or []
    )
    yield "ports", mine_ports, theirs_ports
    # the engine keeps exposed ports as a set (Config.ExposedPorts)
    yield "expose", sorted(service.expose), sorted(str(e) for e in spec.get("expose") or [])
    yield "network_mode", service.network_mode, spec.get("network_mode")
    yield "networks", _networks_mine(service), _networks_theirs(spec)
    yield "hostname", service.hostname, spec.get("hostname") or None
    yield "domainname", service.domainname, spec.get("domainname") or None
    yield "mac_address", service.mac_address, _lower(spec.get("mac_address"))
    # the engine writes one /etc/hosts line per entry, whatever the order: compose prints
    # HOST=IP, sorted; the deployer keeps HOST:IP as written (the API takes either)
    yield (
        "extra_hosts",
        sorted(h.split(":", 1) for h in service.extra_hosts),
        sorted(h.split("=", 1) for h in spec.get("extra_hosts") or []),
    )
    # resolv.conf lists them in this order: the order counts
    yield "dns", service.dns, tuple(spec.get("dns") or ())
    yield "dns_search", service.dns_search, tuple(spec.get("dns_search") or ())
    yield "dns_opt", service.dns_opt, tuple(spec.get("dns_opt") or ())


def _lower(value: Any) -> str | None:
    return None if value is None else str(value).lower()  # a MAC address has no case


_ATTACHMENT_KEYS = ("aliases", "ipv4_address", "ipv6_address")


def _networks_mine(service: Service) -> dict[str, Any]:
    if service.network_mode:
        return {}  # no network of the app's (compose prints no `networks:` either)
    attachments = service.networks or (NetworkAttachment("default"),)
    return {
        a.name: (sorted(a.aliases), a.ipv4_address, a.ipv6_address, _modelled(a))
        for a in attachments
    }


def _modelled(a: NetworkAttachment) -> dict[str, Any]:
    """The attachment's other keys the deployer models, as compose prints them (a zero or
    empty value left out)."""
    out = {"priority": a.priority, "gw_priority": a.gw_priority, "mac_address": a.mac_address}
    return {k: v for k, v in out.items() if v}


def _networks_theirs(spec: dict[str, Any]) -> dict[str, Any]:
    """Each network with its aliases (a set: each is a DNS name), fixed addresses and its
    other keys (priority, gw_priority, mac_address; any the deployer does not model must
    not be there)."""
    out = {}
    for name, attachment in (spec.get("networks") or {}).items():
        a = attachment or {}
        others = {k: v for k, v in a.items() if k not in _ATTACHMENT_KEYS}
        out[name] = (
            sorted(a.get("aliases") or []),
            a.get("ipv4_address", ""),
            a.get("ipv6_address", ""),
            others,
        )
    return out


def _storage(service: Service, spec: dict[str, Any]) -> Iterator[Pair]:
    mine_targets = sorted(
        [m.target.rstrip("/") or "/" for m in service.volumes]
        + [f.target.rstrip("/") or "/" for f in service.files if f.kind == "file"]
    )
    theirs_targets = sorted(
        str(v["target"]).rstrip("/") or "/"
        for v in spec.get("volumes") or []
        if v.get("type") in ("volume", "bind", "tmpfs")
    )
    yield "volume targets", mine_targets, theirs_targets
    # HostConfig.Tmpfs is a mapping of paths: the order is not kept
    yield "tmpfs", sorted(service.tmpfs), sorted(spec.get("tmpfs") or [])
    mine_files = sorted((f.kind, f.target) for f in service.files if f.kind != "file")
    theirs_files = sorted(
        [("secret", _file_target(s, "/run/secrets/")) for s in spec.get("secrets") or []]
        + [("config", _file_target(c, "/")) for c in spec.get("configs") or []]
    )
    yield "configs and secrets", mine_files, theirs_files
    yield "volumes_from", _volumes_from(service), _volumes_from_theirs(spec)


def _file_target(ref: dict[str, Any], base: str) -> str:
    """Where compose mounts a config or secret: ``target`` when absolute, else below
    ``base`` (compose's buildContainerConfigMounts and buildContainerSecretMounts)."""
    target = str(ref.get("target") or ref["source"])
    return target if target.startswith("/") else base + target


def _volumes_from(service: Service) -> list[str]:
    return sorted(service.volumes_from)


def _volumes_from_theirs(spec: dict[str, Any]) -> list[str]:
    """Compose prints ``SERVICE[:MODE]`` or ``container:NAME[:MODE]``; rw when left out."""
    out = []
    for item in spec.get("volumes_from") or []:
        parts = str(item).split(":")
        kind = parts[0] if parts[0] == "container" and len(parts) > 1 else "service"
        rest = parts[1:] if kind == "container" else parts
        out.append(f"{kind}:{rest[0]}:{rest[1] if len(rest) > 1 else 'rw'}")
    return sorted(out)


def _health(service: Service, spec: dict[str, Any]) -> Iterator[Pair]:
    hc = service.healthcheck
    mine: Any = None
    if hc is not None and hc.disable:
        mine = "disabled"
    elif hc is not None:
        mine = {
            "test": hc.test,
            "interval": _round(hc.interval),
            "timeout": _round(hc.timeout),
            "retries": hc.retries,
            "start_period": _round(hc.start_period),
            "start_interval": _round(hc.start_interval),
        }
    yield "healthcheck", _unset_is_none(mine), _unset_is_none(_healthcheck_theirs(spec))


def _healthcheck_theirs(spec: dict[str, Any]) -> Any:
    raw = spec.get("healthcheck")
    if raw is None:
        return None
    test = _words(raw.get("test"))
    # `disable: true` is the test ["NONE"] (compose sends that to the engine)
    if raw.get("disable") or (test is not None and test[:1] == ("NONE",)):
        return "disabled"
    return {
        "test": test,
        "interval": _seconds(raw.get("interval")),
        "timeout": _seconds(raw.get("timeout")),
        "retries": raw.get("retries"),
        "start_period": _seconds(raw.get("start_period")),
        "start_interval": _seconds(raw.get("start_interval")),
    }


def _unset_is_none(value: Any) -> Any:
    """A healthcheck that sets nothing keeps the image's, as no healthcheck does."""
    if isinstance(value, dict) and all(v is None for v in value.values()):
        return None
    return value


def _resources(service: Service, spec: dict[str, Any]) -> Iterator[Pair]:
    """Limits as compose's getDeployResources sends them: ``deploy.resources`` wins over
    mem_limit, cpus and pids_limit where it sets them."""
    deploy = spec.get("deploy") or {}
    limits = (deploy.get("resources") or {}).get("limits") or {}
    reservations = (deploy.get("resources") or {}).get("reservations") or {}
    memory = _int(limits.get("memory")) or _int(spec.get("mem_limit"))
    yield "memory", service.memory, memory
    cpus = limits.get("cpus") or spec.get("cpus")
    yield (
        "cpus",
        apispec.nano_cpus(service.cpus) if service.cpus else None,
        apispec.nano_cpus(float(cpus)) if cpus else None,
    )
    yield "pids_limit", service.pids_limit, limits.get("pids") or spec.get("pids_limit")
    reserved = _int(reservations.get("memory")) or _int(spec.get("mem_reservation"))
    yield "mem_reservation", service.mem_reservation, reserved
    yield "memswap_limit", service.memswap_limit, _int(spec.get("memswap_limit"))
    yield "shm_size", service.shm_size, _int(spec.get("shm_size"))
    yield "cpu_shares", service.cpu_shares, _int(spec.get("cpu_shares"))
    yield "cpuset", service.cpuset, spec.get("cpuset")
    yield "cpu_period", service.cpu_period, _int(spec.get("cpu_period"))
    yield "cpu_quota", service.cpu_quota, _int(spec.get("cpu_quota"))
    # compose sends no swappiness for 0 (getDeployResources), as the deployer
    yield "mem_swappiness", service.mem_swappiness or None, _int(spec.get("mem_swappiness")) or None
    yield "oom_score_adj", service.oom_score_adj, spec.get("oom_score_adj")
    yield "oom_kill_disable", service.oom_kill_disable, bool(spec.get("oom_kill_disable"))
    yield "ulimits", sorted(service.ulimits), _ulimits_theirs(spec)
    yield "sysctls", dict(service.sysctls), _mapping(spec.get("sysctls"))
    yield "cgroup_parent", service.cgroup_parent, spec.get("cgroup_parent")
    yield "cpu_rt_period", service.cpu_rt_period, _int(spec.get("cpu_rt_period"))
    yield "cpu_rt_runtime", service.cpu_rt_runtime, _int(spec.get("cpu_rt_runtime"))
    yield "storage_opt", dict(service.storage_opt), _mapping(spec.get("storage_opt"))


def _ulimits_theirs(spec: dict[str, Any]) -> list[tuple[str, int, int]]:
    """A ulimit is one number (soft and hard alike) or ``{soft, hard}``."""
    out = []
    for name, limit in (spec.get("ulimits") or {}).items():
        if isinstance(limit, dict):
            out.append((name, int(limit["soft"]), int(limit["hard"])))
        else:
            out.append((name, int(limit), int(limit)))
    return sorted(out)


def _privileges(service: Service, spec: dict[str, Any]) -> Iterator[Pair]:
    # capabilities are sets to the engine
    yield "cap_add", sorted(service.cap_add), sorted(spec.get("cap_add") or [])
    yield "cap_drop", sorted(service.cap_drop), sorted(spec.get("cap_drop") or [])
    yield "privileged", service.privileged, bool(spec.get("privileged"))
    yield "security_opt", service.security_opt, tuple(spec.get("security_opt") or ())
    yield "group_add", service.group_add, tuple(str(g) for g in spec.get("group_add") or ())
    yield "pid", service.pid, spec.get("pid")
    yield "ipc", service.ipc, spec.get("ipc")
    yield "userns_mode", service.userns_mode, spec.get("userns_mode")
    yield "uts", service.uts, spec.get("uts")
    yield "cgroup", service.cgroup, spec.get("cgroup")
    rules = tuple(spec.get("device_cgroup_rules") or ())
    yield "device_cgroup_rules", service.device_cgroup_rules, rules


def _metadata(service: Service, spec: dict[str, Any]) -> Iterator[Pair]:
    # the app's own labels; the deployer's (and compose's com.docker.compose.*) are added
    # when the container is created and are not in either model
    yield "labels", dict(service.labels), _mapping(spec.get("labels"))
    yield "annotations", dict(service.annotations), _mapping(spec.get("annotations"))
    yield "logging", _logging_mine(service), _logging_theirs(spec)


def _logging_mine(service: Service) -> Any:
    """The log config the deployer sends (docker/containers.py): a driver "" is the
    engine's default, options without a driver are that driver's."""
    logging = service.logging
    if logging is None or not (logging.driver or logging.options):
        return None
    return (logging.driver or "", dict(logging.options))


def _logging_theirs(spec: dict[str, Any]) -> Any:
    """Compose sends ``logging:`` as it is: options without a driver go to the engine's
    default driver."""
    logging = spec.get("logging")
    if not logging or not (logging.get("driver") or logging.get("options")):
        return None
    return (logging.get("driver") or "", _mapping(logging.get("options")))
