"""Swarm service specs built from the manifest, as plain data (the Engine API's JSON).

Pure: no docker import, so what a deploy would send to Swarm can be unit tested and
compared. Names and labels follow ``docker stack deploy`` (services ``<app>_<service>``,
networks ``<app>_<network>``, volumes ``<app>_<volume>``, label
``com.docker.stack.namespace=<app>``) so that ``docker stack ps/services <app>`` show
what the deployer runs.

Durations in the API are nanoseconds.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from deployer import apispec
from deployer import labels as L
from deployer.apispec import healthcheck, nano_cpus, ns
from deployer.errors import InvalidInput
from deployer.manifest.model import FileMount, Manifest, Service, UpdateConfig
from deployer.naming import service_name
from deployer.naming import stack_network_name as network_name
from deployer.naming import stack_volume_name as volume_name

STACK_NAMESPACE = L.STACK_NAMESPACE
DEFAULT_NETWORK = "default"

Spec = dict[str, Any]


def networks_of(manifest: Manifest, service: Service) -> list[tuple[str, tuple[str, ...]]]:
    """(Swarm network name, aliases) for every network the service joins."""

    def linked(net: str) -> tuple[str, ...]:
        return tuple(a for n, a in service.link_aliases if n == net)

    if not service.networks:
        return [(network_name(manifest, DEFAULT_NETWORK), linked(DEFAULT_NETWORK))]
    return [(network_name(manifest, n.name), n.aliases + linked(n.name)) for n in service.networks]


def app_networks(manifest: Manifest) -> list[tuple[str, bool]]:
    """(name, external) of every network the app's services join, in a stable order."""
    seen: dict[str, bool] = {}
    for svc in manifest.services:
        for name, _ in networks_of(manifest, svc):
            external = any(
                n.external and network_name(manifest, n.name) == name for n in manifest.networks
            )
            seen.setdefault(name, external)
    return sorted(seen.items())


def _refuse(manifest: Manifest, service: Service, key: str, why: str, fix: str) -> InvalidInput:
    return InvalidInput(
        f"{manifest.path}: services.{service.name}.{key}: {why} with "
        f"environments.{manifest.environment.name}.engine: swarm",
        hint=fix,
    )


def object_name(manifest: Manifest, fm: FileMount) -> str:
    """The Swarm secret or config holding ``fm``: named by its content, so a change is a new
    object and the service rolls to it (Swarm objects cannot change)."""
    slug = re.sub(r"[^a-zA-Z0-9_.-]+", "_", fm.name.removeprefix("./")).strip("_.-")[:24]
    return f"{manifest.app}_{slug or 'file'}_{fm.digest[:12]}"


