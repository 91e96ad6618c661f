"""The typed model of a validated, interpolated deploy manifest for one environment.

Everything downstream (plan, docker adapter, rollout, reports) reads these frozen
dataclasses, never raw YAML. Durations are seconds (float), sizes are bytes (int).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Literal

Order = Literal["start-first", "stop-first"]
FailureAction = Literal["rollback", "pause", "continue"]
PullPolicy = Literal["always", "missing", "never"]
TaskWhen = Literal["before-deploy", "after-deploy"]
Engine = Literal["container", "swarm"]

# use_api_socket, as docker compose makes it: the engine's socket bound at the same path,
# and DOCKER_CONFIG (unless the service sets it) naming compose's directory for its config
API_SOCKET = "/var/run/docker.sock"
API_SOCKET_CONFIG = "/run/secrets/docker"


@dataclass(frozen=True)
class Build:
    """A service's compose `build:` section: what `deployer build` builds and pushes."""

    context: str  # a path on the CI machine
    dockerfile: str | None = None
    args: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    target: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    image_defaulted: bool = False  # no `image:`: the name comes from the CI variables
    # compose build keys that `deployer build` cannot honour (dockerfile_inline, ssh,
    # secrets, network...): it refuses to build the service, the deploy takes the image
    # CI built otherwise
    not_built_here: tuple[str, ...] = ()


@dataclass(frozen=True)
class Port:
    """A published port. ``published`` None means the engine picks a free host port;
    ``published_end`` makes it a range (``"8080-8082:80"``): the engine binds the first
    free host port of ``published``..``published_end`` (one per replica)."""

    target: int
    published: int | None = None
    host_ip: str = ""
    protocol: str = "tcp"
    published_end: int | None = field(default=None, metadata={"since": 3})

    @property
    def host_port(self) -> str:
        """The host port as the engine takes it: "", "8080" or "8080-8082"."""
        if self.published is None:
            return ""
        if self.published_end is not None and self.published_end != self.published:
            return f"{self.published}-{self.published_end}"
        return str(self.published)

    @property
    def host_port_count(self) -> int:
        if self.published is None:
            return 0
        return (self.published_end or self.published) - self.published + 1


@dataclass(frozen=True)
class Mount:
    """A volume (named or anonymous), bind mount or tmpfs in a service."""

    type: Literal["volume", "bind", "tmpfs"]
    target: str
    source: str | None = None  # None for anonymous volumes and tmpfs
    read_only: bool = False
    # Added later: left out of the config hash at their default (see _plain).
    selinux: str = field(default="", metadata={"since": 2})  # "z" (shared) or "Z" (private)
    nocopy: bool = field(default=False, metadata={"since": 2})  # volume: no copy of image data
    subpath: str = field(default="", metadata={"since": 2})  # volume: mount a sub-directory
    # bind: the engine creates a missing host path (compose's default); False refuses it
    create_host_path: bool = field(default=True, metadata={"since": 3})
    tmpfs_size: int = field(default=0, metadata={"since": 3})  # tmpfs: bytes (0: the default)
    tmpfs_mode: int = field(default=0, metadata={"since": 3})  # tmpfs: permission bits
    propagation: str = field(default="", metadata={"since": 3})  # bind: rslave, rshared...


FileKind = Literal["file", "config", "secret"]


