"""A service's healthcheck and depends_on, and the checks across services: the dependency
graph, DNS names, host ports, and what Swarm mode cannot mount."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deployer.manifest import parse
from deployer.manifest.model import Environment, Healthcheck, Service
from deployer.manifest.problems import Path
from deployer.manifest.schema import did_you_mean

if TYPE_CHECKING:
    from deployer.manifest.readers.core import Builder


def healthcheck(b: Builder, path: Path, raw: Any) -> Healthcheck | None:
    if not isinstance(raw, dict):
        return None
    test = raw.get("test")
    test_t: tuple[str, ...] | None = None
    if isinstance(test, str):
        test_t = ("CMD-SHELL", test)
    elif isinstance(test, list):
        test_t = tuple(str(t) for t in test)
        if not test_t or test_t[0] not in ("CMD", "CMD-SHELL", "NONE"):
            b.err(
                (*path, "test"),
                'a healthcheck test list must start with "CMD", "CMD-SHELL" or "NONE"',
                'e.g. ["CMD", "wget", "-qO-", "http://127.0.0.1:8080/up"]',
            )
        elif test_t[0] != "NONE" and len(test_t) < 2:
            b.err((*path, "test"), f'"{test_t[0]}" needs a command after it')
    retries = raw.get("retries")
    disable = raw.get("disable") is True or (test_t is not None and test_t[:1] == ("NONE",))
    return Healthcheck(
        test=None if disable else test_t,
        interval=b.dur((*path, "interval"), raw.get("interval")),
        timeout=b.dur((*path, "timeout"), raw.get("timeout")),
        retries=retries if isinstance(retries, int) else None,
        start_period=b.dur((*path, "start_period"), raw.get("start_period")),
        start_interval=b.dur((*path, "start_interval"), raw.get("start_interval")),
        disable=disable,
    )


def depends_on(b: Builder, raw: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(raw, list):
        return tuple((d, "service_started") for d in raw if isinstance(d, str))
    if isinstance(raw, dict):
        out = []
        for d, spec in raw.items():
            cond = spec.get("condition") if isinstance(spec, dict) else None
            optional = isinstance(spec, dict) and spec.get("required") is False
            if optional and d not in b.service_names:
                continue  # an optional dependency that is not there (compose skips it too)
            out.append((d, cond if isinstance(cond, str) else "service_started"))
        return tuple(out)
    return ()


def depends_restart(raw: Any, kept: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """The dependencies with ``restart: true`` (of those kept: an absent optional one goes)."""
    if not isinstance(raw, dict):
        return ()
    names = {d for d, _ in kept}
    return tuple(
        d
        for d, spec in raw.items()
        if d in names and isinstance(spec, dict) and spec.get("restart") is True
    )


# -- checks across services ---------------------------------------------------------------
def cross_checks(b: Builder, services: list[Service], raw_services: Any) -> None:
    if not isinstance(raw_services, dict):
        return
    dependencies(b, raw_services)
    dns_names(b, list(raw_services))
    host_ports(b, services, raw_services)


def dependencies(b: Builder, raw_services: dict[str, Any]) -> None:
    """depends_on names services that exist, not the service itself, and makes no cycle."""
    names = list(raw_services)
    graph: dict[str, list[str]] = {}
    for name, raw in raw_services.items():
        if not isinstance(raw, dict):
            continue
        graph[name] = []
        for i, (dep, _) in enumerate(depends_on(b, raw.get("depends_on"))):
            p: Path = ("services", name, "depends_on")
            p = (*p, i) if isinstance(raw.get("depends_on"), list) else (*p, dep)
            key = isinstance(raw.get("depends_on"), dict)
            if dep == name:
                b.err(p, f'service "{name}" depends on itself', "remove it", key=key)
            elif dep not in raw_services:
                guess = did_you_mean(dep, names)
                b.err(
                    p,
                    f'unknown service "{dep}"',
                    f"did you mean `{guess}`?" if guess else "name one of: " + ", ".join(names),
                    key=key,
                )
            else:
                graph[name].append(dep)
        links = raw.get("links")
        for item in links if isinstance(links, list) else []:
            target = str(item).partition(":")[0]
            if target in raw_services and target != name and target not in graph[name]:
                graph[name].append(target)  # links start the linked service first too
        sources = raw.get("volumes_from")
        for item in sources if isinstance(sources, list) else []:
            kind, source, _ = parse.volumes_from(str(item))
            if kind == "container":
                continue  # a container of the host, not of the app
            if source in raw_services and source != name and source not in graph[name]:
                graph[name].append(source)  # so does volumes_from
        for ns_key in ("network_mode", "pid", "ipc"):  # and a namespace's service:NAME
            mode = raw.get(ns_key)
            shared = mode.removeprefix("service:") if isinstance(mode, str) else ""
            if mode != shared and shared in raw_services and shared not in (name, *graph[name]):
                graph[name].append(shared)
    for cycle in cycles(graph):
        b.err(
            ("services", cycle[0], "depends_on"),
            "depends_on forms a cycle: " + " -> ".join([*cycle, cycle[0]]),
            "remove one of these dependencies",
        )


def dns_names(b: Builder, names: list[Any]) -> None:
    """One DNS name on the networks: `web` and `WEB` would split the traffic."""
    by_dns: dict[str, str] = {}
    for name in names:
        if not isinstance(name, str):
            continue
        dns = name.lower().rstrip(".")
        if dns in by_dns:
            b.err(
                ("services", name),
                f'service "{name}" has the same DNS name as service "{by_dns[dns]}" '
                "(names are not case-sensitive on the network)",
                "rename one of them",
                key=True,
            )
        else:
            by_dns[dns] = name


def host_ports(b: Builder, services: list[Service], raw_services: dict[str, Any]) -> None:
    """Every service runs on every host of the environment: a fixed host port once. A
    range of host ports is the engine's to share out (a free port of it per container)."""
    taken: dict[tuple[int, str], tuple[str, str]] = {}
    for svc in services:
        for port in svc.fixed_host_ports:
            if port.host_port_count > 1:
                continue
            assert port.published is not None
            slot = (port.published, port.protocol)
            ip = port.host_ip or "0.0.0.0"
            other = taken.get(slot)
            if other and (other[1] in ("0.0.0.0", "::", ip) or ip in ("0.0.0.0", "::")):
                b.err(
                    ("services", svc.name, "ports"),
                    f"host port {port.published}/{port.protocol} is already published by "
                    f'service "{other[0]}" on the same hosts',
                    "use another host port, or publish only the container port",
                )
            else:
                taken[slot] = (svc.name, ip)
        if svc.fixed_host_ports and isinstance(raw_services.get(svc.name), dict):
            fixed_port_rollout(b, svc)