def _file_refs(
    manifest: Manifest, service: Service, refs: Mapping[str, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    secrets: list[dict[str, Any]] = []
    configs: list[dict[str, Any]] = []
    for fm in service.files:
        name = object_name(manifest, fm)
        target = fm.target
        if fm.kind == "secret" and target.startswith("/run/secrets/"):
            target = target.removeprefix("/run/secrets/")
        file = {
            "Name": target,
            "UID": str(fm.uid),
            "GID": str(fm.gid),
            "Mode": fm.mode if fm.mode is not None else 0o444,
        }
        if fm.kind == "secret":
            secrets.append({"File": file, "SecretID": refs.get(name, ""), "SecretName": name})
        else:
            configs.append({"File": file, "ConfigID": refs.get(name, ""), "ConfigName": name})
    return secrets, configs


def _check_networks(manifest: Manifest, service: Service) -> None:
    """What a network attachment of a Swarm task cannot have: a fixed address, a MAC
    address, a gateway priority."""
    for a in service.networks:
        if a.ipv4_address or a.ipv6_address:
            raise _refuse(
                manifest,
                service,
                f"networks.{a.name}",
                "a fixed IP address is not possible for Swarm tasks",
                "remove ipv4_address/ipv6_address, or deploy this environment with "
                "engine: container",
            )
        if a.mac_address:
            raise _refuse(
                manifest,
                service,
                f"networks.{a.name}.mac_address",
                "Swarm assigns the tasks' MAC addresses",
                "remove it, or deploy this environment with engine: container",
            )
        if a.gw_priority:
            raise _refuse(
                manifest,
                service,
                f"networks.{a.name}.gw_priority",
                "a gateway priority is not possible for Swarm tasks",
                "remove it, or deploy this environment with engine: container",
            )


def check_supported(manifest: Manifest, service: Service) -> None:
    """Refuse keys Swarm services cannot honour, naming the key and the way out."""
    for name, condition in service.depends_on:
        if condition == "service_completed_successfully":
            raise _refuse(
                manifest,
                service,
                f"depends_on.{name}.condition",
                f"waiting for {name} to complete (a service that runs once) is not possible: "
                "Swarm restarts a service's tasks when they exit and orders no services",
                f"run {name} as a task of the manifest (`tasks:`, before the deploy), or "
                "deploy this environment with engine: container",
            )
    if service.privileged:
        raise _refuse(
            manifest,
            service,
            "privileged",
            "Swarm services cannot run privileged",
            "remove privileged, or deploy this environment with engine: container",
        )
    for key, value in (
        ("network_mode", service.network_mode),
        ("pid", service.pid),
        ("ipc", service.ipc),
    ):
        if value:
            raise _refuse(
                manifest,
                service,
                key,
                f"{key} is not supported by Swarm services",
                f"remove {key}, or deploy this environment with engine: container",
            )
    no_swarm: tuple[tuple[str, Any, str], ...] = (
        ("domainname", service.domainname, "Swarm services have no NIS domain name"),
        ("mac_address", service.mac_address, "Swarm assigns the tasks' MAC addresses"),
        ("runtime", service.runtime, "Swarm services run with the engine's default runtime"),
        ("shm_size", service.shm_size, "Swarm services have no shm size setting"),
        ("memswap_limit", service.memswap_limit, "Swarm services have no swap limit"),
        ("cpu_shares", service.cpu_shares, "Swarm services have no CPU shares"),
        ("oom_score_adj", service.oom_score_adj, "this engine's Swarm has no OOM score"),
        ("security_opt", service.security_opt, "Swarm services take no security options"),
        ("devices", service.devices, "Swarm services cannot be given host devices"),
        (
            "deploy.resources.reservations.devices",
            service.device_requests,
            "this engine's Swarm gives tasks no device requests (GPUs)",
        ),
        ("annotations", service.annotations, "Swarm services have no container annotations"),
        (
            "volumes_from",
            service.volumes_from,
            "Swarm tasks cannot take another container's volumes (name the volumes instead)",
        ),
        ("gpus", service.gpus, "this engine's Swarm gives tasks no device requests (GPUs)"),
        ("cpuset", service.cpuset, "Swarm services have no CPU set"),
        (
            "cpu_period",
            service.cpu_period,
            "Swarm services limit CPU time with cpus only (no CFS period)",
        ),
        (
            "cpu_quota",
            service.cpu_quota,
            "Swarm services limit CPU time with cpus only (no CFS quota)",
        ),
        ("cpu_rt_period", service.cpu_rt_period, "Swarm services have no real-time CPU time"),
        ("cpu_rt_runtime", service.cpu_rt_runtime, "Swarm services have no real-time CPU time"),
        ("mem_swappiness", service.mem_swappiness, "this engine's Swarm has no swappiness"),
        ("oom_kill_disable", service.oom_kill_disable, "Swarm keeps the OOM killer on"),
        ("cgroup", service.cgroup, "Swarm services have no cgroup namespace setting"),
        ("cgroup_parent", service.cgroup_parent, "Swarm services have no cgroup parent"),
        ("userns_mode", service.userns_mode, "Swarm services have no user namespace setting"),
        ("uts", service.uts, "Swarm services have no UTS namespace setting"),
        ("storage_opt", service.storage_opt, "Swarm services take no storage driver options"),
        ("blkio_config", service.blkio_config, "Swarm services have no block I/O settings"),
        (
            "device_cgroup_rules",
            service.device_cgroup_rules,
            "Swarm services cannot be given device rules",
        ),
        (
            "depends_on",
            service.depends_restart,
            "restart: true restarts a service when another is replaced; Swarm updates each "
            "service on its own",
        ),
    )
    for key, value, why in no_swarm:
        if value:
            raise _refuse(
                manifest,
                service,
                key,
                why,
                f"remove {key}, or deploy this environment with engine: container",
            )
    for i, m in enumerate(service.volumes):
        if m.selinux:
            raise _refuse(
                manifest,
                service,
                f"volumes[{i}]",
                f"the SELinux relabel option {m.selinux} of a bind mount is not possible",
                "remove the z/Z option, or deploy this environment with engine: container",
            )
    _check_networks(manifest, service)
    for port in service.ports:
        if port.host_port_count > 1:
            raise _refuse(
                manifest,
                service,
                "ports",
                f"a range of host ports ({port.host_port}:{port.target}) is not possible: "
                "a Swarm task publishes one given port",
                "publish one host port per container port, or deploy this environment "
                "with engine: container",
            )
        if port.host_ip:
            raise _refuse(
                manifest,
                service,
                "ports",
                f"a published port bound to {port.host_ip} ({port.host_ip}:"
                f"{port.published}:{port.target}) is not possible",
                "publish on all addresses (drop the IP) and firewall the port, or deploy "
                "this environment with engine: container",
            )


def _restart_policy(service: Service) -> dict[str, Any]:
    restart = (service.restart or "").strip()
    policy: dict[str, Any] = {"Condition": "any"}
    if restart == "no":
        policy = {"Condition": "none"}
    elif restart.startswith("on-failure"):
        policy = {"Condition": "on-failure"}
        _, _, attempts = restart.partition(":")
        if attempts.strip().isdigit():
            policy["MaxAttempts"] = int(attempts)
    if service.restart_delay is not None:
        policy["Delay"] = ns(service.restart_delay)
    if service.restart_window is not None:
        policy["Window"] = ns(service.restart_window)
    return policy


def _mounts(manifest: Manifest, service: Service) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = []
    for m in service.volumes:
        mount: dict[str, Any] = {"Type": m.type, "Target": m.target, "ReadOnly": m.read_only}
        if m.type == "volume" and m.source:
            mount["Source"] = volume_name(manifest, m.source)
            top = next((v for v in manifest.volumes if v.name == m.source), None)
            options: dict[str, Any] = {
                "Labels": {**dict(top.labels if top else ()), STACK_NAMESPACE: manifest.app}
            }
            if top is not None and top.driver:
                options["DriverConfig"] = {"Name": top.driver}
                if top.driver_opts:
                    options["DriverConfig"]["Options"] = dict(top.driver_opts)
            if m.nocopy:
                options["NoCopy"] = True
            if m.subpath:
                options["Subpath"] = m.subpath
            mount["VolumeOptions"] = options
        elif m.type == "volume" and (m.nocopy or m.subpath):
            mount["VolumeOptions"] = {
                **({"NoCopy": True} if m.nocopy else {}),
                **({"Subpath": m.subpath} if m.subpath else {}),
            }
        elif m.type == "bind" and m.source:
            mount["Source"] = m.source
        elif m.type == "tmpfs" and apispec.tmpfs_options(m):
            mount["TmpfsOptions"] = apispec.tmpfs_options(m)
        mounts.append(mount)
    for entry in service.tmpfs:
        target, _, _ = entry.partition(":")
        mounts.append({"Type": "tmpfs", "Target": target})
    return mounts


def _hosts(service: Service) -> list[str]:
    """Compose ``extra_hosts`` ("name:ip") → Swarm ``Hosts`` ("ip name")."""
    out = []
    for entry in service.extra_hosts:
        name, _, ip = entry.partition(":")
        if "=" in entry and not ip:
            name, _, ip = entry.partition("=")
        out.append(f"{ip} {name}")
    return out


def monitor_seconds(manifest: Manifest, service: Service) -> float:
    """How long Swarm watches each new task for a failure.

    The manifest's ``update_config.monitor``; when 0, the rollout's ``healthy_after``
    (the time a container without a healthcheck must stay up in container mode), so a
    task that crashes right after starting still fails the update.
    """
    if service.update_config.monitor:
        return service.update_config.monitor
    return manifest.rollout.healthy_after


def update_config(manifest: Manifest, service: Service) -> dict[str, Any]:
    uc: UpdateConfig = service.update_config
    return {
        # Ours counts tasks at a time, 0 = all at once (Swarm reads 0 as unlimited too).
        "Parallelism": max(0, uc.parallelism),
        "Delay": ns(uc.delay),
        "FailureAction": uc.failure_action,
        "Monitor": ns(monitor_seconds(manifest, service)),
        "MaxFailureRatio": 0,
        "Order": service.order,
    }


def rollback_config(manifest: Manifest, service: Service) -> dict[str, Any]:
    uc = update_config(manifest, service)
    # A rollback that fails again stops where it is: a human must look.
    uc["FailureAction"] = "pause"
    return uc


def service_labels(
    manifest: Manifest, service: Service, digest: str, extra: Mapping[str, str]
) -> dict[str, str]:
    """Labels on the Swarm service itself: what ``observe`` reads back."""
    out = {
        **dict(service.deploy_labels),
        STACK_NAMESPACE: manifest.app,
        L.MANAGED: "true",
        L.APP: manifest.app,
        L.ENVIRONMENT: manifest.environment.name,
        L.SERVICE: service.name,
        L.ROLE: L.ROLE_CURRENT,
        L.IMAGE: service.image,
        L.DIGEST: digest,
        L.CONFIG_HASH: service.config_hash(),
        L.CONFIG_PARTS: json.dumps(service.config_parts(), sort_keys=True, separators=(",", ":")),
    }
    out.update(extra)
    return out


def container_labels(manifest: Manifest, service: Service) -> dict[str, str]:
    """Labels on the task containers: the manifest's own and the stack namespace only.

    Not ``io.deployer.app``: container-mode observation and pruning look for that label,
    and must never mistake a Swarm task for a container they own.
    """
    out = dict(service.labels)
    out[STACK_NAMESPACE] = manifest.app
    return out


def service_spec(  # noqa: C901, PLR0912, PLR0915 (flat key table)
    manifest: Manifest,
    service: Service,
    digest: str,
    labels: Mapping[str, str] | None = None,
    *,
    replicas: int | None = None,
    force_update: int = 0,
    refs: Mapping[str, str] | None = None,
) -> Spec:
    """The full ServiceSpec for ``service`` running ``digest`` (``repo@sha256:...``);
    ``refs``: the IDs of the secrets and configs its files are in (name -> ID)."""
    check_supported(manifest, service)
    container: dict[str, Any] = {
        "Image": digest,
        "Labels": container_labels(manifest, service),
        "Env": [f"{k}={v}" for k, v in service.environment],
    }
    if service.entrypoint is not None:
        container["Command"] = list(service.entrypoint)
    if service.command is not None:
        container["Args"] = list(service.command)
    for key, value in (
        ("User", service.user),
        ("Dir", service.working_dir),
        ("StopSignal", service.stop_signal),
    ):
        if value:
            container[key] = value
    if service.init is not None:
        container["Init"] = service.init
    if service.read_only:
        container["ReadOnly"] = True
    if service.stop_grace_period is not None:
        container["StopGracePeriod"] = ns(service.stop_grace_period)
    health = healthcheck(service.healthcheck)
    if health is not None:
        container["Healthcheck"] = health
    mounts = _mounts(manifest, service)
    if mounts:
        container["Mounts"] = mounts
    hosts = _hosts(service)
    if hosts:
        container["Hosts"] = hosts
    if service.cap_add:
        container["CapabilityAdd"] = list(service.cap_add)
    if service.files:
        secrets, configs = _file_refs(manifest, service, refs or {})
        if secrets:
            container["Secrets"] = secrets
        if configs:
            container["Configs"] = configs
    if service.cap_drop:
        container["CapabilityDrop"] = list(service.cap_drop)
    if service.hostname:
        container["Hostname"] = service.hostname
    if service.tty:
        container["TTY"] = True
    if service.stdin_open:
        container["OpenStdin"] = True
    if service.sysctls:
        container["Sysctls"] = dict(service.sysctls)
    if service.ulimits:
        container["Ulimits"] = [{"Name": n, "Soft": s, "Hard": h} for n, s, h in service.ulimits]
    if service.group_add:
        container["Groups"] = list(service.group_add)
    dns = {
        key: list(value)
        for key, value in (
            ("Nameservers", service.dns),
            ("Search", service.dns_search),
            ("Options", service.dns_opt),
        )
        if value
    }
    if dns:
        container["DNSConfig"] = dns

    template: dict[str, Any] = {
        "ContainerSpec": container,
        "RestartPolicy": _restart_policy(service),
        "Networks": [
            {"Target": name, "Aliases": [service.name, *aliases]}
            for name, aliases in networks_of(manifest, service)
        ],
        "ForceUpdate": force_update,
    }
    limits: dict[str, int] = {}
    if service.cpus:
        limits["NanoCPUs"] = nano_cpus(service.cpus)
    if service.memory is not None:
        limits["MemoryBytes"] = service.memory
    if service.pids_limit:
        limits["Pids"] = service.pids_limit
    reservations: dict[str, int] = {}
    if service.cpus_reservation:
        reservations["NanoCPUs"] = nano_cpus(service.cpus_reservation)
    if service.mem_reservation is not None:
        reservations["MemoryBytes"] = service.mem_reservation
    resources: dict[str, Any] = {}
    if limits:
        resources["Limits"] = limits
    if reservations:
        resources["Reservations"] = reservations
    if resources:
        template["Resources"] = resources
    placement: dict[str, Any] = {}
    if service.placement_constraints:
        placement["Constraints"] = list(service.placement_constraints)
    if service.placement_preferences:
        placement["Preferences"] = [
            {"Spread": {"SpreadDescriptor": p}} for p in service.placement_preferences
        ]
    if service.max_replicas_per_node:
        placement["MaxReplicas"] = service.max_replicas_per_node
    if service.platform:
        os_, _, arch = service.platform.partition("/")
        placement["Platforms"] = [{"OS": os_, "Architecture": arch.partition("/")[0]}]
    if placement:
        template["Placement"] = placement
    if service.logging is not None and service.logging.driver:
        template["LogDriver"] = {
            "Name": service.logging.driver,
            "Options": dict(service.logging.options),
        }

    endpoint: dict[str, Any] = {"Mode": "vip"}
    if service.ports:
        endpoint["Ports"] = [
            {
                "Protocol": p.protocol,
                "TargetPort": p.target,
                # Host mode: the ingress routing mesh is not used (and not needed).
                "PublishMode": "host",
                **({"PublishedPort": p.published} if p.published is not None else {}),
            }
            for p in service.ports
        ]
    return {
        "Name": service_name(manifest.app, service.name),
        "Labels": service_labels(manifest, service, digest, labels or {}),
        "TaskTemplate": template,
        "Mode": {"Global": {}}
        if service.global_mode
        else {"Replicated": {"Replicas": service.replicas if replicas is None else replicas}},
        "UpdateConfig": update_config(manifest, service),
        "RollbackConfig": rollback_config(manifest, service),
        "EndpointSpec": endpoint,
    }


def job_spec(
    manifest: Manifest,
    service: Service,
    digest: str,
    name: str,
    command: tuple[str, ...],
    labels: Mapping[str, str],
) -> Spec:
    """A Swarm job (mode replicated-job, one completion) running ``command`` once."""
    spec = service_spec(manifest, service, digest)
    container = spec["TaskTemplate"]["ContainerSpec"]
    container["Args"] = list(command)
    container.pop("Healthcheck", None)
    container["Labels"] = {**container["Labels"], L.ROLE: L.ROLE_TASK}
    spec["TaskTemplate"]["RestartPolicy"] = {"Condition": "none"}
    spec["Name"] = name
    spec["Labels"] = {
        STACK_NAMESPACE: manifest.app,
        L.MANAGED: "true",
        L.APP: manifest.app,
        L.ENVIRONMENT: manifest.environment.name,
        L.SERVICE: service.name,
        L.ROLE: L.ROLE_TASK,
        **labels,
    }
    spec["Mode"] = {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}
    spec["EndpointSpec"] = {"Mode": "vip"}  # a job publishes nothing
    del spec["UpdateConfig"]
    del spec["RollbackConfig"]
    return spec


def batches(service: Service, replicas: int) -> int:
    """How many steps a rolling update of ``replicas`` tasks takes."""
    parallelism = service.update_config.parallelism
    if parallelism <= 0 or replicas <= 0:
        return 1
    return max(1, math.ceil(replicas / parallelism))


def convergence_deadline(manifest: Manifest, service: Service, replicas: int) -> float:
    """Seconds to wait for Swarm to finish one service's update (or its own rollback).

    Each batch may take ``rollout.health_timeout`` to become healthy, then ``monitor``
    and the update ``delay``; a failing update then rolls back the batches it changed,
    which takes as long again.
    """
    per_batch = (
        manifest.rollout.health_timeout
        + monitor_seconds(manifest, service)
        + service.update_config.delay
    )
    return 2 * batches(service, replicas) * per_batch + 10.0


def pinned(ref: str) -> str:
    """``repo:tag@sha256:x`` → ``repo@sha256:x`` (a digest reference names no tag)."""
    if "@" not in ref:
        return ref
    repo, _, digest = ref.partition("@")
    slash = repo.rfind("/")
    colon = repo.rfind(":")
    if colon > slash:
        repo = repo[:colon]
    return f"{repo}@{digest}"
