"""Names, bounds and small value checks shared by the manifest's readers."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from deployer.manifest.model import PullPolicy

APP_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
MAX_NOTIFY_TIMEOUT = 30.0
SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
RESTART = re.compile(r"^(no|always|unless-stopped|on-failure(:\d+)?)$")
SIGNAL = re.compile(r"^(SIG[A-Z0-9+-]+|[0-9]+)$")
ENV_KEY = re.compile(r"^[^=\s]+$")
EXPOSE = re.compile(r"^\d{1,5}(-\d{1,5})?(/(tcp|udp))?$")
# An environment's name becomes part of names on hosts (containers, networks, volumes):
# names the engine accepts, and GitLab's review apps (`review/<slug>`, written review-<slug>).
ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
ENV_NAME_MAX = 64
CONTAINER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
ULIMIT_NAME = re.compile(r"^[a-z]+$")
MAC = re.compile(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")
PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$")
HOSTNAME = re.compile(
    r"^(\*\.)?([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)*[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}"
    r"[a-zA-Z0-9])?$"
)

# Bounds: values past these are mistakes, and some would hang or crash a deploy.
MAX_REPLICAS = 100
MAX_DURATION = 24 * 3600.0
MIN_LOCK_TTL = 10.0

# Compose's pull policies: a deploy resolves the image on every run, so the periodic ones
# (daily, weekly, every_<duration>), refresh and build (the CI built and pushed it) resolve
# it from the registry like always; if_not_present is compose's old name of missing.
PULL_POLICY: dict[str, PullPolicy] = {
    "always": "always",
    "missing": "missing",
    "if_not_present": "missing",
    "never": "never",
}


def is_net(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def listen_problem(text: str) -> bool:
    """True when ``text`` is not "IP:PORT" (IPv6 in brackets)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        return True
    return not is_ip(host.strip("[]"))


def port_int(value: Any) -> int:
    text = str(value)
    if isinstance(value, bool) or not text.isdigit() or not 0 < int(text) <= 65535:
        raise ValueError(f'"{text}" is not a port number (1-65535)')
    return int(text)


def host_problem(host: str) -> tuple[str, str] | None:
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


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).strip("-_.")


def scalar_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def mapping(raw: dict[str, Any], key: str) -> dict[str, Any]:
    """``raw[key]`` when it is a mapping, else an empty one (the schema named the mistake)."""
    value = raw.get(key)
    return value if isinstance(value, dict) else {}