def fixed_port_rollout(b: Builder, svc: Service) -> None:
    """As many containers at once as the narrowest published host port (or range) has
    ports: every replica, and during a start-first update the new ones beside them."""
    fixed = svc.fixed_host_ports
    ports = ", ".join(p.host_port for p in fixed)
    room = min(p.host_port_count for p in fixed)
    if svc.replicas > room:
        if room == 1:
            problem = f"{svc.replicas} replicas cannot all publish the fixed host port {ports}"
            fix = 'publish only the container port (e.g. "8080") behind a proxy, or use '
            fix += "replicas: 1"
        else:
            problem = f"{svc.replicas} replicas need {svc.replicas} host ports, but {ports} "
            problem += f"has {room}"
            fix = "widen the host port range, or use fewer replicas"
        b.err(("services", svc.name, "deploy", "replicas"), f"{problem} on one host", fix)
        return
    par = svc.update_config.parallelism or svc.replicas
    if svc.update_config.order == "start-first" and svc.replicas + min(par, svc.replicas) > room:
        if room == 1:
            problem = f"start-first cannot work with the fixed host port {ports}: the new "
            problem += "container cannot bind it while the old one runs"
            fix = "use order: stop-first, or publish only the container port"
        else:
            problem = f"start-first needs {svc.replicas + min(par, svc.replicas)} host ports "
            problem += f"at once (the old containers and the new ones), but {ports} has {room}"
            fix = "widen the host port range, lower update_config.parallelism, or use "
            fix += "order: stop-first"
        b.err(("services", svc.name, "deploy", "update_config", "order"), problem, fix)


def swarm_directories(b: Builder, environment: Environment, services: list[Service]) -> None:
    """Swarm configs and secrets are single files: no directory from the checkout."""
    if environment.engine != "swarm":
        return
    for svc in services:
        for fm in svc.files:
            if fm.directory:
                b.err(
                    ("services", svc.name),
                    f"service `{svc.name}` mounts the directory {fm.label}: Swarm "
                    "configs and secrets are single files",
                    "mount its files one by one, bake the directory into the image, "
                    "or use engine: container for this environment",
                    key=True,
                )


def cycles(graph: dict[str, list[str]]) -> list[list[str]]:
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
