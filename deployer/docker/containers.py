"""Containers built from the manifest (never cloned); their stop, removal, logs and tasks.

Every container is built from the manifest's ``Service`` (FACTS 9): the image's own
Env/Cmd/Healthcheck defaults stay the image's. Anonymous volumes of the container it
replaces are carried over (FACTS 12). Networks: API 1.41 takes one endpoint at create,
the others are connected afterwards, each with the service name as alias (FACTS 10).
Proxy variables from the runner's Docker config are never injected (FACTS 11).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import docker
import docker.errors
import docker.types

from deployer import apispec
from deployer import labels as L
from deployer.docker import transport as _transport
from deployer.docker.aliases import connect_endpoint
from deployer.engine import network_name, service_networks, volume_name
from deployer.errors import DeployFailed
from deployer.manifest.model import (
    API_SOCKET,
    API_SOCKET_CONFIG,
    Healthcheck,
    Manifest,
    Mount,
    Service,
)
from deployer.naming import KEPT_SEP

_ANONYMOUS = re.compile(r"^[0-9a-f]{64}$")

# Shared with Swarm mode: nanoseconds, and the API's Healthcheck (None keeps the image's).
healthcheck_config = apispec.healthcheck

# The error translation of one operation; it lives with the transports (callers import it here).
wrapped = _transport.wrapped


def _mounts(
    api: docker.APIClient, manifest: Manifest, service: Service, carried: Mapping[str, str]
) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = []
    targets = set()
    for m in service.volumes:
        targets.add(m.target)
        if m.type == "tmpfs":
            mounts.append(_tmpfs(m))
        elif _is_bind_entry(m):
            continue  # a Binds entry (binds())
        elif m.type == "bind":
            mounts.append(_bind(m))
        elif m.source:
            mounts.append(
                {
                    "Type": "volume",
                    "Source": volume_name(manifest, m.source),
                    "Target": m.target,
                    "ReadOnly": m.read_only,
                }
            )
        elif m.target in carried:
            mounts.append(
                {
                    "Type": "volume",
                    "Source": carried[m.target],
                    "Target": m.target,
                    "ReadOnly": m.read_only,
                }
            )
        else:
            mounts.append({"Type": "volume", "Target": m.target, "ReadOnly": m.read_only})
    if service.files:  # files from the repository, configs, secrets: read-only
        from deployer.docker import files as repo_files

        for fm_mount in repo_files.mounts(api, manifest, service.files):
            targets.add(fm_mount["Target"])
            mounts.append(fm_mount)
    for mount in mounts:
        m_ = next((v for v in service.volumes if v.target == mount["Target"]), None)
        if m_ is None or mount["Type"] != "volume" or not (m_.nocopy or m_.subpath):
            continue
        options: dict[str, Any] = {}
        if m_.nocopy:
            options["NoCopy"] = True
        if m_.subpath:
            options["Subpath"] = m_.subpath
        mount["VolumeOptions"] = options
    # Anonymous volumes the image declares (VOLUME) keep their data too.
    for target, name in sorted(carried.items()):
        if target not in targets:
            mounts.append({"Type": "volume", "Source": name, "Target": target})
    return mounts


def _volumes_from(api: docker.APIClient, manifest: Manifest, service: Service) -> list[str]:
    """``volumes_from`` as the engine takes it: the current container of each service it
    names (that service rolled first), or the host's container, with the mode."""
    out = []
    for kind, name, mode in service.volume_lenders:
        target = (
            name if kind == "container" else _current(api, manifest, service, name, "volumes_from")
        )
        out.append(f"{target}:{mode}")
    return out


def _namespace_mode(
    api: docker.APIClient, manifest: Manifest, service: Service, key: str
) -> str | None:
    """``network_mode``, ``pid`` or ``ipc`` as the engine takes it: ``service:NAME`` is that
    namespace of NAME's current container on this host (NAME rolled first),
    ``container:<id>`` as compose sends it."""
    mode: str | None = getattr(service, key)
    if mode and mode.startswith("service:"):
        name = mode.removeprefix("service:")
        return f"container:{_current(api, manifest, service, name, key)}"
    return mode or None


