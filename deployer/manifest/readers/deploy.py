"""A service's ``deploy:``: replicas, limits and update_config (``basics``), then a table of
readers for the other keys (reservations, labels, mode, placement, restart_policy)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from deployer.manifest import parse
from deployer.manifest.model import DeviceRequest, UpdateConfig
from deployer.manifest.problems import Path
from deployer.manifest.readers.values import MAX_REPLICAS, mapping

if TYPE_CHECKING:
    from deployer.manifest.readers.core import Builder

Reader = Callable[["Builder", Path, dict[str, Any], dict[str, Any]], None]


def section(raw: dict[str, Any]) -> dict[str, Any]:
    """The service's ``deploy:`` mapping (empty when it has none)."""
    return mapping(raw, "deploy")


def basics(
    b: Builder, path: Path, raw: dict[str, Any]
) -> tuple[int, float | None, int | None, UpdateConfig]:
    """replicas, resources.limits (cpus, memory) and update_config."""
    replicas = raw.get("replicas", 1)
    replicas = replicas if isinstance(replicas, int) and not isinstance(replicas, bool) else 1
    if replicas > MAX_REPLICAS:
        b.err(
            (*path, "replicas"),
            f"{replicas} replicas per host is more than the {MAX_REPLICAS} accepted",
            f"use at most {MAX_REPLICAS}, or spread the service over more hosts",
        )
        replicas = 1
    cpus = memory = None
    res = raw.get("resources")
    limits = res.get("limits") if isinstance(res, dict) else None
    if isinstance(limits, dict):
        if limits.get("cpus") is not None:
            cpus = b.parsed((*path, "resources", "limits", "cpus"), parse.cpus, limits["cpus"])
        if limits.get("memory") is not None:
            memory = b.parsed(
                (*path, "resources", "limits", "memory"), parse.size, limits["memory"]
            )
    # a limit of 0 is no limit, as compose reads it (`${CPUS:-0}` in a real file)
    return replicas, cpus or None, memory or None, update_config(b, path, raw)


def update_config(b: Builder, path: Path, raw: dict[str, Any]) -> UpdateConfig:
    uc = raw.get("update_config")
    if not isinstance(uc, dict):
        return UpdateConfig()
    up = (*path, "update_config")
    order = uc.get("order")
    parallelism = uc.get("parallelism", 1)
    failure_action = uc.get("failure_action", "rollback")
    return UpdateConfig(
        order=order if order in ("start-first", "stop-first") else None,
        parallelism=parallelism if isinstance(parallelism, int) else 1,
        delay=b.dur((*up, "delay"), uc.get("delay")) or 0.0,
        failure_action=failure_action
        if failure_action in ("rollback", "pause", "continue")
        else "rollback",
        monitor=b.dur((*up, "monitor"), uc.get("monitor")),
    )


