"""One service: its image (or ``build:``), then a table of key readers in the file's order.

Each reader takes the service's raw mapping and puts the ``Service`` fields it reads into
``out``; a key the service does not set is left out, so the field keeps its default.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from deployer.manifest import parse
from deployer.manifest import repofiles as R
from deployer.manifest.model import Build, Logging, Service
from deployer.manifest.problems import Path
from deployer.manifest.readers import (
    checks,
    compose_keys,
    deploy,
    environment,
    network,
    routes,
    security,
    volumes,
)
from deployer.manifest.readers.values import (
    CONTAINER_NAME,
    EXPOSE,
    PULL_POLICY,
    RESTART,
    SERVICE_NAME,
    SIGNAL,
    scalar_text,
    str_or_none,
)

if TYPE_CHECKING:
    from deployer.manifest.readers.core import Builder

Reader = Callable[["Builder", Path, dict[str, Any], dict[str, Any]], None]


def service(b: Builder, name: str, raw: Any) -> Service | None:
    path: Path = ("services", name)
    if not SERVICE_NAME.match(name):
        b.err(
            path,
            f'"{name}" is not a valid service name; expected letters, digits and _ . -',
            key=True,
        )
    if not isinstance(raw, dict):
        if raw is None:
            b.err(path, "the service is empty", "add at least `image:`")
        return None
    before = len(b.problems)
    build, image = image_and_build(b, path, name, raw)
    out: dict[str, Any] = {}
    for reader in READERS:
        reader(b, path, raw, out)
    if len(b.problems) != before or not isinstance(image, str):
        return None
    return Service(name=name, image=image, build=build, **out)


def image_and_build(
    b: Builder, path: Path, name: str, raw: dict[str, Any]
) -> tuple[Build | None, Any]:
    """The ``build:`` section and the image to deploy (``image:``, else the convention)."""
    before = len(b.problems)
    image = raw.get("image")
    repo = b.repo or R.RepoFiles(base=os.path.dirname(os.path.abspath(b.doc.file)))
    build, built_image = R.build_section(b, path, name, raw, repo.base)
    if image is None and built_image is not None:
        image = built_image
    elif image is None and build is None and len(b.problems) == before:
        b.err(path, "missing required key `image`", "add `image: registry/repo:tag`")
    elif isinstance(image, str) and not (build is not None and build.image_defaulted):
        image_tag(b, (*path, "image"), image)
    return build, image


def image_tag(b: Builder, p: Path, image: str) -> None:
    parsed = b.parsed(p, parse.image, image)
    if parsed is None:
        return
    tag, digest = parsed
    if digest is None and tag is None:
        b.warn(
            p,
            f'"{image}" has no tag, so "latest" is deployed: which version runs '
            "depends on when it was pushed",
            "pin a tag, e.g. :${CI_COMMIT_SHORT_SHA}",
        )
    elif digest is None and tag == "latest":
        b.warn(
            p,
            f'"{image}" uses the tag "latest": which version runs depends on when it was pushed',
            "pin a tag, e.g. :${CI_COMMIT_SHORT_SHA}",
        )


# -- the key readers, in the order of the problems they report ---------------------------
def read_environment(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    out["environment"] = environment.service_environment(b, path, raw)


def read_ports(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    out["ports"] = network.ports(b, (*path, "ports"), raw.get("ports"))


def read_volumes(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    """``volumes:`` (named, absolute binds, tmpfs; relative binds become files or data),
    ``configs:`` and ``secrets:``."""
    b.service_files = []
    out["volumes"] = volumes.mounts(b, (*path, "volumes"), raw.get("volumes"))
    files = list(b.service_files)
    repo = b.repo or R.RepoFiles(base=os.path.dirname(os.path.abspath(b.doc.file)))
    files += repo.refs(b, (*path, "configs"), "config", raw.get("configs"))
    files += repo.refs(b, (*path, "secrets"), "secret", raw.get("secrets"))
    # two configs (or secrets) at one target are one, the last written, in the place of the
    # first, as compose keeps them
    out["files"] = tuple({(f.kind, f.target): f for f in files}.values())


def read_networks(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    out["networks"] = network.networks(b, (*path, "networks"), raw.get("networks"))
    network.one_mac(b, (*path, "networks"), raw.get("mac_address"), out["networks"])


def read_deploy(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    spec = deploy.section(raw)
    scale = raw.get("scale")
    if isinstance(scale, int) and not isinstance(scale, bool):  # compose's older replicas
        if spec.get("replicas", scale) != scale:
            b.err(
                (*path, "scale"),
                f"scale {scale} and deploy.replicas {spec['replicas']} differ",
                "write one of them (deploy.replicas)",
            )
        spec = {**spec, "replicas": scale}
    replicas, cpus, memory, update = deploy.basics(b, (*path, "deploy"), spec)
    out.update(replicas=replicas, cpus=cpus, memory=memory, update_config=update)


def read_healthcheck(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    out["healthcheck"] = checks.healthcheck(b, (*path, "healthcheck"), raw.get("healthcheck"))
    out["depends_on"] = checks.depends_on(b, raw.get("depends_on"))
    restart = checks.depends_restart(raw.get("depends_on"), out["depends_on"])
    if restart:
        out["depends_restart"] = restart


def read_restart(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    restart = raw.get("restart")
    if isinstance(restart, str) and not RESTART.match(restart):
        b.err(
            (*path, "restart"),
            f'"{restart}" is not a restart policy',
            "use no, always, on-failure[:N] or unless-stopped",
        )
    out["restart"] = str_or_none(restart)
    stop_signal = raw.get("stop_signal")
    if isinstance(stop_signal, str) and not SIGNAL.match(stop_signal):
        b.err((*path, "stop_signal"), f'"{stop_signal}" is not a signal', "e.g. SIGTERM")
    out["stop_signal"] = str_or_none(stop_signal)


def read_tmpfs(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    tmpfs = raw.get("tmpfs")
    tmpfs_list = [tmpfs] if isinstance(tmpfs, str) else tmpfs if isinstance(tmpfs, list) else []
    for i, t in enumerate(tmpfs_list):
        if isinstance(t, str) and not t.startswith("/"):
            p = (*path, "tmpfs") if isinstance(tmpfs, str) else (*path, "tmpfs", i)
            b.err(p, f'"{t}" is not an absolute path inside the container')
    out["tmpfs"] = tuple(dict.fromkeys(t for t in tmpfs_list if isinstance(t, str)))


def read_extra_hosts(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    out["extra_hosts"] = network.extra_hosts(b, (*path, "extra_hosts"), raw.get("extra_hosts"))


def read_logging(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    logging = raw.get("logging")
    if isinstance(logging, dict):
        opts: dict[str, Any] = (
            logging["options"] if isinstance(logging.get("options"), dict) else {}
        )
        out["logging"] = Logging(
            driver=str_or_none(logging.get("driver")),
            options=tuple((k, scalar_text(v)) for k, v in opts.items()),
        )


def read_labels(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    """``label_file:`` then ``labels:``, which win, as compose merges them."""
    labels = b.labels((*path, "labels"), raw.get("labels"))
    if raw.get("label_file") is not None:
        read = environment.label_files(b, path, raw.get("label_file"))
        from_files = b.labels((*path, "label_file"), read)
        labels = tuple(sorted({**dict(from_files), **dict(labels)}.items()))
    out["labels"] = labels


def read_safety(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    security.safety(b, path, raw)
    cap_add: list[Any] = raw["cap_add"] if isinstance(raw.get("cap_add"), list) else []
    out.update(
        privileged=raw.get("privileged") is True,
        network_mode=str_or_none(raw.get("network_mode")),
        pid=str_or_none(raw.get("pid")),
        ipc=str_or_none(raw.get("ipc")),
        cap_add=tuple(dict.fromkeys(c for c in cap_add if isinstance(c, str))),
    )


def read_volumes_from(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    """``volumes_from: [SERVICE[:ro|rw], container:NAME[:ro|rw]]``: every mount of that
    service's container (its volumes, the image's anonymous ones included) or of a
    container the host runs; the service starts after it, as compose orders them."""
    items = raw.get("volumes_from")
    entries: list[str] = []
    for i, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, str):
            continue
        p = (*path, "volumes_from", i)
        kind, name, mode = parse.volumes_from(item)
        mode = mode or "rw"
        if mode not in ("ro", "rw"):
            b.err(p, f'"{item}": the mode "{mode}" is not ro or rw', "write NAME[:ro] or NAME:rw")
        elif kind == "service" and name == path[-1]:
            b.err(p, f'service "{name}" takes the volumes of itself', "remove it")
        elif kind == "service" and name not in b.service_names:
            b.err(
                p,
                f'"{item}" names the service "{name}", which is not defined',
                f'name one of: {", ".join(sorted(b.service_names))}, or "container:NAME"',
            )
        elif not name:
            b.err(p, f'"{item}" names no container', "write container:NAME")
        else:
            entries.append(f"{kind}:{name}:{mode}")
    if entries:
        out["volumes_from"] = tuple(entries)


# The lists compose refuses with two equal entries ("items at 0 and 1 are equal"), once its
# files are merged: an override's entry equal to the base's too (extra_hosts and networks
# written as lists, within one file: their files merge as mappings)
UNIQUE = ("security_opt", "group_add", "volumes_from", "device_cgroup_rules")
UNIQUE_IN_A_FILE = ("extra_hosts", "networks")


def read_unique(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    for key in (*UNIQUE, *UNIQUE_IN_A_FILE):
        items = raw.get(key)
        if not isinstance(items, list):
            continue
        for j, item in enumerate(items):
            first = items.index(item)
            if first < j:
                at = b.doc.pos((*path, key, first))
                shown = b.doc.shown((*path, key, first))[-1]  # its index in its own file
                b.err(
                    (*path, key, j),
                    f'"{item}" is written twice (here and as {key}[{shown}] at '
                    f"{os.path.basename(at.file)}:{at.line}): docker compose refuses equal "
                    "entries here",
                    "remove one",
                )


def read_links(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    """``links: [SERVICE[:ALIAS]]``: the linked services start first, and this one restarts
    when a deploy replaces them (compose makes a link such a dependency); the aliases are
    added to the linked service's containers afterwards (``network.link_aliases``)."""
    links = raw.get("links")
    targets = []
    for i, item in enumerate(links if isinstance(links, list) else []):
        if not isinstance(item, str):
            continue
        target, _, alias = item.partition(":")
        if target == path[-1]:
            b.err((*path, "links", i), f'service "{target}" links to itself', "remove it")
        elif target not in b.service_names:
            b.err(
                (*path, "links", i),
                f'"{item}" links to the service "{target}", which is not defined',
                "name one of: " + ", ".join(sorted(b.service_names)),
            )
        elif alias and not SERVICE_NAME.match(alias):
            b.err((*path, "links", i), f'"{alias}" is not a valid alias (a host name)')
        elif target not in targets:
            targets.append(target)
    bridge = _default_bridge(b, raw) if targets else None
    if bridge:
        # the engine makes links there itself, to the linked container of the moment:
        # a replaced container of the linked service would leave this one unlinked
        b.err(
            (*path, "links"),
            f"links with {bridge} are the engine's legacy links, which the deployer does "
            "not make (it gives links as aliases on the app's networks)",
            "put the services on a network of the app instead (remove `network_mode: "
            "bridge`: compose's default network reaches each service by its name and alias)",
            key=True,
        )
    if targets:
        out["links"] = tuple(targets)
        # as compose: a link is a dependency that restarts with the linked service
        out["depends_restart"] = tuple(dict.fromkeys((*out.get("depends_restart", ()), *targets)))