def _current(
    api: docker.APIClient, manifest: Manifest, service: Service, name: str, key: str
) -> str:
    """The id of the container service ``name`` runs now on this host (its first replica):
    neither kept for a rollback nor an interrupted deploy's replacement. Of a compose
    project, compose's own containers and this app's and environment's: another app or
    environment whose compose files give the same project name is not this one (its
    containers carry compose's labels too), as in the observation."""
    if manifest.compose_project:  # compose's own containers, and the deployer's
        labels = [f"{L.COMPOSE_PROJECT}={manifest.compose_project}"]
        labels.append(f"{L.COMPOSE_SERVICE}={name}")
    else:
        labels = [f"{L.APP}={manifest.app}", f"{L.ENVIRONMENT}={manifest.environment.name}"]
        labels.append(f"{L.SERVICE}={name}")
    found = []
    for c in L.not_swarm_tasks(api.containers(all=True, filters={"label": labels})):
        names = [str(n).lstrip("/") for n in c.get("Names") or []]
        marks = c.get("Labels") or {}
        if any(KEPT_SEP in n for n in names) or marks.get(L.COMPOSE_ONEOFF) == "True":
            continue
        owner = (marks.get(L.APP), marks.get(L.ENVIRONMENT))
        if owner[0] is not None and owner != (manifest.app, manifest.environment.name):
            continue  # another app's or environment's, of the same compose project name
        if marks.get(L.ROLE) in (L.ROLE_TASK, L.ROLE_LOCK, L.ROLE_RELEASE):
            continue
        replica = marks.get(L.REPLICA) or marks.get(L.COMPOSE_NUMBER) or "1"
        found.append((int(replica) if replica.isdigit() else 1, str(c["Id"])))
    if not found:
        raise DeployFailed(
            f"service {service.name}: {key} names the service {name}, which has no "
            "container on this host",
            hint=f"deploy {name} too (it rolls before {service.name})",
        )
    return min(found)[1]


def _bind(m: Mount) -> dict[str, Any]:
    bind: dict[str, Any] = {
        "Type": "bind",
        "Source": m.source,
        "Target": m.target,
        "ReadOnly": m.read_only,
    }
    if m.propagation:
        bind["BindOptions"] = {"Propagation": m.propagation}
    return bind


def _tmpfs(m: Mount) -> dict[str, Any]:
    tmpfs: dict[str, Any] = {"Type": "tmpfs", "Target": m.target, "ReadOnly": m.read_only}
    options = apispec.tmpfs_options(m)
    if options:
        tmpfs["TmpfsOptions"] = options
    return tmpfs


def _is_bind_entry(m: Mount) -> bool:
    """Whether the bind is one of the engine's Binds entries, as docker compose makes it:
    one relabelled (``z``/``Z``: Mounts cannot say it), and one whose missing host path
    the engine is to create (``create_host_path``, compose's default: Mounts refuses a
    missing source) unless a ``:`` or ``,`` in a path cannot be written in an entry."""
    if m.type != "bind" or not m.source:
        return False
    return bool(m.selinux) or (
        m.create_host_path and not any(c in m.source + m.target for c in ":,")
    )


def binds(service: Service) -> list[str]:
    """Binds entries (``SOURCE:TARGET:rw[,z]``), as docker compose creates them; the
    engine's socket last with ``use_api_socket``, as compose adds it."""
    out = [
        f"{m.source}:{m.target}:{'ro' if m.read_only else 'rw'}"
        + "".join(f",{o}" for o in (m.selinux, m.propagation) if o)
        for m in service.volumes
        if _is_bind_entry(m)
    ]
    if service.use_api_socket:
        out.append(f"{API_SOCKET}:{API_SOCKET}:rw")
    return out


def environment(service: Service) -> list[str]:
    """The container's variables: with ``use_api_socket``, DOCKER_CONFIG names compose's
    directory for it unless the service sets one (the deployer puts no credentials there:
    a client in the container has the engine's socket and no registry login)."""
    env = dict(service.environment)
    if service.use_api_socket:
        env.setdefault("DOCKER_CONFIG", API_SOCKET_CONFIG)
    return [f"{k}={v}" for k, v in env.items()]


def _ulimits(service: Service) -> list[docker.types.Ulimit] | None:
    return [docker.types.Ulimit(name=n, soft=s, hard=h) for n, s, h in service.ulimits] or None


def image_config(api: docker.APIClient, image: str) -> Mapping[str, Any] | None:
    """The image's inspect, read once per container created (None: the image is not on
    the host, which the create that follows says)."""
    try:
        info: Mapping[str, Any] = api.inspect_image(image)
    except docker.errors.ImageNotFound:
        return None
    return info


def check_platform(service: Service, image: str, info: Mapping[str, Any] | None) -> None:
    """Refuse to create a container whose image is not for the service's ``platform``."""
    if not service.platform or info is None:
        return
    have = [str(info.get("Os") or ""), str(info.get("Architecture") or "")]
    want = service.platform.split("/")
    variant = str(info.get("Variant") or "")
    if variant:
        have.append(variant)
    if have[: len(want)] != want and not (len(want) == 3 and want[:2] == have[:2] and not variant):
        raise DeployFailed(
            f"service {service.name}: the image {image} is for {'/'.join(have)}, not for the "
            f"platform {service.platform} the manifest asks for",
            hint="push an image built for that platform (docker buildx --platform), or fix "
            "`platform:`",
        )


