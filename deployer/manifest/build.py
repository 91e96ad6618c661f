"""Turn a schema-checked, interpolated tree into the typed model, checking what the schema
cannot: formats (ports, durations, images), references between services, conflicts, and
the safety policy. Written defensively: a value of the wrong type was already reported by
the schema and is skipped here, so every problem is reported once and nothing crashes.
"""

from __future__ import annotations

import ipaddress
import os
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from deployer.labels import PREFIX
from deployer.manifest import files, parse, policy
from deployer.manifest import repofiles as R
from deployer.manifest.model import (
    EdgeProxy,
    Environment,
    FileMount,
    GitlabPolicy,
    Healthcheck,
    Logging,
    Manifest,
    Mount,
    NetworkAttachment,
    NotifyPolicy,
    Port,
    PullPolicy,
    RegistryAuth,
    RolloutPolicy,
    Route,
    Service,
    Task,
    TopNetwork,
    TopVolume,
    UpdateConfig,
    Warning_,
    Webhook,
    host_form,
)
from deployer.manifest.problems import Path, Problem
from deployer.manifest.schema import is_secret
from deployer.manifest.yamlpos import Doc

APP_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
MAX_NOTIFY_TIMEOUT = 30.0
SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_RESTART = re.compile(r"^(no|always|unless-stopped|on-failure(:\d+)?)$")
_SIGNAL = re.compile(r"^(SIG[A-Z0-9+-]+|[0-9]+)$")
_ENV_KEY = re.compile(r"^[^=\s]+$")
_EXPOSE = re.compile(r"^\d{1,5}(-\d{1,5})?(/(tcp|udp))?$")
# An environment's name becomes part of names on hosts (containers, networks, volumes):
# names the engine accepts, and GitLab's review apps (`review/<slug>`, written review-<slug>).
ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
ENV_NAME_MAX = 64

# Bounds: values past these are mistakes, and some would hang or crash a deploy.
MAX_REPLICAS = 100
MAX_DURATION = 24 * 3600.0
MIN_LOCK_TTL = 10.0

