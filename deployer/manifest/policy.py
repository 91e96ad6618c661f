"""The safety policy for bind mounts, on canonical paths.

A bind source is compared after it is made canonical the way the kernel reads it: runs of
``/`` collapsed (``//var/run`` is ``/var/run``; POSIX's ``normpath`` keeps a leading ``//``),
``.`` and ``..`` resolved, a trailing ``/`` dropped. A source is refused when it is, is under,
or is a parent of a protected path: a parent exposes everything below it (``/var`` holds
``/var/lib/docker`` and ``/var/run/docker.sock``). A home directory (``/root``,
``/home/<name>``) and its dot-entries (``~/.ssh``, ``~/.docker``, ``~/.bashrc``, anything
``/root/.*`` or ``/home/*/.*``) hold the host's keys and logins and are protected the same
way; a home's other subdirectories (``/root/n8n``) are data like ``/srv``. Symbolic links on
the target host are resolved separately, through the engine, before anything changes
(``deployer.docker.symlinks``);
the same :func:`needs` then judges the resolved path.

Pure: no SDK, no file system access.
"""

from __future__ import annotations

import posixpath
import re

DOCKER_SOCKET = "docker-socket"
SYSTEM_BIND = "system-bind"
HOST_LAN = "host-lan"
# Network drivers that put a container on a network of the host's own interface (the
# `parent` of driver_opts, else the default route's): with its own address on the host's
# LAN, past the host's firewall and Docker's port publishing.
LAN_DRIVERS = ("macvlan", "ipvlan")

# Sockets that give control of the host's containers (the engine's and containerd's).
SOCKETS = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
    "/run/docker/containerd/containerd.sock",
)
SOCKET_NAMES = ("docker.sock", "containerd.sock", "docker.sock.raw", "dockershim.sock")
# Directories whose content belongs to the host or to the engine.
SYSTEM_PATHS = (
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/run",
    "/var/run",
    "/var/lib/docker",
    "/var/lib/containerd",
)
# /root is a home directory; /home holds one per user.
HOMES = ("/root", "/home")
# Files a container may read from the host without an allow entry: the host's time zone,
# and the kernel's random devices, which every container has in its own /dev already.
READ_ONLY_ALLOWED = ("/etc/localtime", "/etc/timezone", "/dev/random", "/dev/urandom")

_SLASHES = re.compile(r"/{2,}")


def canonical(path: str) -> str:
    """The path as the kernel reads it (absolute ``path`` assumed; symlinks aside)."""
    text = _SLASHES.sub("/", path)
    text = posixpath.normpath(text)
    if text.startswith("//"):  # normpath keeps exactly two leading slashes
        text = "/" + text.lstrip("/")
    return text


def _under(path: str, base: str) -> bool:
    return base in (path, "/") or path.startswith(base + "/")


def _home(path: str) -> str | None:
    """Why ``path`` (canonical) is protected as a home directory or a dot-entry of one."""
    parts = path.split("/")[1:]
    if parts[0] == "root":
        home, rest = "/root", parts[1:]
    elif parts[0] == "home" and len(parts) > 1:
        home, rest = f"/home/{parts[1]}", parts[2:]
    else:
        return None
    if not rest:
        return f"it is the home directory {home}"
    if rest[0].startswith("."):
        entry = f"{home}/{rest[0]}"
        return f"it is {entry}, a dot-entry of the home directory {home}" + (
            "" if len(rest) == 1 else ", or below it"
        )
    return None


def _system(path: str) -> str | None:
    """Why ``path`` (canonical) is, is under, or holds a protected system path or home."""
    for base in SYSTEM_PATHS:
        if _under(path, base):
            return f"it is the system path {base}" + ("" if path == base else " or below it")
    home = _home(path)
    if home:
        return home
    if path == "/home":
        return "it holds the home directories under /home"
    below = [s for s in (*SYSTEM_PATHS, *HOMES) if _under(s, path)]
    if below:
        shown = ", ".join(below[:3]) + (", ..." if len(below) > 3 else "")
        return f"it holds the system paths {shown}"
    return None


def needs(source: str, *, read_only: bool = False) -> tuple[tuple[str, str], ...]:
    """The policy entries a bind of the host path ``source`` needs, each with the reason.

    Empty when the bind is harmless. ``source`` may be written in any spelling.
    """
    path = canonical(source)
    out: dict[str, str] = {}
    name = posixpath.basename(path)
    if name in SOCKET_NAMES or path.endswith("docker.sock") or path in SOCKETS:
        out[DOCKER_SOCKET] = f"it is the socket {path}"
    else:
        below = [s for s in SOCKETS if _under(s, path)]
        if below:
            out[DOCKER_SOCKET] = f"it holds the socket {below[0]}"
    if read_only and path in READ_ONLY_ALLOWED:
        return tuple(out.items())
    system = _system(path)
    if system:
        out[SYSTEM_BIND] = system
    return tuple(out.items())


def refusal(written: str, source: str, missing: list[tuple[str, str]]) -> tuple[str, str]:
    """(message, fix) for a bind refused for the entries ``missing`` (name, reason)."""
    path = canonical(source)
    spelled = f'"{written}"' + (f" (the host path {path})" if path != written else "")
    reasons = "; ".join(reason for _, reason in missing)
    names = " and ".join(f'"{name}"' for name, _ in missing)
    message = f"the bind mount of {spelled} is refused by the safety policy: {reasons}"
    fix = f"remove it, or add {names} to `policy: {{allow: [...]}}` if this app really needs it"
    return message, fix


# Filesystems the local volume driver mounts from the network or from memory: their
# `device` is a remote share or a name, not a path of the host.
REMOTE_TYPES = frozenset({"nfs", "nfs4", "cifs", "smb3", "tmpfs", "ramfs"})


