"""Parsers for the string formats compose uses: durations, sizes, ports, mounts, images.

Each raises ``ValueError`` with a message that says what was expected.
"""

from __future__ import annotations

import ipaddress
import math
import posixpath
import re
import shlex

from deployer.manifest import policy
from deployer.manifest.model import Mount, Port

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_HELP = "expected a duration like 30s, 1m30s, 500ms or 2h"


def duration(value: object) -> float:
    """``"1m30s"`` -> 90.0 seconds. Numbers are seconds."""
    if isinstance(value, bool):
        raise ValueError(_DURATION_HELP)
    if isinstance(value, int | float):
        if value < 0 or math.isnan(value) or math.isinf(value):
            raise ValueError(f"{value} is not a duration; {_DURATION_HELP}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(_DURATION_HELP)
    text = value.strip()
    if text == "0":
        return 0.0
    pos = 0
    total = 0.0
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f'"{value}" is not a duration; {_DURATION_HELP}')
    return total


_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)(b?)$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def size(value: object) -> int:
    """``"512m"`` -> 536870912 bytes (binary units, as docker does). Integers are bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size like 512m or 1g")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is not a size; expected a size like 512m or 1g")
        return value
    if isinstance(value, str):
        m = _SIZE.match(value.strip())
        if m:
            return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])
    raise ValueError(f'"{value}" is not a size; expected a size like 512m, 1g or 100k')


def cpus(value: object) -> float:
    """A CPU count; 0 is accepted and means no limit, as compose reads it (callers drop it)."""
    try:
        if isinstance(value, bool):
            raise ValueError
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f'"{value}" is not a CPU count; expected a number like 0.5 or 2') from None
    if not 0 <= result < 10_000:
        raise ValueError(f"{value} is not a CPU count; expected 0 (no limit) or more")
    return result


def command(value: object) -> tuple[str, ...]:
    """A compose command: a list, or a string split like a POSIX shell would."""
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    try:
        return tuple(shlex.split(str(value)))
    except ValueError as e:
        raise ValueError(f"cannot split the command like a shell: {e}") from None


_PORT_HELP = (
    'expected "HOST:CONTAINER", "IP:HOST:CONTAINER" or "CONTAINER", optionally with /tcp or /udp'
)


def _port_number(text: str, what: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 65535:
        raise ValueError(f"{what} {text!r} is not a port number (1-65535)")
    return int(text)


def host_port_range(text: str) -> tuple[int, int]:
    """``"8080"`` or ``"8080-8082"`` (a long-syntax ``published``): first and last port."""
    ports = _port_range(text.strip(), "host port")
    return ports[0], ports[-1]


def _port_range(text: str, what: str) -> list[int]:
    if "-" in text:
        lo_s, _, hi_s = text.partition("-")
        lo, hi = _port_number(lo_s, what), _port_number(hi_s, what)
        if hi < lo:
            raise ValueError(f"{what} range {text!r} ends before it starts")
        return list(range(lo, hi + 1))
    return [_port_number(text, what)]


def _published(hosts: list[int], targets: list[int], host_ip: str, proto: str) -> list[Port]:
    """Host ports paired with container ports; a range for one container port is the
    engine's to bind a free port of (one per replica)."""
    if len(targets) == 1 and len(hosts) > 1:
        return [Port(targets[0], hosts[0], host_ip, proto, published_end=hosts[-1])]
    if len(hosts) != len(targets):
        raise ValueError("the host and container port ranges differ in length")
    return [
        Port(target=t, published=h, host_ip=host_ip, protocol=proto)
        for h, t in zip(hosts, targets, strict=True)
    ]


def port_short(value: str | int) -> list[Port]:
    """``"127.0.0.1:8080:80/tcp"`` -> Port(80, 8080, "127.0.0.1", "tcp"); ranges expand."""
    if isinstance(value, int):
        return [Port(target=_port_number(str(value), "container port"))]
    text = value.strip()
    spec, _, proto = text.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise ValueError(f'"{text}" has protocol {proto!r}; expected tcp or udp')
    host_ip = ""
    if spec.startswith("["):
        ip, sep, rest = spec[1:].partition("]:")
        if not sep:
            raise ValueError(f'"{text}" is not a port mapping; {_PORT_HELP}')
        host_ip, parts = ip, rest.split(":")
        if len(parts) != 2:
            raise ValueError(f'"{text}" is not a port mapping; {_PORT_HELP}')
        parts = ["", *parts]
    else:
        parts = spec.split(":")
    try:
        if len(parts) == 1:
            return [Port(target=t, protocol=proto) for t in _port_range(parts[0], "port")]
        if len(parts) == 2:
            host_s, target_s = parts
        elif len(parts) == 3:
            # an empty IP (`${BIND:-}:443:443`) is every address, as compose reads it
            ip_part, host_s, target_s = parts
            host_ip = host_ip or ip_part
        else:
            raise ValueError("too many colons")
        if host_ip:
            try:
                ipaddress.ip_address(host_ip)
            except ValueError:
                raise ValueError(f"{host_ip!r} is not an IP address") from None
        targets = _port_range(target_s, "container port")
        if not host_s:
            return [Port(target=t, host_ip=host_ip, protocol=proto) for t in targets]
        return _published(_port_range(host_s, "host port"), targets, host_ip, proto)
    except ValueError as e:
        raise ValueError(f'"{text}" is not a port mapping ({e}); {_PORT_HELP}') from None


VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
# How a bind's mounts propagate between host and container (docker's `-v ...:rslave`)
PROPAGATION = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
_VOLUME_OPTIONS_NOOP = {"rw", "cached", "delegated", "consistent"}


def _mount_options(text: str) -> tuple[bool, str, bool, str]:
    """``ro,z,nocopy,rslave`` -> (read-only, SELinux relabel, nocopy, propagation)."""
    read_only = nocopy = False
    selinux = propagation = ""
    for opt in text.split(",") if text else []:
        if opt == "ro":
            read_only = True
        elif opt in ("z", "Z"):
            selinux = opt
        elif opt == "nocopy":
            nocopy = True
        elif opt in PROPAGATION:
            propagation = opt
        # any other word compose ignores, and so does the deployer (the reader warns)
    return read_only, selinux, nocopy, propagation


def unknown_mount_options(text: str) -> list[str]:
    """The words of a short volume's mode that neither compose nor the engine use
    (``roz``: compose mounts it read-write, with no SELinux label)."""
    known = {"ro", "z", "Z", "nocopy", *PROPAGATION, *_VOLUME_OPTIONS_NOOP}
    return [opt for opt in text.split(",") if opt and opt not in known]


def volumes_from(text: str) -> tuple[str, str, str]:
    """A ``volumes_from`` entry -> ``(kind, name, mode)``: ``"SERVICE[:MODE]"`` and
    ``"service:SERVICE[:MODE]"`` name a service of the app, ``"container:NAME[:MODE]"`` a
    container of the host; the mode is as written, "" when left out."""
    kind, parts = "service", text.split(":")
    if parts[0] in ("service", "container") and len(parts) > 1:
        kind, parts = parts[0], parts[1:]
    return kind, parts[0], ":".join(parts[1:])


def volume_short(text: str) -> Mount:
    """``"data:/var/lib/x:ro"``, ``"/srv/x:/x"``, ``"/anon"`` -> Mount."""
    parts = text.split(":")
    if len(parts) == 1:
        target = parts[0]
        if not target.startswith("/"):
            raise ValueError(
                f'"{text}" is not a mount; expected "VOLUME:/path", "/host/path:/path[:ro]" '
                'or "/path"'
            )
        return Mount(type="volume", target=posixpath.normpath(target))
    if len(parts) > 3:
        raise ValueError(f'"{text}" has too many colons; expected "SOURCE:/path[:ro]"')
    source, target = parts[0], parts[1]
    read_only, selinux, nocopy, propagation = _mount_options(parts[2] if len(parts) == 3 else "")
    if not target.startswith("/"):
        raise ValueError(f'"{text}": the container path must be absolute (start with /)')
    target = posixpath.normpath(target)
    if source.startswith("/"):
        if nocopy:
            raise ValueError(f'"{text}": nocopy applies to volumes, not to bind mounts')
        return Mount(
            type="bind",
            source=policy.canonical(source),
            target=target,
            read_only=read_only,
            selinux=selinux,
            propagation=propagation,
        )
    if propagation:
        raise ValueError(f'"{text}": {propagation} applies to bind mounts, not to volumes')
    if source.startswith((".", "~")):
        raise ValueError(
            f'"{text}": a relative host path is not supported (it would be resolved on the '
            "deploy host, not in your repo); use an absolute path on the host"
        )
    if not VOLUME_NAME.match(source):
        raise ValueError(f'"{text}": "{source}" is not a volume name or an absolute path')
    return Mount(
        type="volume",
        source=source,
        target=target,
        read_only=read_only,
        selinux=selinux,
        nocopy=nocopy,
    )


# The grammar of docker/distribution's reference package.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_IMAGE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$"
)


def image(text: str) -> tuple[str | None, str | None]:
    """Check an image reference; returns (tag, digest). Raises ValueError if malformed."""
    m = _IMAGE.match(text)
    if not m or len(text) > 255:
        hint = ""
        if text != text.lower() and _IMAGE.match(text.lower()):
            hint = " (repository names must be lowercase)"
        elif not text:
            hint = " (it is empty: is a variable in it unset or empty?)"
        elif text.endswith(":"):
            hint = " (the tag after `:` is empty: is a variable in it empty?)"
        raise ValueError(
            f'"{text}" is not a valid image reference{hint}; expected '
            "[REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST]"
        )
    return m.group("tag"), m.group("digest")
