"""The Builder: problems and warnings with their place in the files, and the manifest's top
level read section by section (each section's readers live in a module of their own)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from deployer.labels import PREFIX as LABEL_PREFIX
from deployer.manifest import parse
from deployer.manifest import repofiles as R
from deployer.manifest.model import FileMount, Manifest, Service, Warning_
from deployer.manifest.problems import Path, Problem
from deployer.manifest.readers import checks, network, pipeline, routes, security, service, top
from deployer.manifest.readers.values import APP_NAME, MAX_DURATION, scalar_text, slug
from deployer.manifest.schema import is_secret
from deployer.manifest.yamlpos import Doc

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
    # the engine's name a top-level network gives itself (``name:``, an external one's)
    network_engine_names: dict[str, str] = field(default_factory=dict)
    allow: set[str] = field(default_factory=set)
    repo: R.RepoFiles | None = None
    service_files: list[FileMount] = field(default_factory=list)
    engine: str = "container"
    service_names: set[str] = field(default_factory=set)
    subnets: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    # the regular files the job's variables name (File-type variables): the only files
    # outside the checkout read into what is deployed (``RepoFiles.job_file``)
    job_files: frozenset[str] = frozenset()

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

    def pairs(self, path: Path, raw: Any) -> tuple[tuple[str, str], ...]:
        """A compose list-or-dict (labels, options) as sorted (key, value) pairs."""
        out: dict[str, str] = {}
        if isinstance(raw, dict):
            for k, v in raw.items():
                out[k] = "" if v is None else scalar_text(v)
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

    def labels(self, path: Path, raw: Any) -> tuple[tuple[str, str], ...]:
        """Labels the manifest writes (of a service, a Swarm service, a volume, a
        network): a label under the deployer's prefix is refused. The deployer knows what
        it owns by those labels (app, environment, role: a volume labelled as a release
        record would be pruned, and removed by ``down`` with its data)."""
        labels = self.pairs(path, raw)
        for k, _ in labels:
            if k.startswith(LABEL_PREFIX):
                self.err(
                    path,
                    f"label `{k}` uses the prefix {LABEL_PREFIX} that the deployer reserves",
                    "rename the label",
                )
        return labels

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

    # -- top level ------------------------------------------------------------------------
    def manifest(self, data: dict[str, Any], env_name: str, file: str) -> Manifest | None:
        app = data.get("app")
        if isinstance(app, str) and not APP_NAME.match(app):
            self.err(
                ("app",),
                f'"{app}" is not a valid app name; expected lowercase letters, digits, '
                "and _ . - (starting with a letter or digit)",
                f'use "{slug(app)}"' if slug(app) else None,
            )
        self.allow = security.policy_allow(data.get("policy"))
        self.repo = R.RepoFiles.read(self, data)
        volumes = top.volumes(self, data.get("volumes"))
        networks = top.networks(self, data.get("networks"))
        environment = top.environment(self, data, env_name)
        if environment is not None:
            self.engine = environment.engine
        services = self.services(data)
        volumes += tuple(
            v for n, v in self.repo.data_volumes.items() if n not in {x.name for x in volumes}
        )
        if environment is not None:
            checks.swarm_directories(self, environment, services)
        raw_services = data.get("services")
        tasks = pipeline.tasks(self, data.get("tasks"), raw_services)
        checks.cross_checks(self, services, raw_services)
        if environment is not None:
            routes.proxy_checks(self, environment, services, env_name)
        rollout = pipeline.rollout(self, data.get("rollout"))
        registries = pipeline.registries(self, data.get("registry"))
        gitlab = pipeline.gitlab(self, data.get("gitlab"))
        notify = pipeline.notify(self, data.get("notify"))
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

    def _refuse_endless_runs(self, out: list[Service], raw: dict[str, Any]) -> None:
        """A service others wait for to complete, whose restart policy starts it again
        each time it exits (``always``, ``unless-stopped``): it never stays completed,
        so the deploy would wait for it until the health timeout and roll back, while
        the engine ran it again and again (a migration in a loop)."""
        for s in out:
            restart = (s.restart or "").strip()
            if not s.completes or restart not in ("always", "unless-stopped"):
                continue
            spec = raw.get(s.name)
            deploy = spec.get("deploy") if isinstance(spec, dict) else None
            at: Path = (
                ("services", s.name, "deploy", "restart_policy", "condition")
                if isinstance(deploy, dict) and isinstance(deploy.get("restart_policy"), dict)
                else ("services", s.name, "restart")
            )
            self.err(
                at,
                f"{s.name} runs once ({', '.join(_waiters(out, s.name))} waits for it to "
                f"complete successfully), but restart {restart} starts it again each time "
                "it exits: it never completes, and would run again and again",
                'use restart: "no" or on-failure, or let the others wait for service_started',
            )

    def _shared_networks(self, out: list[Service]) -> None:
        """``network_mode``, ``pid`` or ``ipc`` ``service:NAME``: NAME runs one container
        (the namespace its dependents join) and has that namespace of its own."""
        by_name = {s.name: s for s in out}
        for s in out:
            for key, name in s.namespaces_joined:
                target = by_name.get(name)
                if target is None:
                    continue
                what = _NAMESPACE_WORD[key]
                at = ("services", s.name, key)
                if target.replicas != 1:
                    self.err(
                        at,
                        f"{s.name} shares the {what} of {target.name}, which runs "
                        f"{target.replicas} replicas: the containers join the {what} of one "
                        "container",
                        f"give {target.name} one replica (deploy.replicas: 1)",
                    )
                chained = dict(target.namespaces_joined).get(key)
                if chained:
                    self.err(
                        at,
                        f"{s.name} shares the {what} of {target.name}, which shares the "
                        f"{what} of {chained} itself",
                        f"write {key}: service:{chained}",
                    )
                if key == "ipc" and target.ipc != "shareable":
                    # compose does not set it: the engine's default (private since Docker
                    # 20.10) refuses the join when the container starts
                    self.err(
                        at,
                        f"{s.name} joins the IPC namespace of {target.name}, which does not "
                        "make it shareable: the engine refuses to start the container "
                        '("non-shareable IPC"), as it does under docker compose',
                        f"add `ipc: shareable` to {target.name}",
                    )

    def services(self, data: dict[str, Any]) -> list[Service]:
        out: list[Service] = []
        raw_services = data.get("services")
        if isinstance(raw_services, dict):
            self.service_names = set(raw_services)
            if not raw_services and "compose" not in data:
                self.err(("services",), "must not be empty", "add at least one service")
            for name, raw in raw_services.items():
                svc = service.service(self, name, raw)
                if svc is not None:
                    out.append(svc)
            out = network.link_aliases(out, raw_services)
            waited = {
                name
                for s in out
                for name, condition in s.depends_on
                if condition == "service_completed_successfully"
            }
            out = [replace(s, completes=True) if s.name in waited else s for s in out]
            self._refuse_endless_runs(out, raw_services)
            out = [_lenders_first(s) for s in out]
            self._shared_networks(out)
            out = [_network_first(s) for s in out]
            lent = {name for s in out for name in _lenders(s)}
            out = [replace(s, lends_volumes=True) if s.name in lent else s for s in out]
        return out


def _waiters(services: list[Service], name: str) -> list[str]:
    return [s.name for s in services if (name, "service_completed_successfully") in s.depends_on]


def _lenders(s: Service) -> list[str]:
    """The services ``s`` takes the volumes of (``volumes_from``)."""
    return [name for kind, name, _ in s.volume_lenders if kind == "service"]


_NAMESPACE_WORD = {"network_mode": "network", "pid": "PID namespace", "ipc": "IPC namespace"}


def _network_first(s: Service) -> Service:
    """A service sharing another's network, PID or IPC namespace depends on it (started
    first) and restarts with it, as compose records it (a ``depends_on`` written for it is
    kept as written)."""
    names = [n for n in s.joins if n not in dict(s.depends_on)]
    if not names:
        return s
    return replace(
        s,
        depends_on=(*s.depends_on, *((n, "service_started") for n in names)),
        depends_restart=tuple(dict.fromkeys((*s.depends_restart, *names))),
    )


def _lenders_first(s: Service) -> Service:
    """A service taking another's volumes depends on it (started first), as compose
    records it."""
    deps = dict(s.depends_on)
    for name in _lenders(s):
        deps.setdefault(name, "service_started")
    return replace(s, depends_on=tuple(deps.items())) if len(deps) > len(s.depends_on) else s