@dataclass(frozen=True)
class FileMount:
    """A file or directory shipped from the CI checkout (a relative bind mount, a compose
    config or secret) and mounted read-only from a content-addressed volume on the host.

    ``digest`` names the packed content (bytes, tree, mode and owner): what the config
    hash, the release record and the volume name hold. ``source``/``env``/``content`` say
    where the bytes come from at deploy time; they are not configuration (a checkout
    lives at another path in every job) and a release recorded without them can still
    mount its copies, which stay on the host until retention removes them.
    """

    kind: FileKind
    name: str  # what the plan shows: "./nginx.conf", or the config's or secret's name
    target: str
    digest: str
    directory: bool = False
    mode: int | None = None  # None: the checkout's modes (a bind mount)
    uid: int = 0
    gid: int = 0
    source: str | None = field(default=None, compare=False)  # a path on the CI machine
    env: str | None = field(default=None, compare=False)  # a variable holding the content
    content: str | None = field(default=None, compare=False, repr=False)  # may be a secret

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"

    def record(self) -> dict[str, object]:
        """What a release and a container label keep (never the content)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "target": self.target,
            "digest": self.digest,
            "directory": self.directory,
            "mode": self.mode,
            "uid": self.uid,
            "gid": self.gid,
        }


@dataclass(frozen=True)
class Healthcheck:
    """Compose healthcheck; ``test`` None with disable False means "use the image's"."""

    test: tuple[str, ...] | None = None
    interval: float | None = None
    timeout: float | None = None
    retries: int | None = None
    start_period: float | None = None
    start_interval: float | None = None
    disable: bool = False


@dataclass(frozen=True)
class UpdateConfig:
    order: Order | None = None  # None: start-first unless a fixed host port forces stop-first
    parallelism: int = 1
    delay: float = 0.0
    failure_action: FailureAction = "rollback"
    # None: the default (container mode watches new containers for DEFAULT_MONITOR after
    # the switch; Swarm mode uses healthy_after); 0 turns the watch off.
    monitor: float | None = None


@dataclass(frozen=True)
class NetworkAttachment:
    name: str
    aliases: tuple[str, ...] = ()
    ipv4_address: str = field(default="", metadata={"since": 2})
    ipv6_address: str = field(default="", metadata={"since": 2})
    # compose's connect order: the highest first (the network the container is created on)
    priority: int = field(default=0, metadata={"since": 4})
    # the container's MAC address on this network (Docker API 1.44, as docker compose)
    mac_address: str = field(default="", metadata={"since": 5})
    # which network gives the container its default gateway: the highest (Docker API 1.48)
    gw_priority: int = field(default=0, metadata={"since": 5})


@dataclass(frozen=True)
class Logging:
    driver: str | None = None
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Route:
    """How the edge proxy reaches a public service: ``proxy:`` (or ``x-deployer-proxy``)."""

    host: str  # the public host name the proxy routes by
    port: int  # the container port the proxy sends requests to
    path_prefix: str = "/"
    healthcheck: str | None = None  # an HTTP path the proxy checks before a switch
    tls: Literal["none", "auto", "file"] = "none"
    certificate: str | None = None  # tls: file - PEM paths on the runner (File variables)
    key: str | None = None


@dataclass(frozen=True)
class EdgeProxy:
    """The environment's edge proxy: where it listens on each host and what it runs."""

    http: str = "0.0.0.0:80"
    https: str | None = "0.0.0.0:443"  # None: no TLS listener
    image: str = "caddy:2.11"
    name: str = "deployer-proxy"  # the proxy container's name (one per host)
    drain_timeout: float = 30.0  # how long old containers may finish requests after a switch
    acme_directory: str | None = None  # None: Let's Encrypt
    acme_email: str | None = None
    acme_ca_root: str | None = None  # PEM path: the ACME server's own TLS root (test servers)


@dataclass(frozen=True)
class DeviceRequest:
    """One entry of ``deploy.resources.reservations.devices`` (a GPU), as compose gives it to
    the engine (``HostConfig.DeviceRequests``): ``count`` -1 is "all", which compose also
    means when neither ``count`` nor ``device_ids`` is written."""

    capabilities: tuple[str, ...]
    driver: str = ""
    count: int = 0
    device_ids: tuple[str, ...] = ()
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class BlkioConfig:
    """``blkio_config``, as compose gives it to the engine: ``weight`` 0 is unset; each
    device entry is (path, weight) or (path, rate), rates in bytes or I/Os per second."""

    weight: int = 0
    weight_device: tuple[tuple[str, int], ...] = ()
    device_read_bps: tuple[tuple[str, int], ...] = ()
    device_write_bps: tuple[tuple[str, int], ...] = ()
    device_read_iops: tuple[tuple[str, int], ...] = ()
    device_write_iops: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Hook:
    """One ``post_start`` or ``pre_stop`` entry: a command run in the container (an exec),
    as compose runs it."""

    command: tuple[str, ...]
    user: str | None = None
    privileged: bool = False
    working_dir: str | None = None
    environment: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # may be secrets