# labels a container inherits from its image that say whose it is or what it is to the
# deployer: the deployer's own, and compose's identity (which the deployer reads too)
_RESERVED_IDENTITY = (L.COMPOSE_PROJECT, L.COMPOSE_SERVICE)


def inherited_reserved(info: Mapping[str, Any] | None, labels: Mapping[str, str]) -> dict[str, str]:
    """The reserved labels the image carries and the container does not set, blanked.

    A container inherits every label of its image, and the manifest cannot write a label
    under the deployer's prefix but the image's Dockerfile can (``LABEL
    io.deployer.lock-key=<another app>/prod``): the app's container would then be read as
    a lock, a kept container or another app's. Blanked here (the engine cannot drop an
    image's label, a container's own value replaces it), nothing reads it as such."""
    if info is None:
        return {}
    inherited = (info.get("Config") or {}).get("Labels") or {}
    return {
        k: ""
        for k in inherited
        if (k.startswith(L.PREFIX) or k in _RESERVED_IDENTITY) and k not in labels
    }


def anonymous_volumes(api: docker.APIClient, container_id: str) -> dict[str, str]:
    """target → volume name of the container's anonymous volumes."""
    info = api.inspect_container(container_id)
    return {
        m["Destination"]: m["Name"]
        for m in info.get("Mounts") or []
        if m.get("Type") == "volume" and _ANONYMOUS.match(m.get("Name") or "")
    }


def _ports(service: Service) -> tuple[list[Any], dict[str, Any]]:
    exposed: list[Any] = []
    bindings: dict[str, list[tuple[str, int | str] | tuple[str] | int | str | None]] = {}
    for p in service.ports:
        key = f"{p.target}/{p.protocol}"
        exposed.append((p.target, p.protocol) if p.protocol != "tcp" else p.target)
        if p.published is None:
            value: Any = (p.host_ip,) if p.host_ip else None
        else:
            host: int | str = p.host_port if p.host_port_count > 1 else p.published
            value = (p.host_ip, host) if p.host_ip else host
        bindings.setdefault(key, []).append(value)
    # `expose:` adds exposed ports without publishing them (what a proxy reading the
    # container's ports finds), as compose creates the container
    for key in apispec.exposed_ports(service.expose):
        port, _, proto = key.partition("/")
        exposed.append((port, proto))
    return exposed, {k: v if len(v) > 1 else v[0] for k, v in bindings.items()}


def _external_links(service: Service) -> list[tuple[str, str]] | None:
    """``external_links`` as compose gives them: in HostConfig.Links (the engine's legacy
    links on the default bridge) and in each network endpoint's Links (an alias of the
    container for this one's lookups on that network)."""
    pairs = [link.partition(":") for link in service.external_links]
    return [(name, alias) for name, _, alias in pairs] or None


def _addresses(manifest: Manifest, service: Service) -> dict[str, tuple[str, str]]:
    """engine network name → (ipv4_address, ipv6_address) the service fixes there."""
    return {
        network_name(manifest, a.name): (a.ipv4_address, a.ipv6_address)
        for a in service.networks
        if a.ipv4_address or a.ipv6_address
    }