def volume_host_paths(driver: str | None, opts: dict[str, str]) -> list[tuple[str, bool]]:
    """(host path, read-only) of every path of the host a named volume mounts.

    The engine's local driver mounts what ``driver_opts`` say: ``o: bind`` (or ``rbind``)
    with ``device: /var/run`` is a bind mount of the host's ``/var/run`` whatever
    ``type`` says; ``type: overlay`` mounts the directories ``lowerdir``, ``upperdir`` and
    ``workdir`` of ``o``; any other filesystem that is not a network share or memory
    (``ext4``, ``xfs``, ...) mounts the host's device ``device`` (``/dev/sda1``). Each
    such path is judged as a bind source is. A relative path is read from the engine's
    working directory, ``/``. Another driver (a plugin the host installed) is the host's.
    """
    if driver not in (None, "", "local"):
        return []
    kind = opts.get("type", "").strip().lower()
    options = [o.strip() for o in opts.get("o", "").split(",")]
    read_only = "ro" in options
    device = opts.get("device", "").strip()
    out: list[tuple[str, bool]] = []
    binds = bool({"bind", "rbind"} & set(options))
    if device and (binds or kind not in (*REMOTE_TYPES, "overlay")):
        out.append(("/" + device if not device.startswith("/") else device, read_only))
    if kind == "overlay":
        for option in options:
            key, _, value = option.partition("=")
            if key in ("lowerdir", "upperdir", "workdir") and value:
                for part in value.split(":"):
                    if part:
                        p = part if part.startswith("/") else "/" + part
                        out.append((p, read_only or key == "lowerdir"))
    return out


def lan_driver(driver: str | None, opts: dict[str, str]) -> str | None:
    """Why a network of ``driver`` with driver options ``opts`` puts its containers on the
    host's LAN (``policy.allow: [host-lan]``), None when it does not."""
    name = (driver or "").strip().lower()
    if name not in LAN_DRIVERS:
        return None
    parent = opts.get("parent", "").strip()
    on = f"the host's interface {parent}" if parent else "the host's default interface"
    return (
        f"its driver {name} puts the containers on the network of {on}, each with its own "
        "address on the host's LAN, past the host's firewall and Docker's port publishing"
    )


# Options of the engine's bridge driver (libnetwork ``drivers/bridge``) that put the
# containers on a network of the host's or open them to the machines the host routes for.
BRIDGE_NAME = "com.docker.network.bridge.name"
DEFAULT_BRIDGE = "com.docker.network.bridge.default_bridge"
GATEWAY_MODES = (
    "com.docker.network.bridge.gateway_mode_ipv4",
    "com.docker.network.bridge.gateway_mode_ipv6",
)
TRUSTED_INTERFACES = "com.docker.network.bridge.trusted_host_interfaces"


def bridge_options(driver: str | None, opts: dict[str, str]) -> list[tuple[str, str]]:
    """(option, why) of each driver option of a bridge network (``driver: bridge`` or
    none) that needs ``policy.allow: [host-lan]``; empty when there is none.

    ``com.docker.network.bridge.name``: when an interface of that name exists on the host
    (a LAN bridge ``br0``, ``virbr0``, ``vmbr0``, ``lxcbr0``, ``docker0``) the engine takes
    it as the network's bridge: it replaces the interface's address in the network's
    subnet, else its first one, with the network's gateway (``setupBridgeIPv4``; measured
    on engine 20.10: a bridge's own 10.x.y.1/24 was removed) and plugs the containers into
    it, on that interface's network. The deployer cannot list the host's interfaces, so
    any name is judged. The gateway modes ``routed`` (no NAT: the containers' published
    ports are reached at their own addresses, whatever host address ``ports:`` names) and
    ``nat-unprotected`` (no filtering: every port, published or not), and
    ``trusted_host_interfaces`` (what arrives on those interfaces reaches the published
    ports at the containers' own addresses) open the containers to any machine that routes
    to them through the host, past Docker's port publishing. ``inhibit_ipv4``,
    ``enable_icc``, ``enable_ip_masquerade``, ``host_binding_ipv4``, the MTU and the
    ``isolated``/``nat`` gateway modes open nothing."""
    if (driver or "bridge").strip().lower() != "bridge":
        return []
    out: list[tuple[str, str]] = []
    name = opts.get(BRIDGE_NAME, "").strip()
    if name:
        out.append(
            (
                BRIDGE_NAME,
                f"its option {BRIDGE_NAME}={name} makes the engine take the host's interface "
                f"{name} when there is one (a LAN bridge): it replaces that interface's "
                "address with the network's gateway and puts the containers on it, on that "
                "interface's network",
            )
        )
    for key in GATEWAY_MODES:
        mode = opts.get(key, "").strip().lower()
        if mode == "routed":
            out.append(
                (
                    key,
                    f"its option {key}=routed turns off NAT: any machine that routes to "
                    "the containers through the host reaches their published ports at the "
                    "containers' own addresses, whatever host address `ports:` names "
                    "(127.0.0.1 too)",
                )
            )
        elif mode == "nat-unprotected":
            out.append(
                (
                    key,
                    f"its option {key}=nat-unprotected turns off Docker's filtering: any "
                    "machine that routes to the containers through the host reaches every "
                    "port of theirs, published or not",
                )
            )
    trusted = opts.get(TRUSTED_INTERFACES, "").strip()
    if trusted:
        out.append(
            (
                TRUSTED_INTERFACES,
                f"its option {TRUSTED_INTERFACES}={trusted} lets what arrives on the host's "
                f"interfaces {trusted} reach the containers' published ports at their own "
                "addresses, whatever host address `ports:` names (127.0.0.1 too)",
            )
        )
    return out