POLICY_NAMES = (
    "privileged",
    "host-network",
    "host-pid",
    "host-ipc",
    "docker-socket",
    "system-bind",
    "cap_add",
    "devices",
    "seccomp=unconfined",
    "apparmor=unconfined",
    "label=disable",
)
# security_opt entries that switch an isolation off: each needs its own policy.allow entry.
_UNCONFINED = {
    "seccomp=unconfined": "seccomp=unconfined",
    "seccomp:unconfined": "seccomp=unconfined",
    "apparmor=unconfined": "apparmor=unconfined",
    "apparmor:unconfined": "apparmor=unconfined",
    "label=disable": "label=disable",
    "label:disable": "label=disable",
}
# Compose's pull policies: a deploy resolves the image on every run, so the periodic ones
# (daily, weekly, every_<duration>), refresh and build (the CI built and pushed it) resolve
# it from the registry like always; if_not_present is compose's old name of missing.
_PULL_POLICY: dict[str, PullPolicy] = {
    "always": "always",
    "missing": "missing",
    "if_not_present": "missing",
    "never": "never",
}
_ULIMIT_NAME = re.compile(r"^[a-z]+$")
_MAC = re.compile(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")
_PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$")

T = TypeVar("T")


@dataclass
class Builder:
    doc: Doc
    lookup: Mapping[str, str]  # variables for `KEY` entries without a value
    skip: list[Path] = field(default_factory=list)  # paths the schema already reported
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Warning_] = field(default_factory=list)
    warning_problems: list[Problem] = field(default_factory=list)
    volumes_declared: set[str] = field(default_factory=set)
    networks_declared: set[str] = field(default_factory=set)
    allow: set[str] = field(default_factory=set)
    repo: R.RepoFiles | None = None
    service_files: list[FileMount] = field(default_factory=list)
    engine: str = "container"
    service_names: set[str] = field(default_factory=set)
    subnets: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)

    # -- reporting ------------------------------------------------------------------------
    def err(self, path: Path, message: str, fix: str | None = None, *, key: bool = False) -> None:
        for s in self.skip:
            if path[: len(s)] == s:
                return
        self.problems.append(self.doc.problem(path, message, fix, key=key))

    def warn(self, path: Path, message: str, fix: str | None = None) -> None:
        p = self.doc.problem(path, message, fix, severity="warning")
        self.warning_problems.append(p)
        self.warnings.append(Warning_(p.path, p.line, message))

    def parsed(self, path: Path, fn: Callable[[Any], T], value: Any) -> T | None:
        try:
            return fn(value)
        except ValueError as e:
            if is_secret(path):
                self.err(path, "invalid value (not shown: it may be a secret)")
            else:
                self.err(path, str(e))
            return None

    def dur(self, path: Path, value: Any) -> float | None:
        if value is None:
            return None
        seconds = self.parsed(path, parse.duration, value)
        if seconds is not None and seconds > MAX_DURATION:
            self.err(path, "is longer than 24h, the longest duration accepted", "shorten it")
            return None
        return seconds

    # -- top level ------------------------------------------------------------------------
    def manifest(self, data: dict[str, Any], env_name: str, file: str) -> Manifest | None:
        app = data.get("app")
        if isinstance(app, str) and not APP_NAME.match(app):
            self.err(
                ("app",),
                f'"{app}" is not a valid app name; expected lowercase letters, digits, '
                "and _ . - (starting with a letter or digit)",
                f'use "{_slug(app)}"' if _slug(app) else None,
            )
        self.allow = self.policy(data.get("policy"))
        self.repo = R.RepoFiles.read(self, data)
        volumes = self.top_volumes(data.get("volumes"))
        networks = self.top_networks(data.get("networks"))
        environment = self.environment(data, env_name)
        if environment is not None:
            self.engine = environment.engine
        services: list[Service] = []
        raw_services = data.get("services")
        if isinstance(raw_services, dict):
            self.service_names = set(raw_services)
            if not raw_services and "compose" not in data:
                self.err(("services",), "must not be empty", "add at least one service")
            for name, raw in raw_services.items():
                svc = self.service(name, raw)
                if svc is not None:
                    services.append(svc)
        volumes += tuple(
            v for n, v in self.repo.data_volumes.items() if n not in {x.name for x in volumes}
        )
        if environment is not None and environment.engine == "swarm":
            for svc in services:
                for fm in svc.files:
                    if fm.directory:
                        self.err(
                            ("services", svc.name),
                            f"service `{svc.name}` mounts the directory {fm.label}: Swarm "
                            "configs and secrets are single files",
                            "mount its files one by one, bake the directory into the image, "
                            "or use engine: container for this environment",
                            key=True,
                        )
        tasks = self.tasks(data.get("tasks"), raw_services)
        self.cross_checks(services, raw_services)
        if environment is not None:
            self.proxy_checks(environment, services, env_name)
        rollout = self.rollout(data.get("rollout"))
        registries = self.registries(data.get("registry"))
        gitlab = self.gitlab(data.get("gitlab"))
        notify = self.notify(data.get("notify"))
        if self.problems or environment is None or not isinstance(app, str):
            return None
        return Manifest(
            path=file,
            app=app,
            environment=environment,
            services=tuple(services),
            tasks=tasks,
            rollout=rollout,
            volumes=volumes,
            networks=networks,
            registries=registries,
            gitlab=gitlab,
            notify=notify,
            policy_allow=tuple(sorted(self.allow)),
            warnings=tuple(self.warnings),
        )

    def policy(self, raw: Any) -> set[str]:
        if not isinstance(raw, dict) or not isinstance(raw.get("allow"), list):
            return set()
        return {a for a in raw["allow"] if isinstance(a, str) and a in POLICY_NAMES}

    def top_volumes(self, raw: Any) -> tuple[TopVolume, ...]:
        out = []
        if isinstance(raw, dict):
            for name, spec in raw.items():
                path = ("volumes", name)
                if not parse.VOLUME_NAME.match(name):
                    self.err(path, f'"{name}" is not a valid volume name', key=True)
                self.volumes_declared.add(name)
                sp = spec if isinstance(spec, dict) else {}
                external, engine_name = self.external_name(path, sp)
                out.append(
                    TopVolume(
                        name=name,
                        external=external,
                        driver=_str_or_none(sp.get("driver")),
                        labels=self.pairs((*path, "labels"), sp.get("labels")),
                        engine_name=engine_name,
                        driver_opts=self.pairs((*path, "driver_opts"), sp.get("driver_opts")),
                    )
                )
        return tuple(out)

    def top_networks(self, raw: Any) -> tuple[TopNetwork, ...]:
        out = []
        if isinstance(raw, dict):
            for name, spec in raw.items():
                path = ("networks", name)
                if not parse.VOLUME_NAME.match(name):
                    self.err(path, f'"{name}" is not a valid network name', key=True)
                self.networks_declared.add(name)
                sp = spec if isinstance(spec, dict) else {}
                external, engine_name = self.external_name(path, sp)
                ipam: dict[str, Any] = sp["ipam"] if isinstance(sp.get("ipam"), dict) else {}
                subnets = []
                for i, cfg in enumerate(ipam.get("config") or []):
                    if not isinstance(cfg, dict):
                        continue
                    cp = (*path, "ipam", "config", i)
                    subnet = cfg.get("subnet")
                    if not isinstance(subnet, str) or not _is_net(subnet):
                        self.err((*cp, "subnet"), f'"{subnet}" is not a subnet (CIDR)')
                        continue
                    gateway, ip_range = cfg.get("gateway", ""), cfg.get("ip_range", "")
                    if gateway and not (isinstance(gateway, str) and _is_ip(gateway)):
                        self.err((*cp, "gateway"), f'"{gateway}" is not an IP address')
                    if ip_range and not (isinstance(ip_range, str) and _is_net(ip_range)):
                        self.err((*cp, "ip_range"), f'"{ip_range}" is not a subnet (CIDR)')
                    subnets.append((subnet, str(gateway or ""), str(ip_range or "")))
                self.subnets[name] = subnets
                out.append(
                    TopNetwork(
                        name=name,
                        external=external,
                        driver=_str_or_none(sp.get("driver")),
                        internal=sp.get("internal") is True,
                        labels=self.pairs((*path, "labels"), sp.get("labels")),
                        engine_name=engine_name,
                        ipam_driver=_str_or_none(ipam.get("driver")),
                        subnets=tuple(subnets),
                        enable_ipv6=sp.get("enable_ipv6") is True,
                        attachable=sp.get("attachable") is True,
                        driver_opts=self.pairs((*path, "driver_opts"), sp.get("driver_opts")),
                    )
                )
        return tuple(out)

    def external_name(self, path: Path, sp: dict[str, Any]) -> tuple[bool, str | None]:
        """(external, the engine's name) from `external: true|{name}` and `name:`."""
        ext = sp.get("external")
        name = _str_or_none(sp.get("name"))
        if isinstance(ext, dict):
            legacy = _str_or_none(ext.get("name"))
            if name and legacy and name != legacy:
                self.err((*path, "external", "name"), "external.name and name differ")
            return True, name or legacy
        return ext is True, name

    def environment(self, data: dict[str, Any], env_name: str) -> Environment | None:
        envs = data.get("environments")
        if not isinstance(envs, dict) or not isinstance(envs.get(env_name), dict):
            return None
        raw = envs[env_name]
        path: Path = ("environments", env_name)
        if not ENV_NAME.match(env_name) or len(env_name) > ENV_NAME_MAX:
            self.err(
                path,
                f'"{env_name}" is not a valid environment name: it becomes part of container, '
                "network and volume names on the hosts",
                f"use letters, digits and _ . - (at most {ENV_NAME_MAX}), optionally one "
                "`/` as in review/<slug>"
                + (f', e.g. "{_slug(env_name)}"' if _slug(env_name) else ""),
                key=True,
            )
        for other in envs:
            if (
                other != env_name
                and isinstance(other, str)
                and (host_form(other).lower() == host_form(env_name).lower())
            ):
                self.err(
                    path,
                    f'environments "{env_name}" and "{other}" would share one name on the '
                    f'hosts ("{host_form(env_name)}")',
                    "rename one of them",
                    key=True,
                )
        hosts: list[str] = []
        if isinstance(raw.get("hosts"), list):
            for i, host in enumerate(raw["hosts"]):
                if isinstance(host, str):
                    problem = _host_problem(host)
                    if problem:
                        self.err((*path, "hosts", i), problem[0], problem[1])
                    elif host in hosts:
                        self.err((*path, "hosts", i), f'host "{host}" is listed twice')
                    hosts.append(host)
        url = raw.get("url")
        if isinstance(url, str) and not re.match(r"^https?://[^\s/]+", url):
            self.err((*path, "url"), f'"{url}" is not an http(s) URL', "write https://host/...")
        variables = raw.get("variables")
        var_pairs: tuple[tuple[str, str], ...] = ()
        if isinstance(variables, dict):
            var_pairs = tuple((k, _scalar_text(v)) for k, v in variables.items())
        engine = raw.get("engine", "container")
        proxy = self.edge_proxy((*path, "proxy"), raw.get("proxy"))
        return Environment(
            name=env_name,
            hosts=tuple(hosts),
            url=url if isinstance(url, str) else None,
            variables=var_pairs,
            engine=engine if engine in ("container", "swarm") else "container",
            allow_insecure_tcp=raw.get("allow_insecure_tcp") is True,
            proxy=proxy,
        )

    def edge_proxy(self, path: Path, raw: Any) -> EdgeProxy | None:
        """``environments.<env>.proxy``: the edge proxy's listeners, image and timeouts."""
        if not isinstance(raw, dict):
            return None
        base = EdgeProxy()
        http = raw.get("http", base.http)
        https = raw.get("https", base.https)
        for key, value in (("http", http), ("https", https)):
            if key == "https" and value in (None, False, ""):
                continue
            if not isinstance(value, str) or _listen_problem(value):
                self.err(
                    (*path, key),
                    f'"{value}" is not a listen address',
                    'write "IP:PORT", e.g. "0.0.0.0:80"'
                    + (" (or false for no TLS listener)" if key == "https" else ""),
                )
        if isinstance(http, str) and isinstance(https, str) and http == https:
            self.err((*path, "https"), f'"{https}" is the http address too', "use another port")
        image = raw.get("image", base.image)
        name = raw.get("name", base.name)
        if isinstance(name, str) and not SERVICE_NAME.match(name):
            self.err((*path, "name"), f'"{name}" is not a valid container name')
        drain = self.dur((*path, "drain_timeout"), raw.get("drain_timeout"))
        acme: dict[str, Any] = raw["acme"] if isinstance(raw.get("acme"), dict) else {}
        directory = acme.get("directory")
        if isinstance(directory, str) and not directory.startswith("https://"):
            self.err(
                (*path, "acme", "directory"),
                f'"{directory}" is not an https URL',
                "ACME directories are served over https",
            )
        return EdgeProxy(
            http=http if isinstance(http, str) else base.http,
            https=https if isinstance(https, str) and https else None,
            image=image if isinstance(image, str) else base.image,
            name=name if isinstance(name, str) else base.name,
            drain_timeout=drain if drain is not None else base.drain_timeout,
            acme_directory=_str_or_none(directory),
            acme_email=_str_or_none(acme.get("email")),
            acme_ca_root=_str_or_none(acme.get("ca_root")),
        )

    def route(self, path: Path, raw: dict[str, Any]) -> Route | None:  # noqa: C901, PLR0912 (flat key table)
        """A service's ``proxy:`` (or compose's ``x-deployer-proxy:``)."""
        key = "proxy"
        if "x-deployer-proxy" in raw:
            if "proxy" in raw:
                self.err(
                    (*path, "x-deployer-proxy"),
                    "both `proxy` and `x-deployer-proxy` are set",
                    "keep one of them",
                    key=True,
                )
                return None
            key = "x-deployer-proxy"
        spec = raw.get(key)
        if spec is None:
            return None
        p = (*path, key)
        if not isinstance(spec, dict):
            self.err(p, "must be a mapping", "write {host: shop.example.com, port: 8080}")
            return None
        host, port = spec.get("host"), spec.get("port")
        if host is None:
            self.err(p, "missing required key `host`", "add `host: shop.example.com`")
        elif not isinstance(host, str) or not _HOSTNAME.match(host):
            self.err((*p, "host"), f'"{host}" is not a host name', "e.g. shop.example.com")
        if port is None:
            self.err(p, "missing required key `port`", "add the container port, e.g. `port: 8080`")
        else:
            try:
                port = _port_int(port)
            except ValueError:
                self.err((*p, "port"), f'"{port}" is not a port number (1-65535)')
                port = None
        prefix = spec.get("path_prefix", "/")
        if not isinstance(prefix, str) or not prefix.startswith("/"):
            self.err((*p, "path_prefix"), f'"{prefix}" is not a path', "start it with /")
        check = spec.get("healthcheck")
        if check is not None and (not isinstance(check, str) or not check.startswith("/")):
            self.err((*p, "healthcheck"), f'"{check}" is not an HTTP path', "e.g. /up")
        tls = spec.get("tls", "none")
        mode: Literal["none", "auto", "file"] = "none"
        cert = key_file = None
        if tls is True or tls == "auto":
            mode = "auto"
        elif isinstance(tls, dict):
            mode = "file"
            cert, key_file = tls.get("certificate"), tls.get("key")
            for name, value in (("certificate", cert), ("key", key_file)):
                if not isinstance(value, str) or not value:
                    self.err(
                        (*p, "tls"),
                        f"missing `{name}`",
                        f"set `{name}:` to a PEM file, e.g. a File-type CI/CD variable",
                    )
        elif tls not in ("none", False, None):
            self.err(
                (*p, "tls"), f'"{tls}" is not a TLS mode', "use auto, none or {certificate, key}"
            )
        if not isinstance(host, str) or not isinstance(port, int) or not isinstance(prefix, str):
            return None
        return Route(
            host=host.lower(),
            port=port,
            path_prefix=prefix,
            healthcheck=check if isinstance(check, str) else None,
            tls=mode,
            certificate=cert if isinstance(cert, str) else None,
            key=key_file if isinstance(key_file, str) else None,
        )

    def proxy_checks(self, env: Environment, services: list[Service], env_name: str) -> None:
        public = [s for s in services if s.proxy is not None]
        if env.engine == "swarm" and (public or env.proxy is not None):
            where: Path = (
                ("environments", env_name, "proxy")
                if env.proxy is not None
                else ("services", public[0].name, "proxy")
            )
            self.err(
                where,
                "the edge proxy runs in container mode only: Swarm routes public ports through "
                "its own ingress",
                "remove `proxy:` for this environment, or use engine: container",
                key=True,
            )
        seen: dict[tuple[str, str], str] = {}
        for svc in public:
            assert svc.proxy is not None
            slot = (svc.proxy.host, svc.proxy.path_prefix)
            if slot in seen:
                self.err(
                    ("services", svc.name, "proxy", "host"),
                    f"{svc.proxy.host}{svc.proxy.path_prefix} is routed to service "
                    f'"{seen[slot]}" already',
                    "give each public service its own host name or path_prefix",
                )
            seen[slot] = svc.name

    # -- services -------------------------------------------------------------------------
    def service(self, name: str, raw: Any) -> Service | None:  # noqa: C901, PLR0912, PLR0915 (flat key table)
        path: Path = ("services", name)
        if not SERVICE_NAME.match(name):
            self.err(
                path,
                f'"{name}" is not a valid service name; expected letters, digits and _ . -',
                key=True,
            )
        if not isinstance(raw, dict):
            if raw is None:
                self.err(path, "the service is empty", "add at least `image:`")
            return None
        before = len(self.problems)
        image = raw.get("image")
        repo = self.repo or R.RepoFiles(base=os.path.dirname(os.path.abspath(self.doc.file)))
        build, built_image = R.build_section(self, path, name, raw, repo.base)
        if image is None and built_image is not None:
            image = built_image
        elif image is None and build is None and len(self.problems) == before:
            self.err(path, "missing required key `image`", "add `image: registry/repo:tag`")
        elif isinstance(image, str) and not (build is not None and build.image_defaulted):
            parsed = self.parsed((*path, "image"), parse.image, image)
            if parsed is not None:
                tag, digest = parsed
                if digest is None and tag is None:
                    self.warn(
                        (*path, "image"),
                        f'"{image}" has no tag, so "latest" is deployed: which version runs '
                        "depends on when it was pushed",
                        "pin a tag, e.g. :${CI_COMMIT_SHORT_SHA}",
                    )
                elif digest is None and tag == "latest":
                    self.warn(
                        (*path, "image"),
                        f'"{image}" uses the tag "latest": which version runs depends on when '
                        "it was pushed",
                        "pin a tag, e.g. :${CI_COMMIT_SHORT_SHA}",
                    )
        environment = self.service_environment(path, raw)
        ports = self.ports((*path, "ports"), raw.get("ports"))
        self.service_files = []
        volumes = self.mounts((*path, "volumes"), raw.get("volumes"))
        files = list(self.service_files)
        files += repo.refs(self, (*path, "configs"), "config", raw.get("configs"))
        files += repo.refs(self, (*path, "secrets"), "secret", raw.get("secrets"))
        networks = self.networks((*path, "networks"), raw.get("networks"))
        deploy: dict[str, Any] = raw["deploy"] if isinstance(raw.get("deploy"), dict) else {}
        replicas, cpus, memory, update = self.deploy((*path, "deploy"), deploy)
        healthcheck = self.healthcheck((*path, "healthcheck"), raw.get("healthcheck"))
        depends = self.depends_on(raw.get("depends_on"))
        restart = raw.get("restart")
        if isinstance(restart, str) and not _RESTART.match(restart):
            self.err(
                (*path, "restart"),
                f'"{restart}" is not a restart policy',
                "use no, always, on-failure[:N] or unless-stopped",
            )
        stop_signal = raw.get("stop_signal")
        if isinstance(stop_signal, str) and not _SIGNAL.match(stop_signal):
            self.err((*path, "stop_signal"), f'"{stop_signal}" is not a signal', "e.g. SIGTERM")
        tmpfs = raw.get("tmpfs")
        tmpfs_list = [tmpfs] if isinstance(tmpfs, str) else tmpfs if isinstance(tmpfs, list) else []
        for i, t in enumerate(tmpfs_list):
            if isinstance(t, str) and not t.startswith("/"):
                p = (*path, "tmpfs") if isinstance(tmpfs, str) else (*path, "tmpfs", i)
                self.err(p, f'"{t}" is not an absolute path inside the container')
        extra_hosts = self.extra_hosts((*path, "extra_hosts"), raw.get("extra_hosts"))
        logging = raw.get("logging")
        log = None
        if isinstance(logging, dict):
            opts: dict[str, Any] = (
                logging["options"] if isinstance(logging.get("options"), dict) else {}
            )
            log = Logging(
                driver=_str_or_none(logging.get("driver")),
                options=tuple((k, _scalar_text(v)) for k, v in opts.items()),
            )
        labels = self.pairs((*path, "labels"), raw.get("labels"))
        for k, _ in labels:
            if k.startswith(PREFIX):
                self.err(
                    (*path, "labels"),
                    f"label `{k}` uses the prefix {PREFIX} that the deployer reserves",
                    "rename the label",
                )
        self.safety(path, raw, volumes)
        route = self.route(path, raw)
        extra = self.compose_keys(path, raw, deploy)
        if "memory" in extra:
            memory = extra.pop("memory")
        if "cpus" in extra:
            cpus = extra.pop("cpus")
        if "restart" in extra:
            restart = extra.pop("restart")
        cap_add: list[Any] = raw["cap_add"] if isinstance(raw.get("cap_add"), list) else []
        command = raw.get("command")
        entrypoint = raw.get("entrypoint")
        if command is not None:
            command = self.parsed((*path, "command"), parse.command, command)
        if entrypoint is not None:
            entrypoint = self.parsed((*path, "entrypoint"), parse.command, entrypoint)
        stop_grace = self.dur((*path, "stop_grace_period"), raw.get("stop_grace_period"))
        expose: list[Any] = raw["expose"] if isinstance(raw.get("expose"), list) else []
        for i, e in enumerate(expose):
            if isinstance(e, str | int) and not isinstance(e, bool) and not _EXPOSE.match(str(e)):
                self.err(
                    (*path, "expose", i),
                    f'"{e}" is not a port to expose; expected e.g. "8080", "8080/udp" or '
                    '"8000-8010"',
                )
        working_dir = raw.get("working_dir")
        if isinstance(working_dir, str) and not working_dir.startswith("/"):
            self.err(
                (*path, "working_dir"),
                f'"{working_dir}" is not an absolute path',
                "start it with / (a path inside the container)",
            )
        pull_policy = _PULL_POLICY.get(str(raw.get("pull_policy", "always")), "always")
        user = raw.get("user")
        if len(self.problems) != before or not isinstance(image, str):
            return None
        return Service(
            name=name,
            image=image,
            pull_policy=pull_policy,
            command=command,
            entrypoint=entrypoint,
            environment=environment,
            ports=ports,
            expose=tuple(str(e) for e in expose if isinstance(e, str | int)),
            volumes=volumes,
            networks=networks,
            healthcheck=healthcheck,
            depends_on=depends,
            labels=labels,
            restart=_str_or_none(restart),
            user=str(user) if isinstance(user, str | int) else None,
            init=raw.get("init") if isinstance(raw.get("init"), bool) else None,
            working_dir=_str_or_none(raw.get("working_dir")),
            stop_signal=_str_or_none(stop_signal),
            stop_grace_period=stop_grace,
            read_only=raw.get("read_only") is True,
            tmpfs=tuple(t for t in tmpfs_list if isinstance(t, str)),
            extra_hosts=extra_hosts,
            logging=log,
            replicas=replicas,
            cpus=cpus,
            memory=memory,
            update_config=update,
            privileged=raw.get("privileged") is True,
            network_mode=_str_or_none(raw.get("network_mode")),
            pid=_str_or_none(raw.get("pid")),
            ipc=_str_or_none(raw.get("ipc")),
            cap_add=tuple(c for c in cap_add if isinstance(c, str)),
            proxy=route,
            files=tuple(files),
            build=build,
            **extra,
        )

    def compose_keys(  # noqa: C901, PLR0912, PLR0915 (flat key table)
        self, path: Path, raw: dict[str, Any], deploy: dict[str, Any]
    ) -> dict[str, Any]:
        """The compose keys added after the first release, as ``Service`` keyword arguments
        (only the keys the service sets: the others keep their defaults)."""
        out: dict[str, Any] = {}

        def text(key: str) -> None:
            value = raw.get(key)
            if isinstance(value, str) and value:
                out[key] = value

        def size(key: str, value: Any, at: Path, name: str) -> None:
            if value is None:
                return
            if name == "memswap_limit" and value in (-1, "-1"):
                out[name] = -1
                return
            got = self.parsed(at, parse.size, value)
            if got is not None:
                out[name] = got

        def listed(key: str) -> None:
            value = raw.get(key)
            items = [value] if isinstance(value, str | int) else value
            if isinstance(items, list) and items:
                out[key] = tuple(str(v) for v in items if isinstance(v, str | int))

        for key in ("hostname", "domainname", "runtime"):
            text(key)
        name = raw.get("container_name")
        if isinstance(name, str):
            if not re.match(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$", name):
                self.err(
                    (*path, "container_name"),
                    f'"{name}" is not a valid container name',
                    "use letters, digits and _ . - (starting with a letter or digit)",
                )
            else:
                out["container_name"] = name
                replicas = deploy.get("replicas", raw.get("scale", 1))
                if isinstance(replicas, int) and replicas > 1:
                    self.err(
                        (*path, "container_name"),
                        f"container_name names one container, but the service has {replicas} "
                        "replicas",
                        "remove container_name, or use replicas: 1",
                    )
                uc = deploy.get("update_config")
                if isinstance(uc, dict) and uc.get("order") == "start-first":
                    self.err(
                        (*path, "deploy", "update_config", "order"),
                        "start-first cannot work with container_name: the new container "
                        "cannot take the name while the old one has it",
                        "use order: stop-first, or remove container_name",
                    )
                if self.engine == "swarm":
                    self.err(
                        (*path, "container_name"),
                        "container_name is not possible with engine: swarm (Swarm names the "
                        "task containers itself)",
                        "remove container_name, or deploy this environment with engine: container",
                    )
        mac = raw.get("mac_address")
        if isinstance(mac, str):
            if not _MAC.match(mac):
                self.err((*path, "mac_address"), f'"{mac}" is not a MAC address')
            else:
                out["mac_address"] = mac.lower()
        platform = raw.get("platform")
        if isinstance(platform, str) and platform:  # empty (`${DOCKER_PLATFORM:-}`): unset
            if not _PLATFORM.match(platform):
                self.err(
                    (*path, "platform"),
                    f'"{platform}" is not a platform',
                    "write OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8",
                )
            else:
                out["platform"] = platform
        size("shm_size", raw.get("shm_size"), (*path, "shm_size"), "shm_size")
        for key in ("stdin_open", "tty"):
            if raw.get(key) is True:
                out[key] = True
        annotations = self.pairs((*path, "annotations"), raw.get("annotations"))
        if annotations:
            out["annotations"] = annotations
        sysctls = self.pairs((*path, "sysctls"), raw.get("sysctls"))
        if sysctls:
            out["sysctls"] = sysctls
        ulimits = self.ulimits((*path, "ulimits"), raw.get("ulimits"))
        if ulimits:
            out["ulimits"] = ulimits
        for key in ("dns", "dns_search", "dns_opt", "group_add", "cap_drop"):
            listed(key)
        for i, d in enumerate(out.get("dns", ())):
            if not _is_ip(d):
                p = (*path, "dns", i) if isinstance(raw.get("dns"), list) else (*path, "dns")
                self.err(p, f'"{d}" is not an IP address (a DNS server)')
        for key in ("pids_limit", "cpu_shares", "oom_score_adj"):
            value = raw.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                if key == "oom_score_adj" and not -1000 <= value <= 1000:
                    self.err((*path, key), f"{value} is out of range", "use -1000 to 1000")
                out[key] = value
        size("mem_limit", raw.get("mem_limit"), (*path, "mem_limit"), "memory")
        size("memswap_limit", raw.get("memswap_limit"), (*path, "memswap_limit"), "memswap_limit")
        size(
            "mem_reservation",
            raw.get("mem_reservation"),
            (*path, "mem_reservation"),
            "mem_reservation",
        )
        if raw.get("cpus") is not None:
            cpus = self.parsed((*path, "cpus"), parse.cpus, raw["cpus"])
            if cpus is not None:
                out["cpus"] = cpus
        self.security((path), raw, out)
        self.deploy_keys((*path, "deploy"), deploy, out)
        return out

    def ulimits(self, path: Path, raw: Any) -> tuple[tuple[str, int, int], ...]:
        out = []
        if not isinstance(raw, dict):
            return ()
        for name, spec in raw.items():
            p = (*path, name)
            if not _ULIMIT_NAME.match(name):
                self.err(p, f'"{name}" is not a ulimit name', "e.g. nofile, nproc, memlock")
                continue
            if isinstance(spec, int) and not isinstance(spec, bool):
                out.append((name, spec, spec))
            elif isinstance(spec, dict):
                soft, hard = spec.get("soft"), spec.get("hard")
                if not isinstance(soft, int) or not isinstance(hard, int):
                    self.err(p, "a ulimit needs `soft` and `hard` (integers)", key=True)
                elif soft > hard and hard != -1:
                    self.err(p, f"the soft limit {soft} is above the hard limit {hard}")
                else:
                    out.append((name, soft, hard))
        return tuple(sorted(out))

    def security(self, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
        opts = raw.get("security_opt")
        if isinstance(opts, list) and opts:
            kept = []
            for i, opt in enumerate(opts):
                if not isinstance(opt, str):
                    continue
                allow = _UNCONFINED.get(opt.replace(" ", ""))
                if allow and allow not in self.allow:
                    self.err(
                        (*path, "security_opt", i),
                        f'security_opt "{opt}" switches off an isolation of the container; '
                        "it is refused by the safety policy",
                        f'remove it, or add "{allow}" to `policy: {{allow: [...]}}` if this '
                        "app really needs it",
                    )
                kept.append(opt)
            out["security_opt"] = tuple(kept)
        devices = raw.get("devices")
        if isinstance(devices, list) and devices:
            kept = []
            for i, item in enumerate(devices):
                dev = item
                if isinstance(item, dict):
                    src, dst = item.get("source"), item.get("target", item.get("source"))
                    perms = item.get("permissions", "rwm")
                    dev = f"{src}:{dst}:{perms}" if isinstance(src, str) else None
                if not isinstance(dev, str):
                    continue
                if not dev.startswith("/"):
                    self.err(
                        (*path, "devices", i),
                        f'"{dev}" is not a device; expected "/dev/HOST[:/dev/CONTAINER[:rwm]]"',
                    )
                    continue
                kept.append(dev)
            if "devices" not in self.allow:
                self.err(
                    (*path, "devices"),
                    "devices give the container direct access to host hardware; they are "
                    "refused by the safety policy",
                    'remove them, or add "devices" to `policy: {allow: [...]}` if this app '
                    "really needs them",
                    key=True,
                )
            out["devices"] = tuple(kept)

    def deploy_keys(self, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:  # noqa: C901, PLR0912, PLR0915 (flat key table)
        """deploy.* keys beyond replicas, limits and update_config."""
        swarm = self.engine == "swarm"
        res = raw.get("resources")
        reservations = res.get("reservations") if isinstance(res, dict) else None
        if isinstance(reservations, dict):
            rp = (*path, "resources", "reservations")
            if reservations.get("memory") is not None:
                got = self.parsed((*rp, "memory"), parse.size, reservations["memory"])
                if got is not None:
                    if out.get("mem_reservation") not in (None, got):
                        self.err(
                            (*rp, "memory"),
                            "mem_reservation and deploy.resources.reservations.memory differ",
                            "keep one of them",
                        )
                    out["mem_reservation"] = got
            if reservations.get("cpus") is not None:
                got_cpus = self.parsed((*rp, "cpus"), parse.cpus, reservations["cpus"])
                if got_cpus is not None:
                    out["cpus_reservation"] = got_cpus
            for key in ("devices", "generic_resources"):
                if key in reservations:
                    self.err(
                        (*rp, key),
                        f"reservations.{key} (GPUs and other devices) is not supported yet",
                        "remove it; give the container the devices with `devices:` (policy)",
                        key=True,
                    )
        limits = res.get("limits") if isinstance(res, dict) else None
        if isinstance(limits, dict):
            lp = (*path, "resources", "limits")
            if limits.get("memory") is not None and out.get("memory") is not None:
                got = self.parsed((*lp, "memory"), parse.size, limits["memory"])
                if got is not None and got != out["memory"]:
                    self.err((*lp, "memory"), "mem_limit and this limit differ", "keep one")
                out.pop("memory")
            if limits.get("cpus") is not None and out.get("cpus") is not None:
                got_c = self.parsed((*lp, "cpus"), parse.cpus, limits["cpus"])
                if got_c is not None and got_c != out["cpus"]:
                    self.err((*lp, "cpus"), "cpus and this limit differ", "keep one")
                out.pop("cpus")
            if isinstance(limits.get("pids"), int):
                out.setdefault("pids_limit", limits["pids"])
        labels = self.pairs((*path, "labels"), raw.get("labels"))
        if labels:
            out["deploy_labels"] = labels
            if not swarm:
                self.warn(
                    (*path, "labels"),
                    "deploy.labels label a Swarm service; with engine: container they are "
                    "not set on the containers (docker compose does not set them either)",
                    "use the service's `labels:` for container labels",
                )
        mode = raw.get("mode")
        if isinstance(mode, str) and mode != "replicated":
            if mode != "global":
                self.err(
                    (*path, "mode"),
                    f'deploy.mode "{mode}" is not supported yet',
                    "use replicated (the default) or global",
                )
            elif not swarm:
                self.err(
                    (*path, "mode"),
                    "deploy.mode: global runs one task per Swarm node; with engine: "
                    "container every host already runs the service",
                    "remove it (use replicas), or deploy this environment with engine: swarm",
                )
            else:
                out["global_mode"] = True
                if "replicas" in raw:
                    self.err(
                        (*path, "replicas"),
                        "deploy.mode: global runs one task per node: replicas do not apply",
                        "remove replicas",
                    )
        placement = raw.get("placement")
        if isinstance(placement, dict) and placement:
            pp = (*path, "placement")
            if not swarm:
                self.err(
                    pp,
                    "deploy.placement chooses Swarm nodes; with engine: container the "
                    "environment's hosts decide where the service runs",
                    "remove it, or deploy this environment with engine: swarm",
                    key=True,
                )
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
                        self.err((*pp, "preferences", i), "expected `spread: <node label>`")
                out["placement_preferences"] = tuple(spread)
            mrpn = placement.get("max_replicas_per_node")
            if isinstance(mrpn, int) and not isinstance(mrpn, bool):
                out["max_replicas_per_node"] = mrpn
        policy = raw.get("restart_policy")
        if isinstance(policy, dict):
            rp = (*path, "restart_policy")
            condition = policy.get("condition", "any")
            attempts = policy.get("max_attempts")
            mapped = {"none": "no", "any": "always", "on-failure": "on-failure"}.get(str(condition))
            if mapped is None:
                self.err(
                    (*rp, "condition"),
                    f'"{condition}" is not a restart condition',
                    "use none, on-failure or any",
                )
            else:
                if mapped == "on-failure" and isinstance(attempts, int) and attempts > 0:
                    mapped = f"on-failure:{attempts}"
                out["restart"] = mapped  # as docker compose: deploy.restart_policy wins
            for key in ("delay", "window"):
                if policy.get(key) is not None:
                    out[f"restart_{key}"] = self.dur((*rp, key), policy[key])
                    if not swarm:
                        self.warn(
                            (*rp, key),
                            f"restart_policy.{key} applies to Swarm services only; the "
                            "engine restarts a container with its own back-off",
                        )

    def pairs(self, path: Path, raw: Any) -> tuple[tuple[str, str], ...]:
        """A compose list-or-dict (labels, options) as sorted (key, value) pairs."""
        out: dict[str, str] = {}
        if isinstance(raw, dict):
            for k, v in raw.items():
                out[k] = "" if v is None else _scalar_text(v)
        elif isinstance(raw, list):
            for i, item in enumerate(raw):
                if not isinstance(item, str):
                    continue
                k, _, v = item.partition("=")
                if not k:
                    self.err((*path, i), "expected KEY=value")
                    continue
                out[k] = v
        return tuple(sorted(out.items()))

    def service_environment(self, path: Path, raw: dict[str, Any]) -> tuple[tuple[str, str], ...]:  # noqa: C901, PLR0912 (flat key table)
        env: dict[str, str] = {}
        env_file = raw.get("env_file")
        files: list[tuple[Path, Any]] = []
        if isinstance(env_file, str):
            files = [((*path, "env_file"), env_file)]
        elif isinstance(env_file, list):
            files = [((*path, "env_file", i), f) for i, f in enumerate(env_file)]
        for fpath, spec in files:
            required = True
            name = spec
            if isinstance(spec, dict):
                required = spec.get("required", True) is not False
                name = spec.get("path")
            if isinstance(name, str):
                env.update(self.read_env_file(fpath, name, required=required))
        value = raw.get("environment")
        epath = (*path, "environment")
        if isinstance(value, dict):
            for k, v in value.items():
                if not _ENV_KEY.match(k):
                    self.err((*epath, k), f'"{k}" is not a variable name', key=True)
                elif v is None:
                    if k in self.lookup:
                        env[k] = self.lookup[k]
                else:
                    env[k] = _scalar_text(v)
        elif isinstance(value, list):
            seen: set[str] = set()
            for i, item in enumerate(value):
                if not isinstance(item, str):
                    continue
                k, sep, v = item.partition("=")
                if not _ENV_KEY.match(k):
                    self.err((*epath, i), "expected KEY=value (value not shown: a secret)")
                    continue
                if k in seen:
                    self.err((*epath, i), f"variable {k} is set twice")
                seen.add(k)
                if sep:
                    env[k] = v
                elif k in self.lookup:
                    env[k] = self.lookup[k]
        return tuple(sorted(env.items()))

    def read_env_file(self, path: Path, name: str, *, required: bool) -> dict[str, str]:
        base = os.path.dirname(self.doc.pos(path).file)
        full = os.path.join(base, name)
        try:
            text = files.read_limited(full, files.ENV_FILE_LIMIT).decode("utf-8-sig")
        except files.FileRefused as e:
            self.err(
                path,
                f'env_file "{name}" {e}; it is not read',
                "point to a regular KEY=value file of at most "
                f"{files.ENV_FILE_LIMIT // files.MIB} MiB",
            )
            return {}
        except FileNotFoundError:
            if required:
                self.err(
                    path,
                    f'env_file "{name}" not found (looked at {full})',
                    "create it, fix the path (relative to this file), or set required: false",
                )
            return {}
        except (OSError, UnicodeDecodeError) as e:
            self.err(path, f'env_file "{name}" cannot be read: {e.__class__.__name__}')
            return {}
        from deployer.manifest.compose import parse_env_lines

        out, bad = parse_env_lines(text, self.lookup)  # as docker compose v2 reads it
        for n in bad:
            self.problems.append(
                Problem(
                    full,
                    n,
                    1,
                    "",
                    "expected KEY=value (value not shown: a secret)",
                    "fix or remove the line",
                )
            )
        return out

    def ports(self, path: Path, raw: Any) -> tuple[Port, ...]:
        out: list[Port] = []
        if not isinstance(raw, list):
            return ()
        for i, item in enumerate(raw):
            p = (*path, i)
            if isinstance(item, str | int) and not isinstance(item, bool):
                got = self.parsed(p, parse.port_short, item)
                out.extend(got or ())
            elif isinstance(item, dict):
                target = self.parsed((*p, "target"), _port_int, item.get("target"))
                published = item.get("published")
                pub = None
                if published not in (None, ""):
                    pub = self.parsed((*p, "published"), _port_int, published)
                host_ip = item.get("host_ip", "")
                if host_ip and isinstance(host_ip, str):
                    try:
                        import ipaddress

                        ipaddress.ip_address(host_ip)
                    except ValueError:
                        self.err((*p, "host_ip"), f'"{host_ip}" is not an IP address')
                if target is not None:
                    out.append(
                        Port(
                            target=target,
                            published=pub,
                            host_ip=host_ip if isinstance(host_ip, str) else "",
                            protocol=str(item.get("protocol", "tcp")),
                        )
                    )
        return tuple(out)

    def mounts(self, path: Path, raw: Any) -> tuple[Mount, ...]:
        out: list[Mount] = []
        if not isinstance(raw, list):
            return ()
        for i, item in enumerate(raw):
            p = (*path, i)
            mount: Mount | FileMount | None = None
            if isinstance(item, str) and R.is_relative_source(item.partition(":")[0]):
                mount = self.repo.short_bind(self, p, item) if self.repo else None
            elif isinstance(item, str):
                mount = self.parsed(p, parse.volume_short, item)
            elif (
                isinstance(item, dict)
                and item.get("type") == "bind"
                and isinstance(item.get("source"), str)
                and R.is_relative_source(item["source"])
                and isinstance(item.get("target"), str)
                and item["target"].startswith("/")
            ):
                mount = (
                    self.repo.bind(
                        self, p, item["source"], item["target"], item.get("read_only") is True
                    )
                    if self.repo
                    else None
                )
            elif isinstance(item, dict):
                mount = self.mount_long(p, item)
            if isinstance(mount, FileMount):
                self.service_files.append(mount)
                continue
            if mount is None:
                continue
            if mount.type == "bind" and mount.source is not None:
                self.bind_policy(p, item, mount)
            if (
                mount.type == "volume"
                and mount.source
                and (mount.source not in self.volumes_declared)
            ):
                self.err(
                    p,
                    f'volume "{mount.source}" is not declared in the top-level `volumes:`',
                    f"add `volumes: {{{mount.source}: {{}}}}` at the top level, or use an "
                    "absolute host path for a bind mount",
                )
            out.append(mount)
        return tuple(out)

    def bind_policy(self, p: Path, item: Any, mount: Mount) -> None:
        """Refuse a bind of a protected host path, whatever its spelling; the problem is
        on the volume's own line and names the `policy.allow` entries that accept it."""
        assert mount.source is not None
        missing = [
            (name, why)
            for name, why in policy.needs(mount.source, read_only=mount.read_only)
            if name not in self.allow
        ]
        if not missing:
            return
        written = self.written((*p, "source") if isinstance(item, dict) else p)
        if not isinstance(item, dict) and isinstance(written, str) and "$" not in written:
            written = written.split(":")[0]
        shown = written if isinstance(written, str) else mount.source
        message, fix = policy.refusal(shown, mount.source, missing)
        self.err(p, message, fix)

    def written(self, path: Path) -> Any:
        """The value at ``path`` as the manifest writes it (before interpolation)."""
        node: Any = self.doc.data
        for part in path:
            found = (isinstance(node, dict) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and part < len(node)
            )
            if not found:
                return None
            node = node[part]
        return node

    def mount_long(self, p: Path, item: dict[str, Any]) -> Mount | None:
        kind, target, source = item.get("type"), item.get("target"), item.get("source")
        if kind not in ("volume", "bind", "tmpfs") or not isinstance(target, str):
            return None
        if not target.startswith("/"):
            self.err((*p, "target"), f'"{target}" must be an absolute path (start with /)')
            return None
        if kind == "bind":
            if not isinstance(source, str) or not source.startswith("/"):
                self.err(
                    (*p, "source"),
                    "a bind mount needs an absolute host path as `source`",
                    "use an absolute path on the host",
                )
                return None
            source = policy.canonical(source)
        elif kind == "tmpfs":
            if source is not None:
                self.err((*p, "source"), "a tmpfs mount has no source", "remove `source`")
            source = None
        elif isinstance(source, str) and not parse.VOLUME_NAME.match(source):
            self.err((*p, "source"), f'"{source}" is not a volume name')
            return None
        bind: dict[str, Any] = item["bind"] if isinstance(item.get("bind"), dict) else {}
        volume: dict[str, Any] = item["volume"] if isinstance(item.get("volume"), dict) else {}
        selinux = bind.get("selinux") if kind == "bind" else None
        subpath = volume.get("subpath") if kind == "volume" else None
        if isinstance(subpath, str) and (subpath.startswith("/") or ".." in subpath.split("/")):
            self.err((*p, "volume", "subpath"), f'"{subpath}" must be a path inside the volume')
            return None
        return Mount(
            type=kind,
            target=posixpath.normpath(target),
            source=source if isinstance(source, str) else None,
            read_only=item.get("read_only") is True,
            selinux=selinux if selinux in ("z", "Z") else "",
            nocopy=kind == "volume" and volume.get("nocopy") is True,
            subpath=subpath if isinstance(subpath, str) else "",
        )

    def networks(self, path: Path, raw: Any) -> tuple[NetworkAttachment, ...]:
        items: list[tuple[Path, str, tuple[str, ...], dict[str, Any]]] = []
        if isinstance(raw, list):
            items = [((*path, i), n, (), {}) for i, n in enumerate(raw) if isinstance(n, str)]
        elif isinstance(raw, dict):
            for n, spec in raw.items():
                aliases: tuple[str, ...] = ()
                sp: dict[str, Any] = spec if isinstance(spec, dict) else {}
                if isinstance(sp.get("aliases"), list):
                    aliases = tuple(a for a in sp["aliases"] if isinstance(a, str))
                items.append(((*path, n), n, aliases, sp))
        out = []
        for p, name, aliases, sp in items:
            if name != "default" and name not in self.networks_declared:
                self.err(
                    p,
                    f'network "{name}" is not declared in the top-level `networks:`',
                    f"add `networks: {{{name}: {{}}}}` at the top level",
                    key=isinstance(raw, dict),
                )
            addresses = {}
            for key, version in (("ipv4_address", 4), ("ipv6_address", 6)):
                ip = sp.get(key)
                if not isinstance(ip, str):
                    continue
                if not _is_ip(ip) or ipaddress.ip_address(ip).version != version:
                    self.err((*p, key), f'"{ip}" is not an IPv{version} address')
                    continue
                subnets = [
                    ipaddress.ip_network(c[0], strict=False) for c in self.subnets.get(name, ())
                ]
                if not any(ipaddress.ip_address(ip) in net for net in subnets):
                    self.err(
                        (*p, key),
                        f'{ip} is not in a subnet of network "{name}": a fixed address needs '
                        "the network's `ipam.config` subnet",
                        f"add `networks: {{{name}: {{ipam: {{config: [{{subnet: ...}}]}}}}}}` "
                        "at the top level",
                    )
                    continue
                addresses[key] = ip
            out.append(NetworkAttachment(name=name, aliases=aliases, **addresses))
        return tuple(out)

    def deploy(
        self, path: Path, raw: dict[str, Any]
    ) -> tuple[int, float | None, int | None, UpdateConfig]:
        replicas = raw.get("replicas", 1)
        replicas = replicas if isinstance(replicas, int) and not isinstance(replicas, bool) else 1
        if replicas > MAX_REPLICAS:
            self.err(
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
                cpus = self.parsed(
                    (*path, "resources", "limits", "cpus"), parse.cpus, limits["cpus"]
                )
            if limits.get("memory") is not None:
                memory = self.parsed(
                    (*path, "resources", "limits", "memory"), parse.size, limits["memory"]
                )
        uc = raw.get("update_config")
        update = UpdateConfig()
        if isinstance(uc, dict):
            up = (*path, "update_config")
            order = uc.get("order")
            parallelism = uc.get("parallelism", 1)
            failure_action = uc.get("failure_action", "rollback")
            update = UpdateConfig(
                order=order if order in ("start-first", "stop-first") else None,
                parallelism=parallelism if isinstance(parallelism, int) else 1,
                delay=self.dur((*up, "delay"), uc.get("delay")) or 0.0,
                failure_action=failure_action
                if failure_action in ("rollback", "pause", "continue")
                else "rollback",
                monitor=self.dur((*up, "monitor"), uc.get("monitor")),
            )
        return replicas, cpus, memory, update

    def healthcheck(self, path: Path, raw: Any) -> Healthcheck | None:
        if not isinstance(raw, dict):
            return None
        test = raw.get("test")
        test_t: tuple[str, ...] | None = None
        if isinstance(test, str):
            test_t = ("CMD-SHELL", test)
        elif isinstance(test, list):
            test_t = tuple(str(t) for t in test)
            if not test_t or test_t[0] not in ("CMD", "CMD-SHELL", "NONE"):
                self.err(
                    (*path, "test"),
                    'a healthcheck test list must start with "CMD", "CMD-SHELL" or "NONE"',
                    'e.g. ["CMD", "wget", "-qO-", "http://127.0.0.1:8080/up"]',
                )
            elif test_t[0] != "NONE" and len(test_t) < 2:
                self.err((*path, "test"), f'"{test_t[0]}" needs a command after it')
        retries = raw.get("retries")
        disable = raw.get("disable") is True or (test_t is not None and test_t[:1] == ("NONE",))
        return Healthcheck(
            test=None if disable else test_t,
            interval=self.dur((*path, "interval"), raw.get("interval")),
            timeout=self.dur((*path, "timeout"), raw.get("timeout")),
            retries=retries if isinstance(retries, int) else None,
            start_period=self.dur((*path, "start_period"), raw.get("start_period")),
            start_interval=self.dur((*path, "start_interval"), raw.get("start_interval")),
            disable=disable,
        )

    def depends_on(self, raw: Any) -> tuple[tuple[str, str], ...]:
        if isinstance(raw, list):
            return tuple((d, "service_started") for d in raw if isinstance(d, str))
        if isinstance(raw, dict):
            out = []
            for d, spec in raw.items():
                cond = spec.get("condition") if isinstance(spec, dict) else None
                optional = isinstance(spec, dict) and spec.get("required") is False
                if optional and d not in self.service_names:
                    continue  # an optional dependency that is not there (compose skips it too)
                out.append((d, cond if isinstance(cond, str) else "service_started"))
            return tuple(out)
        return ()

    def extra_hosts(self, path: Path, raw: Any) -> tuple[str, ...]:
        out = []
        if isinstance(raw, dict):
            raw = [f"{k}:{v}" for k, v in raw.items() if isinstance(v, str)]
            path = (*path,)
        if isinstance(raw, list):
            for i, item in enumerate(raw):
                if not isinstance(item, str):
                    continue
                cut = re.search(r"[:=]", item)  # the pieces stay pieces of the item as written
                host, sep, ip = (
                    (item[: cut.start()], cut.group(), item[cut.end() :]) if cut else (item, "", "")
                )
                if not host or not sep or not ip:
                    self.err((*path, i), f'"{item}" is not an extra host; expected "HOST:IP"')
                    continue
                if ip != "host-gateway" and not _is_ip(ip):
                    self.err(
                        (*path, i),
                        f'"{ip}" in "{item}" is not an IP address',
                        'write "HOST:IP" with an IPv4/IPv6 address, or "HOST:host-gateway"',
                    )
                    continue
                out.append(f"{host}:{ip}")
        return tuple(out)

    def safety(self, path: Path, raw: dict[str, Any], volumes: tuple[Mount, ...]) -> None:
        def refuse(p: Path, what: str, name: str) -> None:
            if name not in self.allow:
                self.err(
                    p,
                    f"{what} is refused by the safety policy",
                    f'remove it, or add "{name}" to `policy: {{allow: [...]}}` if this app '
                    "really needs it",
                )

        if raw.get("privileged") is True:
            refuse((*path, "privileged"), "privileged: true", "privileged")
        mode = raw.get("network_mode")
        if isinstance(mode, str):
            if mode == "host":
                refuse((*path, "network_mode"), "network_mode: host", "host-network")
            elif mode != "none":
                self.err(
                    (*path, "network_mode"),
                    f'network_mode "{mode}" is not supported yet',
                    "use `networks:` instead",
                )
            if raw.get("networks"):
                self.err(
                    (*path, "network_mode"),
                    "network_mode and networks cannot be used together",
                    "remove one of them",
                )
        for key, name in (("pid", "host-pid"), ("ipc", "host-ipc")):
            value = raw.get(key)
            if not isinstance(value, str):
                continue
            if value == "host":
                refuse((*path, key), f"{key}: host", name)
            elif not (key == "ipc" and value in ("private", "shareable")):
                self.err(
                    (*path, key),
                    f'{key} "{value}" is not supported yet',
                    "remove it" if key == "pid" else "use private or shareable",
                )
        if isinstance(raw.get("cap_add"), list) and raw["cap_add"]:
            refuse((*path, "cap_add"), "cap_add", "cap_add")

    # -- tasks, rollout, registry, gitlab -------------------------------------------------
    def tasks(self, raw: Any, raw_services: Any) -> tuple[Task, ...]:
        out = []
        if not isinstance(raw, dict):
            return ()
        services = list(raw_services) if isinstance(raw_services, dict) else []
        for name, spec in raw.items():
            path = ("tasks", name)
            if not SERVICE_NAME.match(name):
                self.err(path, f'"{name}" is not a valid task name', key=True)
            if not isinstance(spec, dict):
                continue
            svc = spec.get("service")
            if isinstance(svc, str) and svc not in services:
                from deployer.manifest.schema import did_you_mean

                guess = did_you_mean(svc, services)
                self.err(
                    (*path, "service"),
                    f'unknown service "{svc}"',
                    f"did you mean `{guess}`?" if guess else "name one of: " + ", ".join(services),
                )
            cmd = spec.get("command")
            command = self.parsed((*path, "command"), parse.command, cmd) if cmd else None
            if cmd is not None and not command:
                self.err((*path, "command"), "the command is empty")
            when = spec.get("when", "before-deploy")
            timeout = self.dur((*path, "timeout"), spec.get("timeout"))
            if isinstance(svc, str) and command:
                out.append(
                    Task(
                        name=name,
                        service=svc,
                        command=command,
                        when=when if when in ("before-deploy", "after-deploy") else "before-deploy",
                        timeout=timeout if timeout is not None else 600.0,
                    )
                )
        return tuple(out)

    def rollout(self, raw: Any) -> RolloutPolicy:
        if not isinstance(raw, dict):
            return RolloutPolicy()
        d = RolloutPolicy()
        kw: dict[str, Any] = {}
        for key in ("health_timeout", "healthy_after", "drain", "lock_ttl", "batch_pause"):
            if raw.get(key) is not None:
                value = self.dur(("rollout", key), raw[key])
                if value is not None:
                    kw[key] = value
        if raw.get("canary") is not None:
            kw["canary"] = self.dur(("rollout", "canary"), raw["canary"])
        if kw.get("health_timeout") == 0:
            self.err(("rollout", "health_timeout"), "must be more than 0")
        if "lock_ttl" in kw and kw["lock_ttl"] < MIN_LOCK_TTL:
            self.err(
                ("rollout", "lock_ttl"),
                f"must be at least {MIN_LOCK_TTL:.0f}s: a shorter lease expires while it is "
                "being renewed, and two deploys could both hold it",
                'e.g. lock_ttl: "30m" (a running deploy renews it)',
            )
        keep = raw.get("keep_releases")
        if isinstance(keep, int) and not isinstance(keep, bool):
            kw["keep_releases"] = keep
        batch = raw.get("batch")
        if batch is not None and not isinstance(batch, bool):
            text = str(batch)
            m = re.match(r"^(\d+)(%?)$", text)
            if not m or int(m.group(1)) < 1 or (m.group(2) and int(m.group(1)) > 100):
                self.err(
                    ("rollout", "batch"),
                    f'"{text}" is not a batch size',
                    'use a count like 2 or a percentage like "25%"',
                )
            else:
                kw["batch"] = text
        return RolloutPolicy(**{**d.__dict__, **kw})

    def registries(self, raw: Any) -> tuple[RegistryAuth, ...]:
        entries: list[tuple[Path, Any, Any]] = []
        if isinstance(raw, list):
            entries = [
                (("registry", i), e.get("server"), e)
                for i, e in enumerate(raw)
                if isinstance(e, dict)
            ]
        elif isinstance(raw, dict):
            entries = [(("registry", k), k, e) for k, e in raw.items() if isinstance(e, dict)]
        out = []
        seen: set[str] = set()
        for path, server, e in entries:
            user, pw = e.get("username"), e.get("password")
            if not isinstance(server, str) or not isinstance(user, str) or not isinstance(pw, str):
                continue
            if not server or "/" in server.removeprefix("https://").removeprefix("http://"):
                self.err(
                    path,
                    f'"{server}" is not a registry host; expected e.g. '
                    "registry.example.com or registry.example.com:5000",
                )
                continue
            if server in seen:
                self.err(path, f'registry "{server}" is listed twice')
            seen.add(server)
            if not user or not pw:
                self.err(path, "username and password must not be empty (is a variable unset?)")
                continue
            out.append(RegistryAuth(server=server, username=user, password=pw))
        return tuple(out)

    def gitlab(self, raw: Any) -> GitlabPolicy:
        if not isinstance(raw, dict):
            return GitlabPolicy()
        hold = raw.get("hold_label")
        return GitlabPolicy(
            hold_label=hold if isinstance(hold, str) else GitlabPolicy.hold_label,
            require_api=raw.get("require_api") is True,
        )

    def notify(self, raw: Any) -> NotifyPolicy:
        if not isinstance(raw, dict):
            return NotifyPolicy()
        timeout = NotifyPolicy.timeout
        if raw.get("timeout") is not None:
            value = self.dur(("notify", "timeout"), raw["timeout"])
            if value is not None:
                if not 0 < value <= MAX_NOTIFY_TIMEOUT:
                    self.err(
                        ("notify", "timeout"),
                        "must be more than 0 and at most 30s",
                        "a webhook that slow would hold up the job: use 5s or 10s",
                    )
                else:
                    timeout = value
        hooks: list[Webhook] = []
        raw_hooks = raw.get("webhooks")
        for i, hook in enumerate(raw_hooks if isinstance(raw_hooks, list) else []):
            if not isinstance(hook, dict) or not isinstance(hook.get("url"), str):
                continue  # the schema check names it
            url = hook["url"].strip()
            if not url:
                continue  # ${SLACK_WEBHOOK_URL:-} unset in this pipeline: no webhook
            if not re.match(r"^https?://[^/\s]+", url):
                # Never quote the URL: it is a secret.
                self.err(
                    ("notify", "webhooks", i, "url"),
                    "is not an http:// or https:// URL",
                    "set the CI variable to the webhook's full URL",
                )
                continue
            fmt = hook.get("format", "json")
            on = hook.get("on")
            hooks.append(
                Webhook(
                    url=url,
                    format=fmt if isinstance(fmt, str) else "json",
                    on=tuple(on) if isinstance(on, list) else Webhook.on,
                )
            )
        return NotifyPolicy(timeout=timeout, webhooks=tuple(hooks))

    # -- checks across services -----------------------------------------------------------
    def cross_checks(self, services: list[Service], raw_services: Any) -> None:  # noqa: C901, PLR0912 (flat list of checks)
        if not isinstance(raw_services, dict):
            return
        names = list(raw_services)
        graph: dict[str, list[str]] = {}
        for name, raw in raw_services.items():
            if not isinstance(raw, dict):
                continue
            deps = self.depends_on(raw.get("depends_on"))
            graph[name] = []
            for i, (dep, _) in enumerate(deps):
                p: Path = ("services", name, "depends_on")
                p = (*p, i) if isinstance(raw.get("depends_on"), list) else (*p, dep)
                key = isinstance(raw.get("depends_on"), dict)
                if dep == name:
                    self.err(p, f'service "{name}" depends on itself', "remove it", key=key)
                elif dep not in raw_services:
                    from deployer.manifest.schema import did_you_mean

                    guess = did_you_mean(dep, names)
                    self.err(
                        p,
                        f'unknown service "{dep}"',
                        f"did you mean `{guess}`?" if guess else "name one of: " + ", ".join(names),
                        key=key,
                    )
                else:
                    graph[name].append(dep)
        for cycle in _cycles(graph):
            self.err(
                ("services", cycle[0], "depends_on"),
                "depends_on forms a cycle: " + " -> ".join([*cycle, cycle[0]]),
                "remove one of these dependencies",
            )
        # names: one DNS name on the networks, so `web` and `WEB` would split the traffic
        by_dns: dict[str, str] = {}
        for name in names:
            if not isinstance(name, str):
                continue
            dns = name.lower().rstrip(".")
            if dns in by_dns:
                self.err(
                    ("services", name),
                    f'service "{name}" has the same DNS name as service "{by_dns[dns]}" '
                    "(names are not case-sensitive on the network)",
                    "rename one of them",
                    key=True,
                )
            else:
                by_dns[dns] = name
        # host ports: every service runs on every host of the environment
        taken: dict[tuple[int, str], tuple[str, str]] = {}
        for svc in services:
            raw = raw_services.get(svc.name)
            for port in svc.fixed_host_ports:
                assert port.published is not None
                slot = (port.published, port.protocol)
                ip = port.host_ip or "0.0.0.0"
                other = taken.get(slot)
                if other and (other[1] in ("0.0.0.0", "::", ip) or ip in ("0.0.0.0", "::")):
                    self.err(
                        ("services", svc.name, "ports"),
                        f"host port {port.published}/{port.protocol} is already published by "
                        f'service "{other[0]}" on the same hosts',
                        "use another host port, or publish only the container port",
                    )
                else:
                    taken[slot] = (svc.name, ip)
            if svc.fixed_host_ports and isinstance(raw, dict):
                ports = ", ".join(str(p.published) for p in svc.fixed_host_ports)
                if svc.replicas > 1:
                    self.err(
                        ("services", svc.name, "deploy", "replicas"),
                        f"{svc.replicas} replicas cannot all publish the fixed host port "
                        f"{ports} on one host",
                        'publish only the container port (e.g. "8080") behind a proxy, '
                        "or use replicas: 1",
                    )
                if svc.update_config.order == "start-first":
                    self.err(
                        ("services", svc.name, "deploy", "update_config", "order"),
                        f"start-first cannot work with the fixed host port {ports}: the new "
                        "container cannot bind it while the old one runs",
                        "use order: stop-first, or publish only the container port",
                    )


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Each cycle of the dependency graph once (Tarjan-free: DFS with a stack)."""
    found: list[list[str]] = []
    seen_sets: set[frozenset[str]] = set()
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :]
                key = frozenset(cycle)
                if key not in seen_sets:
                    seen_sets.add(key)
                    found.append(cycle)
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])
    return found


def _is_net(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


_HOSTNAME = re.compile(
    r"^(\*\.)?([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)*[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}"
    r"[a-zA-Z0-9])?$"
)


def _listen_problem(text: str) -> bool:
    """True when ``text`` is not "IP:PORT" (IPv6 in brackets)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        return True
    return not _is_ip(host.strip("[]"))


def _port_int(value: Any) -> int:
    text = str(value)
    if isinstance(value, bool) or not text.isdigit() or not 0 < int(text) <= 65535:
        raise ValueError(f'"{text}" is not a port number (1-65535)')
    return int(text)


def _host_problem(host: str) -> tuple[str, str] | None:
    fix = "use unix:///var/run/docker.sock, tcp://host:2376 or ssh://user@host[:port]"
    scheme, sep, rest = host.partition("://")
    if not sep or scheme not in ("unix", "tcp", "ssh"):
        return f'"{host}" is not a Docker host URL', fix
    if scheme == "unix" and not rest.startswith("/"):
        return f'"{host}" needs an absolute socket path', fix
    if scheme in ("tcp", "ssh"):
        hostport = rest.rsplit("@", 1)[-1].rstrip("/")
        name, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
        if not name or (port and not port.isdigit()) or "/" in hostport:
            return f'"{host}" is not a Docker host URL', fix
        if port and not 0 < int(port) <= 65535:
            return f'"{host}": the port {port} is not a port number (1-65535)', fix
    return None


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).strip("-_.")
    return s


def _scalar_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