def create_container(  # noqa: PLR0913 (a whole container)
    client: docker.DockerClient,
    host: str,
    manifest: Manifest,
    service: Service,
    image: str,
    labels: Mapping[str, str],
    name: str,
    anonymous_volumes_from: str | None = None,
    aliases: bool = True,
) -> str:
    """Create (not start) one container of ``service`` running ``image``; returns its id.

    ``aliases`` False joins the networks without the service aliases: a replacement is
    not reachable by the service name until it is healthy.
    """
    api: docker.APIClient = client.api
    with wrapped(f"create {name}", host):
        carried = anonymous_volumes(api, anonymous_volumes_from) if anonymous_volumes_from else {}
        exposed, bindings = _ports(service)
        restart = None
        if service.restart and service.restart != "no":
            if service.restart.startswith("on-failure"):
                _, _, count = service.restart.partition(":")
                restart = {"Name": "on-failure", "MaximumRetryCount": int(count or 0)}
            else:
                restart = {"Name": service.restart}
        log_config = None
        logging = service.logging
        if logging and (logging.driver or logging.options):
            # options without a driver are the engine's default driver's, as compose sends them
            log_config = {"Type": logging.driver or "", "Config": dict(logging.options)}
        image_info = image_config(api, image)
        check_platform(service, image, image_info)
        host_config = api.create_host_config(
            port_bindings=bindings or None,
            binds=binds(service) or None,
            mounts=_mounts(api, manifest, service, carried) or None,
            volumes_from=_volumes_from(api, manifest, service) or None,
            restart_policy=restart,
            init=service.init,
            read_only=service.read_only or None,
            tmpfs=list(service.tmpfs) or None,
            extra_hosts=list(service.extra_hosts) or None,
            log_config=log_config,
            nano_cpus=apispec.nano_cpus(service.cpus) if service.cpus else None,
            mem_limit=service.memory,
            privileged=service.privileged or None,
            network_mode=_namespace_mode(api, manifest, service, "network_mode"),
            pid_mode=_namespace_mode(api, manifest, service, "pid"),
            ipc_mode=_namespace_mode(api, manifest, service, "ipc"),
            cap_add=list(service.cap_add) or None,
            cap_drop=list(service.cap_drop) or None,
            shm_size=service.shm_size,
            sysctls=dict(service.sysctls) or None,
            ulimits=_ulimits(service),
            dns=list(service.dns) or None,
            dns_search=list(service.dns_search) or None,
            dns_opt=list(service.dns_opt) or None,
            group_add=list(service.group_add) or None,
            pids_limit=service.pids_limit,
            memswap_limit=service.memswap_limit,
            mem_reservation=service.mem_reservation,
            cpu_shares=service.cpu_shares,
            oom_score_adj=service.oom_score_adj,
            security_opt=list(service.security_opt) or None,
            devices=list(service.devices) or None,
            device_requests=_device_requests(service) or None,
            runtime=service.runtime,
            cpuset_cpus=service.cpuset,
            cpu_period=service.cpu_period,
            cpu_quota=service.cpu_quota,
            cpu_rt_period=service.cpu_rt_period,
            cpu_rt_runtime=service.cpu_rt_runtime,
            mem_swappiness=service.mem_swappiness,
            oom_kill_disable=service.oom_kill_disable,
            cgroupns=service.cgroup,
            cgroup_parent=service.cgroup_parent,
            userns_mode=service.userns_mode,
            uts_mode=service.uts,
            storage_opt=dict(service.storage_opt) or None,
            device_cgroup_rules=list(service.device_cgroup_rules) or None,
            links=_external_links(service),
            **_blkio(service),
        )
        if service.annotations:
            host_config["Annotations"] = dict(service.annotations)
        nets = service_networks(manifest, service)
        networking = None
        addresses = _addresses(manifest, service)
        # a MAC address and gateway priority per network: API 1.44 and 1.48, which
        # targets.check_engine_api asked of the host's engine
        attached = {network_name(manifest, a.name): a for a in service.networks}

        def endpoint(net: str, names: list[str]) -> dict[str, Any]:
            ip4, ip6 = addresses.get(net, ("", ""))
            att = attached.get(net)
            config: dict[str, Any] = api.create_endpoint_config(
                aliases=names if aliases else None,
                links=_external_links(service),
                ipv4_address=ip4 or None,
                ipv6_address=ip6 or None,
                mac_address=(att.mac_address if att else "") or None,
            )
            if att and att.gw_priority:
                config["GwPriority"] = att.gw_priority
            return config

        if nets:
            first, names = nets[0]
            networking = api.create_networking_config({first: endpoint(first, names)})
            host_config["NetworkMode"] = first
        all_labels = {**dict(service.labels), **labels}
        if service.files:
            from deployer.docker import files as repo_files

            all_labels[repo_files.USED] = repo_files.used_label(service.files)
        all_labels.update(inherited_reserved(image_info, all_labels))
        created = api.create_container(
            image,
            command=list(service.command) if service.command is not None else None,
            entrypoint=list(service.entrypoint) if service.entrypoint is not None else None,
            environment=environment(service),
            user=service.user,
            working_dir=service.working_dir,
            labels=all_labels,
            name=name,
            ports=exposed or None,
            host_config=host_config,
            networking_config=networking,
            healthcheck=healthcheck_config(service.healthcheck),
            stop_signal=service.stop_signal,
            stop_timeout=int(service.stop_grace_period)
            if service.stop_grace_period is not None
            else None,
            use_config_proxy=False,
            hostname=service.hostname,
            domainname=service.domainname,
            mac_address=service.mac_address,
            stdin_open=service.stdin_open,
            tty=service.tty,
            platform=service.platform,
        )
        cid: str = created["Id"]
        try:
            for net, names in nets[1:]:
                connect_endpoint(api, cid, net, endpoint(net, names))
        except docker.errors.APIError:
            api.remove_container(cid, force=True)
            raise
        return cid


