"""The top level: ``volumes:``, ``networks:`` and the chosen environment (hosts, url,
variables, engine, edge proxy)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from deployer.manifest import parse, policy
from deployer.manifest.model import EdgeProxy, Environment, TopNetwork, TopVolume, host_form
from deployer.manifest.problems import Path
from deployer.manifest.readers import routes, security
from deployer.manifest.readers.values import (
    ENV_NAME,
    ENV_NAME_MAX,
    SERVICE_NAME,
    host_problem,
    is_ip,
    is_net,
    listen_problem,
    mapping,
    scalar_text,
    slug,
    str_or_none,
)

if TYPE_CHECKING:
    from deployer.manifest.readers.core import Builder


def volumes(b: Builder, raw: Any) -> tuple[TopVolume, ...]:
    out = []
    if isinstance(raw, dict):
        for name, spec in raw.items():
            path = ("volumes", name)
            if not parse.VOLUME_NAME.match(name):
                b.err(path, f'"{name}" is not a valid volume name', key=True)
            b.volumes_declared.add(name)
            sp = spec if isinstance(spec, dict) else {}
            external, engine_name = external_name(b, path, sp)
            driver_opts = b.pairs((*path, "driver_opts"), sp.get("driver_opts"))
            if not external:
                volume_policy(b, path, str_or_none(sp.get("driver")), dict(driver_opts))
            out.append(
                TopVolume(
                    name=name,
                    external=external,
                    driver=str_or_none(sp.get("driver")),
                    labels=b.labels((*path, "labels"), sp.get("labels")),
                    engine_name=engine_name,
                    driver_opts=driver_opts,
                )
            )
    return tuple(out)


def volume_policy(b: Builder, path: Path, driver: str | None, opts: dict[str, str]) -> None:
    """A named volume whose ``driver_opts`` mount a path of the host (``o: bind`` with
    ``device: /var/run``, an overlay of ``/``, a device of the host) is judged as a bind
    mount of that path: the same policy, the same ``policy.allow`` entries."""
    for source, read_only in policy.volume_host_paths(driver, opts):
        missing = [
            (name, why)
            for name, why in policy.needs(source, read_only=read_only)
            if name not in b.allow
        ]
        if not missing:
            continue
        written = b.written((*path, "driver_opts"))
        variable = isinstance(written, dict) and any("$" in str(v) for v in written.values())
        # as written when a variable gives it: an interpolated value is never shown
        shown = "a path given by a variable" if variable else f'"{source}"'
        reasons = "; ".join(why for _, why in missing)
        names = " and ".join(f'"{name}"' for name, _ in missing)
        b.err(
            (*path, "driver_opts"),
            f'volume "{path[-1]}" mounts {shown} of the host through its driver_opts, '
            f"as a bind mount would; it is refused by the safety policy: {reasons}",
            f"remove it, or add {names} to `policy: {{allow: [...]}}` if this app really needs it",
        )
        return


def networks(b: Builder, raw: Any) -> tuple[TopNetwork, ...]:
    out = []
    if isinstance(raw, dict):
        for name, spec in raw.items():
            path = ("networks", name)
            if not parse.VOLUME_NAME.match(name):
                b.err(path, f'"{name}" is not a valid network name', key=True)
            b.networks_declared.add(name)
            sp = spec if isinstance(spec, dict) else {}
            external, engine_name = external_name(b, path, sp)
            if engine_name or external:
                b.network_engine_names[name] = engine_name or name
            security.network_engine_name(
                b, path, engine_name or (name if external else None), name_key(path, sp)
            )
            driver_opts = b.pairs((*path, "driver_opts"), sp.get("driver_opts"))
            lan_network(b, path, str_or_none(sp.get("driver")), dict(driver_opts))
            ipam = mapping(sp, "ipam")
            subnets = ipam_subnets(b, (*path, "ipam", "config"), ipam.get("config"))
            b.subnets[name] = subnets
            out.append(
                TopNetwork(
                    name=name,
                    external=external,
                    driver=str_or_none(sp.get("driver")),
                    internal=sp.get("internal") is True,
                    labels=b.labels((*path, "labels"), sp.get("labels")),
                    engine_name=engine_name,
                    ipam_driver=str_or_none(ipam.get("driver")),
                    subnets=tuple(subnets),
                    enable_ipv6=sp.get("enable_ipv6") is True,
                    attachable=sp.get("attachable") is True,
                    driver_opts=driver_opts,
                )
            )
    return tuple(out)


def lan_network(b: Builder, path: Path, driver: str | None, opts: dict[str, str]) -> None:
    """A macvlan or ipvlan network puts the app's containers on the host's LAN, and so do
    a bridge network's options that take a host interface or open the containers to the
    machines the host routes for (``policy.bridge_options``): each needs
    ``policy.allow: [host-lan]`` (an ``external`` one is judged as it is on each host)."""
    if policy.HOST_LAN in b.allow:
        return
    fix = (
        f'remove it, or add "{policy.HOST_LAN}" to `policy: {{allow: [...]}}` if this app '
        "really needs it"
    )
    why = policy.lan_driver(driver, opts)
    if why:
        b.err(
            (*path, "driver"), f'network "{path[-1]}" is refused by the safety policy: {why}', fix
        )
    for option, reason in policy.bridge_options(driver, opts):
        b.err(
            (*path, "driver_opts", option),
            f'network "{path[-1]}" is refused by the safety policy: {reason}',
            fix,
        )


def ipam_subnets(b: Builder, path: Path, raw: Any) -> list[tuple[str, str, str]]:
    """``ipam.config``: (subnet, gateway, ip_range) of each entry."""
    subnets = []
    for i, cfg in enumerate(raw if isinstance(raw, list) else []):  # else: the schema's
        if not isinstance(cfg, dict):
            continue
        cp = (*path, i)
        subnet = cfg.get("subnet")
        if not isinstance(subnet, str) or not is_net(subnet):
            b.err((*cp, "subnet"), f'"{subnet}" is not a subnet (CIDR)')
            continue
        gateway, ip_range = cfg.get("gateway", ""), cfg.get("ip_range", "")
        if gateway and not (isinstance(gateway, str) and is_ip(gateway)):
            b.err((*cp, "gateway"), f'"{gateway}" is not an IP address')
        if ip_range and not (isinstance(ip_range, str) and is_net(ip_range)):
            b.err((*cp, "ip_range"), f'"{ip_range}" is not a subnet (CIDR)')
        subnets.append((subnet, str(gateway or ""), str(ip_range or "")))
    return subnets


def name_key(path: Path, sp: dict[str, Any]) -> Path:
    """Where a top-level network or volume gives its engine name: ``name:``,
    ``external.name``, else its key."""
    if "name" in sp:
        return (*path, "name")
    ext = sp.get("external")
    if isinstance(ext, dict) and "name" in ext:
        return (*path, "external", "name")
    return path


def external_name(b: Builder, path: Path, sp: dict[str, Any]) -> tuple[bool, str | None]:
    """(external, the engine's name) from `external: true|{name}` and `name:`."""
    ext = sp.get("external")
    name = str_or_none(sp.get("name"))
    if isinstance(ext, dict):
        legacy = str_or_none(ext.get("name"))
        if name and legacy and name != legacy:
            b.err((*path, "external", "name"), "external.name and name differ")
        return True, name or legacy
    return ext is True, name


def environment(b: Builder, data: dict[str, Any], env_name: str) -> Environment | None:
    envs = data.get("environments")
    if not isinstance(envs, dict) or not isinstance(envs.get(env_name), dict):
        return None
    raw = envs[env_name]
    path: Path = ("environments", env_name)
    environment_name(b, path, envs, env_name)
    hosts: list[str] = []
    if isinstance(raw.get("hosts"), list):
        for i, host in enumerate(raw["hosts"]):
            if isinstance(host, str):
                problem = host_problem(host)
                if problem:
                    b.err((*path, "hosts", i), problem[0], problem[1])
                elif host in hosts:
                    b.err((*path, "hosts", i), f'host "{host}" is listed twice')
                hosts.append(host)
    url = raw.get("url")
    if isinstance(url, str) and not re.match(r"^https?://[^\s/]+", url):
        b.err((*path, "url"), f'"{url}" is not an http(s) URL', "write https://host/...")
    variables = raw.get("variables")
    var_pairs: tuple[tuple[str, str], ...] = ()
    if isinstance(variables, dict):
        var_pairs = tuple((k, scalar_text(v)) for k, v in variables.items())
    engine = raw.get("engine", "container")
    proxy = edge_proxy(b, (*path, "proxy"), raw.get("proxy"))
    return Environment(
        name=env_name,
        hosts=tuple(hosts),
        url=url if isinstance(url, str) else None,
        variables=var_pairs,
        engine=engine if engine in ("container", "swarm") else "container",
        allow_insecure_tcp=raw.get("allow_insecure_tcp") is True,
        proxy=proxy,
    )


def environment_name(b: Builder, path: Path, envs: dict[str, Any], env_name: str) -> None:
    if not ENV_NAME.match(env_name) or len(env_name) > ENV_NAME_MAX:
        b.err(
            path,
            f'"{env_name}" is not a valid environment name: it becomes part of container, '
            "network and volume names on the hosts",
            f"use letters, digits and _ . - (at most {ENV_NAME_MAX}), optionally one "
            "`/` as in review/<slug>" + (f', e.g. "{slug(env_name)}"' if slug(env_name) else ""),
            key=True,
        )
    for other in envs:
        if (
            other != env_name
            and isinstance(other, str)
            and (host_form(other).lower() == host_form(env_name).lower())
        ):
            b.err(
                path,
                f'environments "{env_name}" and "{other}" would share one name on the '
                f'hosts ("{host_form(env_name)}")',
                "rename one of them",
                key=True,
            )


def edge_proxy(b: Builder, path: Path, raw: Any) -> EdgeProxy | None:
    """``environments.<env>.proxy``: the edge proxy's listeners, image and timeouts."""
    if not isinstance(raw, dict):
        return None
    base = EdgeProxy()
    http = raw.get("http", base.http)
    https = raw.get("https", base.https)
    for key, value in (("http", http), ("https", https)):
        if key == "https" and value in (None, False, ""):
            continue
        if not isinstance(value, str) or listen_problem(value):
            b.err(
                (*path, key),
                f'"{value}" is not a listen address',
                'write "IP:PORT", e.g. "0.0.0.0:80"'
                + (" (or false for no TLS listener)" if key == "https" else ""),
            )
    if isinstance(http, str) and isinstance(https, str) and http == https:
        b.err((*path, "https"), f'"{https}" is the http address too', "use another port")
    image = raw.get("image", base.image)
    name = raw.get("name", base.name)
    if isinstance(name, str) and not SERVICE_NAME.match(name):
        b.err((*path, "name"), f'"{name}" is not a valid container name')
    drain = b.dur((*path, "drain_timeout"), raw.get("drain_timeout"))
    acme = mapping(raw, "acme")
    directory = acme.get("directory")
    ca_root = acme.get("ca_root")
    if isinstance(directory, str) and not directory.startswith("https://"):
        b.err(
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
        acme_directory=str_or_none(directory),
        acme_email=str_or_none(acme.get("email")),
        acme_ca_root=(
            routes.pem_file(b, (*path, "acme", "ca_root"), ca_root)
            if isinstance(ca_root, str) and ca_root
            else None
        ),
    )
