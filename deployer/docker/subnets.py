"""An explicit ``ipam`` subnet that holds addresses the host already routes elsewhere.

The engine's bridge driver checks a subnet it picks itself against the host's routes, but
creates a network with an explicit subnet as it is: the bridge takes the host's route to
those addresses (measured on engine 20.10: a subnet equal to the host's LAN cut the host
off from that LAN). So before anything of the app changes, each bridge network the deploy
would create with an explicit subnet is checked against what the deployer can know of the
host's networks:

- reached through its unix socket, or at a loopback address, the engine runs where the
  deployer runs: every route of this machine (``/proc/net/route``, ``/proc/net/ipv6_route``;
  a default route aside);
- reached over TCP or SSH at another address: that address (the one the deployer, and
  usually everything else, reaches the host at), resolved as the connection resolved it.

A host's other networks (a second LAN card the deployer does not connect through) are not
visible through the Docker API: docs/guarantees.md says so.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse
from collections.abc import Iterable
from pathlib import Path

import docker

from deployer.docker.infra import networks_used
from deployer.docker.symlinks import _where
from deployer.docker.transport import wrapped
from deployer.errors import InvalidInput
from deployer.manifest.model import Manifest

Net = ipaddress.IPv4Network | ipaddress.IPv6Network

# routes every machine has that no bridge network can take: link-local and multicast
_IGNORED = [ipaddress.ip_network("fe80::/64"), ipaddress.ip_network("ff00::/8")]


def planned(manifest: Manifest) -> list[tuple[str, str, int, Net]]:
    """(engine name, manifest name, ipam.config index, subnet) of each explicit subnet of a
    bridge network the services join (one that exists on a host is joined as it is)."""
    out = []
    for real, t in sorted(networks_used(manifest).items()):
        if t.external or (t.driver or "bridge").strip().lower() != "bridge":
            continue
        for i, (subnet, _, _) in enumerate(t.subnets):
            try:
                out.append((real, t.name, i, ipaddress.ip_network(subnet, strict=False)))
            except ValueError:
                continue  # refused when the manifest was read
    return out


def _hex4(text: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int.from_bytes(bytes.fromhex(text), "little"))


def local_routes(proc: Path = Path("/proc/net")) -> list[tuple[str, Net]]:
    """(interface, destination) of this machine's routes but default ones."""
    out: list[tuple[str, Net]] = []
    try:
        lines = (proc / "route").read_text().splitlines()[1:]
    except OSError:
        lines = []
    for line in lines:
        f = line.split()
        if len(f) < 8:
            continue
        try:
            dest, mask = _hex4(f[1]), _hex4(f[7])
            net = ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)
        except ValueError:
            continue
        if net.prefixlen:
            out.append((f[0], net))
    try:
        lines6 = (proc / "ipv6_route").read_text().splitlines()
    except OSError:
        lines6 = []
    for line in lines6:
        f = line.split()
        if len(f) < 10 or f[9] == "lo":
            continue
        try:
            addr = ipaddress.IPv6Address(int(f[0], 16))
            net6 = ipaddress.IPv6Network(f"{addr}/{int(f[1], 16)}", strict=False)
        except ValueError:
            continue
        if net6.prefixlen and not any(net6.subnet_of(i) for i in _IGNORED):  # type: ignore[arg-type]
            out.append((f[9], net6))
    return out


def url_addresses(url: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses of a tcp:// or ssh:// URL's host (none for unix://, or when the name
    does not resolve here: a jump host may resolve it)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("tcp", "ssh", "http", "https") or not parts.hostname:
        return []
    try:
        return [ipaddress.ip_address(parts.hostname)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(parts.hostname, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    seen: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for info in infos:
        try:
            a = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        except ValueError:
            continue
        if a not in seen:
            seen.append(a)
    return seen


def host_networks(url: str, proc: Path = Path("/proc/net")) -> list[tuple[str, Net]]:
    """(what it is, network) of what the deployer knows the host ``url`` routes."""
    addresses = url_addresses(url)
    if not addresses or any(a.is_loopback for a in addresses):
        # unix socket or loopback: the engine runs on this machine
        return [(f"the route of the host's interface {i}", n) for i, n in local_routes(proc)]
    return [
        (f"the host's own address {a}", ipaddress.ip_network(a))  # a /32 or /128
        for a in addresses
    ]


def overlaps(
    wanted: Iterable[tuple[str, str, int, Net]], known: Iterable[tuple[str, Net]]
) -> list[tuple[str, str, int, Net, str, Net]]:
    known = list(known)
    return [
        (real, name, i, net, what, other)
        for real, name, i, net in wanted
        for what, other in known
        if net.version == other.version and net.overlaps(other)
    ]


def check_subnets(
    manifest: Manifest, api: docker.APIClient, host: str, url: str, proc: Path = Path("/proc/net")
) -> None:
    """Refuse (InvalidInput, exit 2) an explicit subnet of a network the deploy would
    create on ``host`` (reached at ``url``) that overlaps a network the host routes.
    Reads only."""
    wanted = planned(manifest)
    if not wanted:
        return
    with wrapped("look at the networks", host):
        existing = {str(n["Name"]) for n in api.networks()}
    wanted = [w for w in wanted if w[0] not in existing]
    problems = [
        f"{_where(manifest, ('networks', name, 'ipam', 'config', i, 'subnet'))} on {host}, "
        f'the subnet {net} of the network "{real}" overlaps {what} ({other}): the bridge '
        "would take the host's route to those addresses"
        for real, name, i, net, what, other in overlaps(wanted, host_networks(url, proc))
    ]
    if problems:
        raise InvalidInput(
            "\n".join(problems),
            hint="choose a subnet no network of the host uses, or remove `ipam.config` and "
            "let the engine pick a free one",
        )