def read_external_links(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    """``external_links: [CONTAINER[:ALIAS]]``: containers outside the app, given to the
    engine as compose gives them (each endpoint's Links: on the app's networks the alias
    resolves to the container when it is on that network too). On the default bridge
    (``network_mode: bridge``) a link is a legacy one: the engine copies the linked
    container's environment (``ALIAS_ENV_*``, its secrets) into this one, so it needs
    ``policy.allow: [foreign-container]``."""
    items = raw.get("external_links")
    if not isinstance(items, list) or not items:
        return
    kept: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            continue
        parts = item.split(":")
        name, alias = parts[0], parts[-1]
        if len(parts) > 2 or not CONTAINER_NAME.match(name) or not SERVICE_NAME.match(alias):
            b.err(
                (*path, "external_links", i),
                f'"{item}" is not an external link',
                "write CONTAINER or CONTAINER:ALIAS (letters, digits and _ . -)",
            )
            continue
        link = f"{name}:{alias}"
        if link not in kept:
            kept.append(link)
    bridge = _default_bridge(b, raw)
    if kept and bridge and "foreign-container" not in b.allow:
        b.err(
            (*path, "external_links"),
            f"external_links with {bridge} are the engine's legacy links: it "
            "copies the environment of each linked container (its secrets) into this "
            "one's; they are refused by the safety policy",
            "put the service and the container on a shared network (external: true) "
            'instead, or add "foreign-container" to `policy: {allow: [...]}` if this app '
            "really needs it",
            key=True,
        )
    out["external_links"] = tuple(kept)


def _default_bridge(b: Builder, raw: dict[str, Any]) -> str | None:
    """How the service joins the engine's default bridge (where links are legacy ones),
    None when it does not: ``network_mode: bridge``, or a network of ``networks:`` (the
    implicit ``default`` too) whose engine name is ``bridge`` (``name: bridge``, an
    external ``bridge``)."""
    mode = raw.get("network_mode")
    if mode == "bridge":
        return "network_mode: bridge"
    if mode is not None:
        return None
    joined = raw.get("networks")
    names = list(joined) if isinstance(joined, (list, dict)) else []
    for name in names or ["default"]:
        if isinstance(name, str) and b.network_engine_names.get(name) == "bridge":
            return f'the network "{name}", the engine\'s default bridge ("bridge")'
    return None


def read_proxy(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    out["proxy"] = routes.route(b, path, raw)


def read_compose_keys(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    """The keys added after the first release; mem_limit, cpus and deploy.restart_policy
    take the place of deploy's limits and of ``restart:``, as in docker compose."""
    out.update(compose_keys.compose_keys(b, path, raw))


def read_command(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    for key in ("command", "entrypoint"):
        value = raw.get(key)
        if value is not None:
            value = b.parsed((*path, key), parse.command, value)
        out[key] = value
    out["stop_grace_period"] = b.dur((*path, "stop_grace_period"), raw.get("stop_grace_period"))


def read_expose(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    expose: list[Any] = raw["expose"] if isinstance(raw.get("expose"), list) else []
    for i, e in enumerate(expose):
        if isinstance(e, str | int) and not isinstance(e, bool) and not EXPOSE.match(str(e)):
            b.err(
                (*path, "expose", i),
                f'"{e}" is not a port to expose; expected e.g. "8080", "8080/udp" or "8000-8010"',
            )
    out["expose"] = tuple(dict.fromkeys(str(e) for e in expose if isinstance(e, str | int)))


def read_process(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    """working_dir, user, init, read_only and pull_policy."""
    working_dir = raw.get("working_dir")
    if isinstance(working_dir, str) and not working_dir.startswith("/"):
        b.err(
            (*path, "working_dir"),
            f'"{working_dir}" is not an absolute path',
            "start it with / (a path inside the container)",
        )
    user = raw.get("user")
    out.update(
        working_dir=str_or_none(working_dir),
        user=str(user) if isinstance(user, str | int) else None,
        init=raw.get("init") if isinstance(raw.get("init"), bool) else None,
        read_only=raw.get("read_only") is True,
        pull_policy=PULL_POLICY.get(str(raw.get("pull_policy", "always")), "always"),
    )


READERS: tuple[Reader, ...] = (
    read_environment,
    read_ports,
    read_volumes,
    read_networks,
    read_deploy,
    read_healthcheck,
    read_restart,
    read_tmpfs,
    read_extra_hosts,
    read_logging,
    read_labels,
    read_safety,
    read_unique,
    read_links,
    read_external_links,
    read_volumes_from,
    read_proxy,
    read_compose_keys,
    read_command,
    read_expose,
    read_process,
)