@dataclass(frozen=True)
class Service:
    name: str
    image: str
    # "always"/"missing": the image is resolved to a registry digest (repo@sha256:...) and
    # pulled by digest. "never": the image must already be on the host; it is identified by
    # its local image ID (sha256:...), for images built on the host itself.
    pull_policy: PullPolicy = "always"
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    # values are secrets: never print them (kept out of repr too)
    environment: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    ports: tuple[Port, ...] = ()
    expose: tuple[str, ...] = ()
    volumes: tuple[Mount, ...] = ()
    networks: tuple[NetworkAttachment, ...] = ()  # empty: the app's default network
    healthcheck: Healthcheck | None = None
    depends_on: tuple[tuple[str, str], ...] = ()  # (service, condition)
    labels: tuple[tuple[str, str], ...] = ()
    restart: str | None = None
    user: str | None = None
    init: bool | None = None
    working_dir: str | None = None
    stop_signal: str | None = None
    stop_grace_period: float | None = None
    read_only: bool = False
    tmpfs: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()
    logging: Logging | None = None
    replicas: int = 1
    cpus: float | None = None
    memory: int | None = None
    update_config: UpdateConfig = field(default_factory=UpdateConfig)
    # Policy-gated keys (refused unless policy.allow lists them).
    privileged: bool = False
    network_mode: str | None = None
    pid: str | None = None
    ipc: str | None = None
    cap_add: tuple[str, ...] = ()
    # The edge proxy's route to this service; not container config (a route change
    # never replaces a container).
    proxy: Route | None = None
    # Files from the repository, configs and secrets (mounted read-only; see FileMount).
    files: tuple[FileMount, ...] = ()
    # `build:` is for `deployer build`; the deploy runs `image`.
    build: Build | None = None
    # Compose keys added later; each at its default leaves the config hash unchanged.
    container_name: str | None = None
    hostname: str | None = None
    domainname: str | None = None
    mac_address: str | None = None
    runtime: str | None = None
    platform: str | None = None
    shm_size: int | None = None
    stdin_open: bool = False
    tty: bool = False
    sysctls: tuple[tuple[str, str], ...] = ()
    ulimits: tuple[tuple[str, int, int], ...] = ()  # (name, soft, hard)
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_opt: tuple[str, ...] = ()
    group_add: tuple[str, ...] = ()
    pids_limit: int | None = None
    memswap_limit: int | None = None
    mem_reservation: int | None = None
    cpu_shares: int | None = None
    oom_score_adj: int | None = None
    cap_drop: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()  # policy-gated where it weakens isolation
    devices: tuple[str, ...] = ()  # "HOST[:CONTAINER[:PERMISSIONS]]"; policy-gated
    annotations: tuple[tuple[str, str], ...] = ()  # Docker API 1.43
    # deploy.resources.reservations.devices (GPUs); policy-gated as `devices`
    device_requests: tuple[DeviceRequest, ...] = ()
    # compose's `gpus:` (after the reservations in HostConfig.DeviceRequests, as compose
    # sends them; each one's capabilities end with the "gpu" compose adds); as `devices`
    gpus: tuple[DeviceRequest, ...] = ()
    cpuset: str | None = None  # CpusetCpus, e.g. "0-3"
    cpu_period: int | None = None  # microseconds
    cpu_quota: int | None = None  # microseconds; -1: no quota
    cpu_rt_period: int | None = None  # microseconds
    cpu_rt_runtime: int | None = None  # microseconds
    mem_swappiness: int | None = None  # 1-100 (0 is not sent, as compose)
    oom_kill_disable: bool = False
    cgroup: str | None = None  # the cgroup namespace: "private", or "host" (policy-gated)
    cgroup_parent: str | None = None
    userns_mode: str | None = None  # "host" (policy-gated)
    uts: str | None = None  # "host" (policy-gated)
    storage_opt: tuple[tuple[str, str], ...] = ()
    blkio_config: BlkioConfig | None = None
    device_cgroup_rules: tuple[str, ...] = ()  # "c 1:3 rwm"; policy-gated as `devices`
    # lifecycle hooks: execs after each new container starts, before a container stops
    post_start: tuple[Hook, ...] = ()
    pre_stop: tuple[Hook, ...] = ()
    # the engine's socket (and DOCKER_CONFIG) in the container; policy-gated as the bind
    use_api_socket: bool = False
    # Swarm-only (deploy.*): container mode refuses them, or warns where compose ignores them.
    cpus_reservation: float | None = None
    deploy_labels: tuple[tuple[str, str], ...] = ()
    global_mode: bool = False
    placement_constraints: tuple[str, ...] = ()
    placement_preferences: tuple[str, ...] = ()  # spread descriptors
    max_replicas_per_node: int | None = None
    restart_delay: float | None = None  # deploy.restart_policy (Swarm)
    restart_window: float | None = None
    # depends_on.<service>.restart: true: this service restarts when a deploy replaces those
    depends_restart: tuple[str, ...] = ()
    # compose's `links:` (the services linked to, in order: they start first, as depends_on)
    links: tuple[str, ...] = ()
    # compose's `external_links`: containers outside the app, "CONTAINER:ALIAS" (the alias
    # is the container's name when none is written), as compose gives them to the engine
    external_links: tuple[str, ...] = ()
    # compose's `volumes_from`: "service:NAME:ro|rw" or "container:NAME:ro|rw"
    volumes_from: tuple[str, ...] = ()
    # The aliases other services link to this one by, per network: (network, alias).
    link_aliases: tuple[tuple[str, str], ...] = ()
    # Runs once and exits: another service waits for it to complete (depends_on condition
    # service_completed_successfully, as a migration or an init job). Exit 0 is its
    # success, an exited container its normal state. Not configuration: how it is rolled.
    completes: bool = False
    # Another service takes its volumes (volumes_from): a data-only container, which may
    # exit 0 at once (compose's pattern). Not configuration either.
    lends_volumes: bool = False

    @property
    def env_dict(self) -> dict[str, str]:
        return dict(self.environment)

    @property
    def volume_lenders(self) -> tuple[tuple[str, str, str], ...]:
        """``volumes_from`` as (kind, name, mode): "service" or "container", its name, "ro"
        or "rw" (each entry as the reader wrote it, "kind:name:mode")."""
        out = []
        for entry in self.volumes_from:
            kind, name, mode = entry.split(":", 2)
            out.append((kind, name, mode))
        return tuple(out)

    @property
    def network_service(self) -> str | None:
        """The service whose container's network namespace this one's containers join
        (``network_mode: service:NAME``), None when it has its own network."""
        mode = self.network_mode or ""
        return mode.removeprefix("service:") if mode.startswith("service:") else None

    @property
    def namespaces_joined(self) -> tuple[tuple[str, str], ...]:
        """(key, service) of each namespace of another service's container this one's
        containers join: ``network_mode``, ``pid`` or ``ipc`` written ``service:NAME``."""
        out = []
        for key in ("network_mode", "pid", "ipc"):
            mode = getattr(self, key) or ""
            if mode.startswith("service:"):
                out.append((key, mode.removeprefix("service:")))
        return tuple(out)

    @property
    def joins(self) -> tuple[str, ...]:
        """The services whose container's namespaces (network, pid, ipc) this one's
        containers join: they start first, and a new container of one takes its namespace
        away, so these containers are replaced with it."""
        return tuple(dict.fromkeys(name for _, name in self.namespaces_joined))

    @property
    def may_exit(self) -> bool:
        """Whether exit 0 is a success: it runs once (``completes``), it lends its volumes
        (a data-only container), or its written restart policy leaves a container that
        exited 0 stopped (``restart: "no"``, ``on-failure``: a migration or an init job
        nothing waits for); it may also keep running."""
        restart = (self.restart or "").strip()
        once = self.completes or self.lends_volumes
        return once or restart == "no" or restart.startswith("on-failure")

    @property
    def fixed_host_ports(self) -> tuple[Port, ...]:
        return tuple(p for p in self.ports if p.published is not None)

    @property
    def order(self) -> Order:
        """The rollout order actually used: ``update_config.order`` when written; else
        stop-first for fixed host ports, for stateful services (two containers would
        write one data directory at once), for a container_name and for fixed IP addresses
        (two containers cannot hold them at once), start-first otherwise."""
        if self.update_config.order is not None:
            return self.update_config.order
        return "start-first" if self.order_reason == "default" else "stop-first"

    @property
    def stateful_mount(self) -> Mount | None:
        """The first writable named volume or bind mount: the service keeps data there."""
        for m in self.volumes:
            if not m.read_only and m.source and m.type in ("volume", "bind"):
                return m
        return None

    @property
    def order_reason(self) -> str:
        """Why ``order`` is what it is, for the plan."""
        if self.update_config.order is not None:
            return "written in update_config.order"
        if self.completes:
            return "runs once: a service waits for it to complete"
        if self.fixed_host_ports:
            ports = ", ".join(p.host_port for p in self.fixed_host_ports)
            return f"fixed host port {ports}"
        if self.container_name:
            return f"container_name {self.container_name}"
        if self.network_service:
            # a new container beside the old one in one namespace: both on the same ports
            return f"shares the network of {self.network_service}"
        fixed = [a.ipv4_address or a.ipv6_address or a.mac_address for a in self.networks]
        if any(fixed):
            return "fixed address " + ", ".join(f for f in fixed if f)
        m = self.stateful_mount
        if m is not None:
            return f"stateful: {m.type} data at {m.target} is writable"
        return "default"

    def full_config_parts(self) -> dict[str, str]:
        """A short hash per key of everything that defines the container, except the image,
        the replica count and the update policy; every key, defaults included.

        The image is compared by digest and the replica count by scaling, so neither
        forces a replace on its own. Per-key hashes let a plan say *which* keys changed
        ("environment", "ports") without ever showing a value: environment values are
        secrets. Adoption compares every key of a container compose started.
        """
        return dict(self._full_config_parts)

    @functools.cached_property
    def _full_config_parts(self) -> dict[str, str]:
        # computed once per (frozen) service: a plan and the labels of every replica ask
        # for it again (three times a service in a deploy)
        data = {f.name: _plain(getattr(self, f.name)) for f in fields(self)}
        parts: dict[str, str] = {}
        for key, value in sorted(data.items()):
            if key in _NOT_CONFIG:
                continue
            # files: one part per file below, so a plan names the file
            blob = json.dumps(
                [] if key == "files" else value, sort_keys=True, separators=(",", ":"), default=str
            )
            parts[key] = hashlib.sha256(blob.encode()).hexdigest()[:12]
        by_label: dict[str, list[dict[str, object]]] = {}
        for f in self.files:
            by_label.setdefault(f.label, []).append(f.record())
        for label, records in sorted(by_label.items()):
            blob = json.dumps(sorted(records, key=str), sort_keys=True, separators=(",", ":"))
            parts[label] = hashlib.sha256(blob.encode()).hexdigest()[:12]
        return parts

    def config_parts(self) -> dict[str, str]:
        """The parts of the keys whose value is not the default: what the labels record.

        A key at its default is left out, so a release of the deployer that adds a field
        (at its default for every manifest that does not use it) changes neither the parts
        nor the hash of any running container: no fleet-wide replace after an upgrade.
        """
        defaults = default_parts(type(self))
        return {k: v for k, v in self.full_config_parts().items() if defaults.get(k) != v}

    def config_hash(self) -> str:
        blob = json.dumps(self.config_parts(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def secret_parts(self) -> set[str]:
        """The config parts that hash secret values: the environment's, the hooks' with
        variables, and each compose secret's (its record holds the digest of the content)."""
        keys = {"environment"} if self.environment else set()
        keys.update(
            k for k in ("post_start", "pre_stop") if any(h.environment for h in getattr(self, k))
        )
        keys.update(f.label for f in self.files if f.kind == "secret")
        return keys

    def recorded_parts(self, app: str, environment: str) -> dict[str, str]:
        """``config_parts`` as a report records them: the parts that hash secret values
        sealed (``sealed_part``). A report is an artifact more people can read than the
        hosts' labels; a fast hash of a service's environment there let anyone who knows
        the rest of it (the manifest is in the repository) test guesses of a password
        offline at billions a second."""
        parts = self.config_parts()
        for key in self.secret_parts() & parts.keys():
            parts[key] = sealed_part(parts[key], (app, environment, self.name, key))
        return parts


_NOT_CONFIG = frozenset(
    {
        "name",
        "image",
        "pull_policy",
        "replicas",
        "update_config",
        "proxy",
        "build",
        "links",
        "completes",
        "lends_volumes",
    }
)


def _plain(value: Any) -> Any:
    """``dataclasses.asdict`` for the hash, leaving out the fields of nested values (mounts,
    network attachments) that a later release added (``metadata["since"]``) while they are
    at their default: the serialised form, and so the hash, of a value that does not use
    them stays what earlier releases computed."""
    if is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in fields(value):
            v = getattr(value, f.name)
            if "since" in f.metadata and v == f.default:
                continue
            out[f.name] = _plain(v)
        return out
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


_DEFAULT_PARTS: dict[type[Service], dict[str, str]] = {}


def default_parts(model: type[Service] | None = None) -> dict[str, str]:
    """The part of every config key at its default value (of ``model``, default Service)."""
    model = model or Service
    if model not in _DEFAULT_PARTS:
        _DEFAULT_PARTS[model] = model(name="", image="").full_config_parts()
    return _DEFAULT_PARTS[model]


SEALED = "scrypt:"


def sealed_part(part: str, where: tuple[str, str, str, str]) -> str:
    """A config part that hashes secret values, as a report records it: scrypt of the part
    (about 16 MiB and tens of milliseconds a guess), salted with where it belongs (app,
    environment, service, key). Equal parts still seal equal, so a merge request's plan
    compares it with its own manifest (``deployer.baseline``)."""
    digest = hashlib.scrypt(
        part.encode(), salt="/".join(("deployer", *where)).encode(), n=1 << 14, r=8, p=1, dklen=16
    )
    return SEALED + digest.hex()


def differing_parts(want: Mapping[str, str], have: Mapping[str, str]) -> list[str]:
    """The keys whose parts differ, a key missing on either side counting as its default.

    Labels written by an older release hold every key, defaults included; labels written
    now hold only the keys a manifest sets. Both compare equal for the same service.
    """
    defaults = default_parts()
    keys = set(want) | set(have)
    return sorted(k for k in keys if want.get(k, defaults.get(k)) != have.get(k, defaults.get(k)))


@dataclass(frozen=True)
class Task:
    """A one-off admin process run from a service's new image and environment."""

    name: str
    service: str
    command: tuple[str, ...]
    when: TaskWhen = "before-deploy"
    timeout: float = 600.0


def host_form(environment: str) -> str:
    """An environment's name as written in names on hosts (containers, networks, volumes,
    locks): `review/<slug>`, GitLab's review apps, becomes `review-<slug>`. Labels keep the
    name as written."""
    return environment.replace("/", "-")


@dataclass(frozen=True)
class Environment:
    name: str
    hosts: tuple[str, ...] = ()  # empty: DOCKER_HOST, else the local socket
    url: str | None = None
    variables: tuple[tuple[str, str], ...] = ()
    engine: Engine = "container"
    allow_insecure_tcp: bool = False
    proxy: EdgeProxy | None = None  # the edge proxy; set when the environment has `proxy:`


@dataclass(frozen=True)
class RolloutPolicy:
    health_timeout: float = 60.0
    keep_releases: int = 3
    healthy_after: float = 5.0  # no healthcheck: running and not restarted for this long
    drain: float = 1.0  # start-first: wait after removing the old container from aliases
    lock_ttl: float = 1800.0
    batch: str = "1"  # fleet: hosts per batch, a count or a percentage ("25%")
    batch_pause: float = 0.0
    canary: float | None = None  # seconds the first (single-host) batch must stay healthy


@dataclass(frozen=True)
class RegistryAuth:
    server: str
    username: str
    password: str = field(repr=False)  # a secret: never print


@dataclass(frozen=True)
class GitlabPolicy:
    hold_label: str = "deploy::hold"
    require_api: bool = False


@dataclass(frozen=True)
class Webhook:
    """One notification target. The URL is a secret (it carries the webhook's token)."""

    url: str = field(repr=False)
    format: str = "json"  # "slack", "teams", "json"
    on: tuple[str, ...] = ("success", "failure", "blocked")


@dataclass(frozen=True)
class NotifyPolicy:
    timeout: float = 5.0  # per webhook
    webhooks: tuple[Webhook, ...] = ()


@dataclass(frozen=True)
class TopVolume:
    name: str
    external: bool = False
    driver: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    engine_name: str | None = None  # compose's `name:` (or `external: {name}`): used as is
    driver_opts: tuple[tuple[str, str], ...] = ()
    # A relative directory of the compose files that is data (``./data``): this volume,
    # created empty on each host, stands for it.
    data_dir: str | None = None


@dataclass(frozen=True)
class TopNetwork:
    name: str
    external: bool = False
    driver: str | None = None
    internal: bool = False
    labels: tuple[tuple[str, str], ...] = ()
    engine_name: str | None = None  # compose's `name:` (or `external: {name}`): used as is
    ipam_driver: str | None = None
    subnets: tuple[tuple[str, str, str], ...] = ()  # ipam.config: (subnet, gateway, ip_range)
    enable_ipv6: bool = False
    attachable: bool = False
    driver_opts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Warning_:
    """A non-fatal finding (``latest`` tag, no tag)."""

    path: str
    line: int
    message: str


@dataclass(frozen=True)
class Manifest:
    """A manifest validated and interpolated for one environment."""

    path: str
    app: str
    environment: Environment
    services: tuple[Service, ...]
    tasks: tuple[Task, ...] = ()
    rollout: RolloutPolicy = field(default_factory=RolloutPolicy)
    volumes: tuple[TopVolume, ...] = ()
    networks: tuple[TopNetwork, ...] = ()
    registries: tuple[RegistryAuth, ...] = ()
    gitlab: GitlabPolicy = field(default_factory=GitlabPolicy)
    notify: NotifyPolicy = field(default_factory=NotifyPolicy)
    policy_allow: tuple[str, ...] = ()
    compose_project: str | None = None  # set when services came from compose files
    warnings: tuple[Warning_, ...] = ()

    def engine_names(self) -> dict[str, str]:
        """``network:<key>``/``volume:<key>`` → the engine name a `name:` gives it."""
        out = {f"network:{n.name}": n.engine_name for n in self.networks if n.engine_name}
        out.update({f"volume:{v.name}": v.engine_name for v in self.volumes if v.engine_name})
        return out

    def service(self, name: str) -> Service:
        for svc in self.services:
            if svc.name == name:
                return svc
        raise KeyError(name)

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services)

    @property
    def public_services(self) -> tuple[Service, ...]:
        """The services the edge proxy routes to."""
        return tuple(s for s in self.services if s.proxy is not None)

    @property
    def edge(self) -> EdgeProxy | None:
        """The edge proxy of this deploy: the environment's, or the default when only
        services name routes; None when no service is public."""
        if not self.public_services:
            return None
        return self.environment.proxy or EdgeProxy()