def deploy_keys(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    """deploy.* keys beyond replicas, limits and update_config, into ``out`` (which holds
    the service's compose keys read so far: mem_limit and cpus are compared with the
    limits here)."""
    for reader in READERS:
        reader(b, path, raw, out)


def read_reservations(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    reservations = mapping(mapping(raw, "resources"), "reservations")
    rp = (*path, "resources", "reservations")
    if reservations.get("memory") is not None:
        got = b.parsed((*rp, "memory"), parse.size, reservations["memory"])
        if got:  # 0 reserves nothing (mem_reservation agrees: check_twins)
            out["mem_reservation"] = got
    if reservations.get("cpus") is not None:
        got_cpus = b.parsed((*rp, "cpus"), parse.cpus, reservations["cpus"])
        if got_cpus:
            out["cpus_reservation"] = got_cpus
    if "devices" in reservations:
        read_device_requests(b, (*rp, "devices"), reservations["devices"], out)
    if "generic_resources" in reservations:
        b.err(
            (*rp, "generic_resources"),
            "reservations.generic_resources is not supported: the engine gives a container "
            "no generic resources (Swarm's node resources)",
            "remove it; reserve GPUs with reservations.devices",
            key=True,
        )


def read_device_requests(b: Builder, p: Path, items: Any, out: dict[str, Any]) -> None:
    """GPUs, as compose asks the engine for them (``HostConfig.DeviceRequests``): direct
    access to host hardware, so ``policy.allow: [devices]`` as for ``devices:``."""
    requests = device_requests(b, p, items)
    if requests is not None:
        out["device_requests"] = requests


def device_requests(
    b: Builder, p: Path, items: Any, *, gpus: bool = False
) -> tuple[DeviceRequest, ...] | None:
    """The device requests of ``deploy.resources.reservations.devices`` or, with ``gpus``,
    of compose's ``gpus:`` list, whose entries need no capabilities: compose adds "gpu" to
    each one's (also when it is listed already). None when ``items`` is not a list."""
    if not isinstance(items, list):
        return None  # the schema names the type
    requests = []
    for i, item in enumerate(items):
        at = (*p, i)
        if not isinstance(item, dict):
            what = "a GPU request" if gpus else "a device reservation"
            b.err(at, f"{what} is a mapping (capabilities, driver, count, ...)")
            continue
        caps = item.get("capabilities", [] if gpus else None)
        if (
            not isinstance(caps, list)
            or not all(isinstance(c, str) for c in caps)
            or not (caps or gpus)
        ):
            b.err((*at, "capabilities"), "capabilities must list what the devices do ([gpu])")
            continue
        ids = item.get("device_ids") or []
        if not isinstance(ids, list):
            b.err((*at, "device_ids"), "device_ids must be a list", 'e.g. ["0", "1"]')
            continue
        count = _count(item.get("count"), ids)
        if count is None:
            b.err(
                (*at, "count"),
                f'count "{item.get("count")}" is not a number of devices or "all"',
                'write a number, or "all"',
            )
            continue
        options = b.pairs((*at, "options"), item.get("options"))
        requests.append(
            DeviceRequest(
                capabilities=(*caps, "gpu") if gpus else tuple(caps),
                driver=str(item.get("driver") or ""),
                count=count,
                device_ids=tuple(str(d) for d in ids),
                options=options,
            )
        )
    if requests and "devices" not in b.allow:
        what = "gpus" if gpus else "reserved devices (GPUs)"
        b.err(
            p,
            f"{what} give the container direct access to host hardware; "
            "they are refused by the safety policy",
            'remove them, or add "devices" to `policy: {allow: [...]}` if this app '
            "really needs them",
            key=True,
        )
    return tuple(requests)


def _count(count: Any, ids: Any) -> int | None:
    """A request's count as compose reads it: "all" (any case) or neither a count nor
    device_ids is -1 (every device); with device_ids only, 0; a number or numeric text."""
    if count is None:
        return 0 if ids else -1
    if isinstance(count, str):
        text = count.strip()
        if text.lower() == "all":
            return -1
        count = int(text) if text.lstrip("-").isdigit() else None
    if not isinstance(count, int) or isinstance(count, bool) or count < -1:
        return None
    return count


def _pids(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("expected a number")  # reported by the schema
    return value


# A limit the service sets at its top level and in deploy.resources: (its key, its field
# in ``out``, the mapping of deploy.resources, the key there, how to read it)
_TWINS: tuple[tuple[str, str, str, str, Callable[[Any], float]], ...] = (
    ("mem_limit", "memory", "limits", "memory", parse.size),
    ("cpus", "cpus", "limits", "cpus", parse.cpus),
    ("pids_limit", "pids_limit", "limits", "pids", _pids),
    ("mem_reservation", "mem_reservation", "reservations", "memory", parse.size),
)


def check_twins(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    """A limit set at the service's top level (not 0) must be the one of the
    ``deploy.resources`` mapping it has a twin in, when the service writes that mapping:
    docker compose refuses the project otherwise ("can't set distinct values on 'mem_limit'
    and 'deploy.resources.limits.memory'"), a mapping that leaves the key out included (it
    counts as 0, no limit)."""
    resources = mapping(raw, "resources")
    service = path[:-1]
    for top, field, section, key, read in _TWINS:
        mine, spec = out.get(field), resources.get(section)
        if mine is None or not isinstance(spec, dict):
            continue
        try:
            theirs = 0.0 if spec.get(key) is None else read(spec[key])
        except ValueError:
            continue  # reported where that key is read
        if (theirs or 0) == mine:
            continue
        twin = f"deploy.resources.{section}.{key}"
        written = b.written((*service, top))
        if spec.get(key) is None:
            b.err(
                (*service, top),
                f"{top} is {written} but deploy.resources.{section} sets no {key}: docker "
                f"compose refuses a service whose {top} and {twin} differ",
                f"set it once: write `{key}: {written}` in deploy.resources.{section} and "
                f"remove {top}",
                key=True,
            )
        else:
            b.err(
                (*path, "resources", section, key),
                f"{top} ({written}) and {twin} ({b.written((*path, 'resources', section, key))})"
                f" differ: docker compose refuses a service that sets them differently",
                f"remove {top} (the service keeps {twin}), or give both one value",
            )


def read_limits(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    """A limit set both ways must agree (``check_twins``); the service keeps deploy's
    (read by ``basics``)."""
    limits = mapping(mapping(raw, "resources"), "limits")
    if limits.get("memory") is not None and out.get("memory") is not None:
        out.pop("memory")
    if limits.get("cpus") is not None and out.get("cpus") is not None:
        out.pop("cpus")
    pids = limits.get("pids")
    if isinstance(pids, int) and not isinstance(pids, bool) and pids > 0:  # compose's setLimits
        out.setdefault("pids_limit", pids)


def read_labels(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    labels = b.labels((*path, "labels"), raw.get("labels"))
    if not labels:
        return
    out["deploy_labels"] = labels
    if b.engine != "swarm":
        b.warn(
            (*path, "labels"),
            "deploy.labels label a Swarm service; with engine: container they are "
            "not set on the containers (docker compose does not set them either)",
            "use the service's `labels:` for container labels",
        )


def read_mode(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    mode = raw.get("mode")
    if not isinstance(mode, str) or mode == "replicated":
        return
    if mode != "global":
        b.err(
            (*path, "mode"),
            f'deploy.mode "{mode}" is not supported yet',
            "use replicated (the default) or global",
        )
    elif b.engine != "swarm":
        b.warn(
            (*path, "mode"),
            "deploy.mode: global runs one task per Swarm node; with engine: container "
            "every host of the environment runs the service (one container, as compose "
            "runs it)",
            "remove it, or deploy this environment with engine: swarm",
        )
    else:
        out["global_mode"] = True
        if "replicas" in raw:
            b.err(
                (*path, "replicas"),
                "deploy.mode: global runs one task per node: replicas do not apply",
                "remove replicas",
            )


def read_placement(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    placement = raw.get("placement")
    if not isinstance(placement, dict) or not placement:
        return
    pp = (*path, "placement")
    if b.engine != "swarm":
        b.warn(
            pp,
            "deploy.placement chooses Swarm nodes; with engine: container it is not used "
            "(as compose does not use it): the environment's hosts decide where the "
            "service runs",
            "remove it, or deploy this environment with engine: swarm",
        )
        return
    constraints = placement.get("constraints")
    if isinstance(constraints, list):
        out["placement_constraints"] = tuple(c for c in constraints if isinstance(c, str))
    prefs = placement.get("preferences")
    if isinstance(prefs, list):
        spread = []
        for i, pref in enumerate(prefs):
            if isinstance(pref, dict) and isinstance(pref.get("spread"), str):
                spread.append(pref["spread"])
            else:
                b.err((*pp, "preferences", i), "expected `spread: <node label>`")
        out["placement_preferences"] = tuple(spread)
    mrpn = placement.get("max_replicas_per_node")
    if isinstance(mrpn, int) and not isinstance(mrpn, bool):
        out["max_replicas_per_node"] = mrpn


def read_restart_policy(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    policy = raw.get("restart_policy")
    if not isinstance(policy, dict):
        return
    rp = (*path, "restart_policy")
    condition = policy.get("condition")
    attempts = policy.get("max_attempts")
    mapped = {"none": "no", "any": "always", "on-failure": "on-failure"}.get(str(condition))
    if condition is None:
        mapped = _no_condition(b, rp, attempts)
    elif mapped is None:
        b.err(
            (*rp, "condition"),
            f'"{condition}" is not a restart condition',
            "use none, on-failure or any",
        )
    elif mapped != "on-failure" and isinstance(attempts, int) and attempts and b.engine != "swarm":
        b.err(
            (*rp, "max_attempts"),
            f"max_attempts counts restarts on failure: the engine refuses it with condition "
            f"{condition} (docker compose up fails on it)",
            "use condition: on-failure, or remove max_attempts",
        )
    if mapped is not None:
        if mapped == "on-failure" and isinstance(attempts, int) and attempts > 0:
            mapped = f"on-failure:{attempts}"
        out["restart"] = mapped  # as docker compose: deploy.restart_policy wins
    for key in ("delay", "window"):
        if policy.get(key) is not None:
            out[f"restart_{key}"] = b.dur((*rp, key), policy[key])
            if b.engine != "swarm":
                b.warn(
                    (*rp, key),
                    f"restart_policy.{key} applies to Swarm services only; the "
                    "engine restarts a container with its own back-off",
                )


def _no_condition(b: Builder, rp: Path, attempts: Any) -> str:
    """A restart_policy without ``condition``: Swarm's default is any; docker compose gives
    the container an empty condition (the engine's "no"), in place of ``restart:`` too."""
    if b.engine == "swarm":
        return "always"
    b.warn(
        rp,
        "deploy.restart_policy has no condition: the container is never restarted, as "
        "docker compose creates it (an empty condition, which replaces `restart:`; Swarm's "
        "default `any` applies to Swarm services only)"
        + ("; max_attempts has no effect" if isinstance(attempts, int) and attempts else ""),
        "write the condition: any, on-failure or none",
    )
    return "no"


READERS: tuple[Reader, ...] = (
    check_twins,  # before the readers that set the service's limits from deploy's
    read_reservations,
    read_limits,
    read_labels,
    read_mode,
    read_placement,
    read_restart_policy,
)