def stop(client: docker.DockerClient, host: str, container_id: str, timeout: float) -> None:
    """Stop with the container's stop signal, then SIGKILL after ``timeout`` seconds."""
    api: docker.APIClient = client.api
    with wrapped(f"stop {container_id[:12]}", host):
        # docker-py extends the HTTP read timeout by the grace period itself.
        api.stop(container_id, timeout=int(max(timeout, 0)))


def remove(client: docker.DockerClient, host: str, container_id: str) -> None:
    """Remove the container (not its volumes: a kept or new container may use them)."""
    api: docker.APIClient = client.api
    with wrapped(f"remove {container_id[:12]}", host):
        try:
            api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            return


def logs(client: docker.DockerClient, host: str, container_id: str, tail: int) -> str:
    api: docker.APIClient = client.api
    with wrapped(f"read the logs of {container_id[:12]}", host):
        raw = api.logs(container_id, stdout=True, stderr=True, tail=tail)
        return bytes(raw).decode("utf-8", "replace")


def run_task(  # noqa: PLR0913 (a whole task run)
    client: docker.DockerClient,
    host: str,
    manifest: Manifest,
    service: Service,
    image: str,
    command: Sequence[str],
    labels: Mapping[str, str],
    name: str,
    timeout: float,
    progress: Callable[[str], None] | None = None,
) -> tuple[int, str, float]:
    """Run a one-off container of ``service`` to its end; (exit code, output, seconds).

    The output is followed line by line; a watchdog kills the container at ``timeout``,
    which also ends the log stream, so nothing waits longer than that.
    """
    api: docker.APIClient = client.api
    task_service = dataclasses.replace(
        service,
        command=tuple(command),
        ports=(),
        healthcheck=Healthcheck(disable=True),
        restart=None,
        replicas=1,
    )
    started = time.monotonic()
    cid = create_container(client, host, manifest, task_service, image, labels, name)
    timed_out = threading.Event()
    lines: list[str] = []

    def watchdog() -> None:
        if not done.wait(timeout):
            timed_out.set()
            with contextlib.suppress(docker.errors.APIError):
                api.kill(cid)

    done = threading.Event()
    try:
        with wrapped(f"run task {name}", host):
            api.start(cid)
            guard = threading.Thread(target=watchdog, daemon=True)
            guard.start()
            buf = b""
            for chunk in api.logs(cid, stream=True, follow=True, stdout=True, stderr=True):
                buf += chunk
                while b"\n" in buf:
                    raw, buf = buf.split(b"\n", 1)
                    text = raw.decode("utf-8", "replace")
                    lines.append(text)
                    if progress:
                        progress(text)
            if buf:
                lines.append(buf.decode("utf-8", "replace"))
                if progress:
                    progress(lines[-1])
            remaining = max(timeout - (time.monotonic() - started), 1.0) + 5
            code = int(api.wait(cid, timeout=remaining).get("StatusCode", -1))
            done.set()
    finally:
        done.set()
        remove(client, host, cid)
    if timed_out.is_set():
        lines.append(f"(killed after the task timeout of {timeout:g}s)")
        code = code if code != 0 else 137
    return code, "\n".join(lines[-200:]), time.monotonic() - started


def _device_requests(service: Service) -> list[docker.types.DeviceRequest]:
    """``deploy.resources.reservations.devices``, then ``gpus``, as compose gives them to the
    engine: one request each, its capabilities one set."""
    return [
        docker.types.DeviceRequest(
            driver=r.driver,
            count=r.count,
            device_ids=list(r.device_ids),
            capabilities=[list(r.capabilities)],
            options=dict(r.options),
        )
        for r in (*service.device_requests, *service.gpus)
    ]


def _blkio(service: Service) -> dict[str, Any]:
    """``blkio_config`` as ``create_host_config`` keywords (only the ones set)."""
    b = service.blkio_config
    if b is None:
        return {}
    out: dict[str, Any] = {}
    if b.weight:
        out["blkio_weight"] = b.weight
    if b.weight_device:
        out["blkio_weight_device"] = [{"Path": p, "Weight": w} for p, w in b.weight_device]
    for key in ("device_read_bps", "device_write_bps", "device_read_iops", "device_write_iops"):
        devices: tuple[tuple[str, int], ...] = getattr(b, key)
        if devices:
            out[key] = [{"Path": p, "Rate": r} for p, r in devices]
    return out
