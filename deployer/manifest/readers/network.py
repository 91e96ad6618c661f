"""A service's ports, networks (aliases, fixed addresses) and extra hosts."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from deployer.manifest import parse
from deployer.manifest.compose import hosts_of_mapping
from deployer.manifest.model import NetworkAttachment, Port, Service
from deployer.manifest.problems import Path
from deployer.manifest.readers.values import MAC, is_ip, port_int
from deployer.naming import by_priority

if TYPE_CHECKING:
    from deployer.manifest.readers.core import Builder


def ports(b: Builder, path: Path, raw: Any) -> tuple[Port, ...]:
    out: list[Port] = []
    if not isinstance(raw, list):
        return ()
    for i, item in enumerate(raw):
        p = (*path, i)
        if isinstance(item, str | int) and not isinstance(item, bool):
            got = b.parsed(p, parse.port_short, item)
            out.extend(got or ())
        elif isinstance(item, dict):
            port = port_long(b, p, item)
            if port is not None:
                out.append(port)
    # the same port written twice (any spelling: "8080:80", {target: 80, published: 8080})
    # is published once, as compose keeps one of each
    return tuple(dict.fromkeys(out))


def port_long(b: Builder, p: Path, item: dict[str, Any]) -> Port | None:
    target = b.parsed((*p, "target"), port_int, item.get("target"))
    published = item.get("published")
    pub = end = None
    if isinstance(published, str) and "-" in published:  # a range: "8080-8082"
        span = b.parsed((*p, "published"), parse.host_port_range, published)
        if span is not None:
            pub, end = span
    elif published not in (None, ""):
        pub = b.parsed((*p, "published"), port_int, published)
    host_ip = item.get("host_ip", "")
    if host_ip and isinstance(host_ip, str):
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            b.err((*p, "host_ip"), f'"{host_ip}" is not an IP address')
    if target is None:
        return None
    return Port(
        target=target,
        published=pub,
        host_ip=host_ip if isinstance(host_ip, str) else "",
        protocol=str(item.get("protocol", "tcp")),
        published_end=end if end != pub else None,
    )


def networks(b: Builder, path: Path, raw: Any) -> tuple[NetworkAttachment, ...]:
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
        if name != "default" and name not in b.networks_declared:
            b.err(
                p,
                f'network "{name}" is not declared in the top-level `networks:`',
                f"add `networks: {{{name}: {{}}}}` at the top level",
                key=isinstance(raw, dict),
            )
        priority, gw = (sp.get(k, 0) for k in ("priority", "gw_priority"))
        priority, gw = (
            v if isinstance(v, int) and not isinstance(v, bool) else 0 for v in (priority, gw)
        )
        mac = sp.get("mac_address")
        if isinstance(mac, str) and mac and not MAC.match(mac):
            b.err((*p, "mac_address"), f'"{mac}" is not a MAC address')
        out.append(
            NetworkAttachment(
                name=name,
                aliases=aliases,
                priority=priority,
                mac_address=mac.lower() if isinstance(mac, str) and MAC.match(mac) else "",
                gw_priority=gw,
                **addresses(b, p, name, sp),
            )
        )
    return tuple(out)


def one_mac(b: Builder, path: Path, mac: Any, out: tuple[NetworkAttachment, ...]) -> None:
    """The service's ``mac_address`` is its first network's: written on that network too,
    it must be the same (compose refuses two). ``path``: the service's ``networks``."""
    if not out or not isinstance(mac, str):
        return
    first = by_priority(out)[0]
    if first.mac_address and first.mac_address != mac.lower():
        b.err(
            (*path, first.name, "mac_address"),
            f"the service's mac_address {mac} is its MAC address on its first network, "
            f'"{first.name}", where another is written (docker compose refuses the two)',
            "write one of them, or the same address",
        )


def addresses(b: Builder, p: Path, name: str, sp: dict[str, Any]) -> dict[str, str]:
    """``ipv4_address`` / ``ipv6_address``: in a subnet of the network's ``ipam``."""
    out = {}
    for key, version in (("ipv4_address", 4), ("ipv6_address", 6)):
        ip = sp.get(key)
        if not isinstance(ip, str):
            continue
        if not is_ip(ip) or ipaddress.ip_address(ip).version != version:
            b.err((*p, key), f'"{ip}" is not an IPv{version} address')
            continue
        subnets = [ipaddress.ip_network(c[0], strict=False) for c in b.subnets.get(name, ())]
        if not any(ipaddress.ip_address(ip) in net for net in subnets):
            b.err(
                (*p, key),
                f'{ip} is not in a subnet of network "{name}": a fixed address needs '
                "the network's `ipam.config` subnet",
                f"add `networks: {{{name}: {{ipam: {{config: [{{subnet: ...}}]}}}}}}` "
                "at the top level",
            )
            continue
        out[key] = ip
    return out


def extra_hosts(b: Builder, path: Path, raw: Any) -> tuple[str, ...]:
    out = []
    if isinstance(raw, dict):
        raw = hosts_of_mapping(raw)
    if isinstance(raw, list):
        for i, item in enumerate(raw):
            if not isinstance(item, str):
                continue
            cut = re.search(r"[:=]", item)  # the pieces stay pieces of the item as written
            host, sep, ip = (
                (item[: cut.start()], cut.group(), item[cut.end() :]) if cut else (item, "", "")
            )
            if not host or not sep or not ip:
                b.err((*path, i), f'"{item}" is not an extra host; expected "HOST:IP"')
                continue
            if ip != "host-gateway" and not is_ip(ip):
                b.err(
                    (*path, i),
                    f'"{ip}" in "{item}" is not an IP address',
                    'write "HOST:IP" with an IPv4/IPv6 address, or "HOST:host-gateway"',
                )
                continue
            out.append(f"{host}:{ip}")
    return tuple(out)


def link_aliases(services: list[Service], raw_services: dict[str, Any]) -> list[Service]:
    """Each service with the aliases other services link to it by (``links: [db:database]``),
    on the networks both join: containers of the linked service are reachable at the alias,
    as the compose specification says."""
    found: dict[str, set[tuple[str, str]]] = {}
    joined = {s.name: _joined(s) for s in services}
    for svc in services:
        links = raw_services.get(svc.name, {}).get("links") or []
        for item in links if isinstance(links, list) else []:
            target, _, alias = str(item).partition(":")
            if alias and alias != target and target in joined:
                shared = joined[target] & joined[svc.name]
                found.setdefault(target, set()).update((n, alias) for n in shared)
    return [
        replace(s, link_aliases=tuple(sorted(found[s.name]))) if found.get(s.name) else s
        for s in services
    ]


def _joined(svc: Service) -> set[str]:
    if svc.network_mode:
        return set()
    return {a.name for a in svc.networks} or {"default"}
