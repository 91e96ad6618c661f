"""The safety policy: what a service may not do without a ``policy.allow`` entry
(privileged, host namespaces, capabilities, devices and device rules, switched-off
isolation).
Protected host paths are checked with the mounts (``volumes.bind_policy``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from deployer.manifest.problems import Path

if TYPE_CHECKING:
    from deployer.manifest.readers.core import Builder

POLICY_NAMES = (
    "privileged",
    "host-network",
    "host-pid",
    "host-ipc",
    "host-cgroup",
    "host-userns",
    "host-uts",
    "docker-socket",
    "system-bind",
    "cap_add",
    "devices",
    "seccomp=unconfined",
    "apparmor=unconfined",
    "label=disable",
    "runtime",
    "cgroup_parent",
    "foreign-container",
    "edge-proxy",
    "oom",
    "host-lan",
    "foreign-network",
    "foreign-volume",
)
# The engine's default profiles: anything else given to `seccomp=` or `apparmor=` replaces
# them with a profile the manifest chooses (an inline seccomp JSON that allows every
# call, `unconfined`, a loaded AppArmor profile that confines nothing).
DEFAULT_PROFILES = {"seccomp": ("builtin",), "apparmor": ("docker-default",)}
# SELinux label options that keep the engine's confinement (an MCS level, the file type
# of the container's files); any other (`disable`, `type:spc_t`, `user:`, `role:`)
# switches it off or picks another domain.
LABELS_KEPT = ("level", "filetype")


def read_security_opt(opt: str) -> tuple[str, str] | None:
    """``opt`` as the engine reads it (moby's parseSecurityOpt): (key, value); a bare
    ``no-new-privileges`` or ``disable`` (the latter is ``label=disable``); split at the
    first ``=``, else at the first ``:``. None when the engine would refuse it."""
    if opt == "no-new-privileges":
        return ("no-new-privileges", "true")
    if opt == "disable":
        return ("label", "disable")
    sep = "=" if "=" in opt else ":"
    key, found, value = opt.partition(sep)
    return (key, value) if found else None


def weakened(key: str, value: str) -> str | None:
    """The ``policy.allow`` entry a security option the engine reads as (key, value)
    needs, None when it keeps the engine's isolation."""
    if key in DEFAULT_PROFILES:
        return None if value in DEFAULT_PROFILES[key] else f"{key}=unconfined"
    if key == "label":
        kind = value.partition(":")[0]
        return None if kind in LABELS_KEPT else "label=disable"
    return None


def policy_allow(raw: Any) -> set[str]:
    """``policy.allow``: the known entries (the schema names unknown ones)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("allow"), list):
        return set()
    return {a for a in raw["allow"] if isinstance(a, str) and a in POLICY_NAMES}


def refuse(b: Builder, p: Path, what: str, name: str) -> None:
    if name not in b.allow:
        b.err(
            p,
            f"{what} is refused by the safety policy",
            f'remove it, or add "{name}" to `policy: {{allow: [...]}}` if this app really needs it',
        )


def safety(b: Builder, path: Path, raw: dict[str, Any]) -> None:
    if raw.get("privileged") is True:
        refuse(b, (*path, "privileged"), "privileged: true", "privileged")
    network_mode(b, path, raw)
    for key, name in (("pid", "host-pid"), ("ipc", "host-ipc")):
        value = raw.get(key)
        if not isinstance(value, str):
            continue
        if value == "host":
            refuse(b, (*path, key), f"{key}: host", name)
        elif value.startswith("service:"):
            shared_namespace(b, path, key, value.removeprefix("service:"))
        elif not (key == "ipc" and value in ("private", "shareable")):
            b.err(
                (*path, key),
                f'{key} "{value}" is not supported',
                f"use service:NAME (the {key.upper()} namespace of a service of the app)"
                + ("" if key == "pid" else ", private or shareable")
                + ", or remove it",
            )
    cap_add(b, path, raw)


# The capabilities Docker gives every container (moby's oci/caps/defaults.go): adding one
# grants nothing a container without `cap_drop` lacks, as Kubernetes' Pod Security
# "baseline" judges it. Any other capability needs `policy.allow: [cap_add]`.
DEFAULT_CAPS = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "NET_RAW",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


def capability(name: str) -> str:
    """A capability as the engine names it: ``cap_net_admin`` and ``CAP_NET_ADMIN`` are
    ``NET_ADMIN``."""
    upper = name.strip().upper()
    return upper.removeprefix("CAP_")


def cap_add(b: Builder, path: Path, raw: dict[str, Any]) -> None:
    caps = raw.get("cap_add")
    if not isinstance(caps, list) or "cap_add" in b.allow:
        return
    extra = [str(c) for c in caps if not (isinstance(c, str) and capability(c) in DEFAULT_CAPS)]
    extra = list(dict.fromkeys(extra))
    if extra:
        listed = ", ".join(extra)
        refuse(
            b,
            (*path, "cap_add"),
            f"cap_add of {listed} (beyond Docker's default capabilities)",
            "cap_add",
        )


# What the engine refuses beside a network namespace shared with another container (moby's
# runconfig: the container has that one's name, addresses, ports and resolver)
SHARED_NETWORK_CONFLICTS = {
    "ports": "its ports are published by the service it shares the network with",
    "expose": "its ports are those of the service it shares the network with",
    "hostname": "it has the host name of the service it shares the network with",
    "dns": "it has the resolver settings of the service it shares the network with",
    "extra_hosts": "it has the /etc/hosts of the service it shares the network with",
    "mac_address": "it has the MAC address of the service it shares the network with",
    "links": "it has no network endpoint of its own to hold links",
    "external_links": "it has no network endpoint of its own to hold links",
}


def network_mode(b: Builder, path: Path, raw: dict[str, Any]) -> None:
    mode = raw.get("network_mode")
    if not isinstance(mode, str):
        return
    p = (*path, "network_mode")
    if mode == "host":
        refuse(b, p, "network_mode: host", "host-network")
    elif mode.startswith("service:"):
        shared_network(b, path, raw, mode.removeprefix("service:"))
    elif mode not in ("none", "bridge"):  # bridge: the engine's default network
        b.err(
            p,
            f'network_mode "{mode}" is not supported yet',
            "use `networks:`, or `service:NAME` to share the network of a service of the app",
        )
    if raw.get("networks"):
        b.err(p, "network_mode and networks cannot be used together", "remove one of them")


# A network's name as the engine reads a container's network: "host" is the host's own
# network stack (what `network_mode: host` gives); a name with ":" is a mode, not a network
# ("container:NAME" joins the namespace of any container of the host, another app's too).
NETWORK_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
# A network's full ID, which the engine matches before any name (moby's FindNetwork): a
# network the deployer creates under that name would not be the one its containers join.
NETWORK_ID = re.compile(r"^[0-9a-f]{64}$")


def network_engine_name(b: Builder, path: Path, real: str | None, where: Path) -> None:
    """The engine's name of a top-level network (``name:``, ``external.name``, or the key
    of an external one), judged as the engine reads the container's network by it: the
    network ``host`` shares the host's network stack, as ``network_mode: host`` does, and
    needs the same ``host-network`` entry; a name the engine would read as a mode
    (``container:NAME``: another container's namespace) is refused."""
    if real is None:
        return
    if real == "host":
        refuse(
            b,
            where,
            f'network "{path[-1]}", the engine\'s network "host" (a service joined to it '
            "shares the host's network stack, as with network_mode: host),",
            "host-network",
        )
    elif NETWORK_ID.match(real):
        b.err(
            where,
            f'"{real}" reads as a network\'s ID: the engine finds a network by its full ID '
            "before its name, so the containers would join whichever network has that ID "
            "(another app's), not one of this name",
            "name the network by its name",
        )
    elif not NETWORK_NAME.match(real):
        b.err(
            where,
            f'"{real}" is not a network name (the engine would read it as a network mode, '
            "not a network)",
            "name a network: letters, digits and _ . - (starting with a letter or digit)",
        )


def shared_namespace(b: Builder, path: Path, key: str, name: str) -> bool:
    """``network_mode``, ``pid`` or ``ipc`` ``service:NAME``: the containers join that
    namespace of NAME's container; NAME is a service of the app (not this one), and the
    engine is not a Swarm. (NAME's replicas are checked across services.) Whether it is."""
    p = (*path, key)
    what = {"network_mode": "network", "pid": "PID namespace", "ipc": "IPC namespace"}[key]
    names = sorted(b.service_names)
    if name == path[-1]:
        b.err(p, f'service "{name}" shares the {what} of itself', "name another service")
        return False
    if name not in b.service_names:
        b.err(
            p,
            f'{key} names the service "{name}", which is not defined',
            "name one of: " + ", ".join(n for n in names if n != path[-1]),
        )
        return False
    if b.engine == "swarm":
        b.err(
            p,
            f"{key}: service:{name} is not possible with engine: swarm (Swarm has no "
            f"equivalent: a service's tasks each have their own {what})",
            "put the two in one image"
            + (f", reach {name} over a network" if key == "network_mode" else "")
            + ", or deploy this environment with engine: container",
        )
        return False
    return True


def shared_network(b: Builder, path: Path, raw: dict[str, Any], name: str) -> None:
    """``network_mode: service:NAME``: the containers join the network namespace of NAME's
    container; NAME is a service of the app (not this one), and nothing the engine refuses
    beside a shared namespace is set. (NAME's replicas are checked across services.)"""
    if not shared_namespace(b, path, "network_mode", name):
        return
    for key, why in SHARED_NETWORK_CONFLICTS.items():
        if raw.get(key) not in (None, "", [], {}):
            b.err(
                (*path, key),
                f"{key} cannot be set with network_mode: service:{name}: {why} "
                "(the engine refuses both)",
                f"remove {key}" + (f", or set it on {name}" if "links" not in key else ""),
                key=True,
            )


def security_opt(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    """Each option judged as the engine reads it: a seccomp or AppArmor profile other than
    the engine's default (an inline seccomp JSON allowing every call is as unconfined as
    ``seccomp=unconfined``), or a SELinux label other than a level (``disable`` alone is
    ``label=disable``), needs its ``policy.allow`` entry; an option the engine does not
    know is refused (fail closed)."""
    opts = raw.get("security_opt")
    if not isinstance(opts, list) or not opts:
        return
    kept = []
    for i, opt in enumerate(opts):
        if not isinstance(opt, str):
            continue
        p = (*path, "security_opt", i)
        written = b.written(p)
        shown = written if isinstance(written, str) else opt
        read = read_security_opt(opt)
        if read is None or read[0] not in (*DEFAULT_PROFILES, "label", "no-new-privileges"):
            b.err(
                p,
                f'"{shown}" is not a security option the deployer knows',
                "write no-new-privileges[:true], seccomp=..., apparmor=... or label=...",
            )
            continue
        allow = weakened(*read)
        if allow and allow not in b.allow:
            b.err(
                p,
                f'security_opt "{shown}" switches off an isolation of the container or '
                "replaces the engine's default profile; it is refused by the safety policy",
                f'remove it, or add "{allow}" to `policy: {{allow: [...]}}` if this '
                "app really needs it",
            )
        kept.append(opt)
    out["security_opt"] = tuple(kept)


def devices(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    items = raw.get("devices")
    if not isinstance(items, list) or not items:
        return
    kept = []
    for i, item in enumerate(items):
        dev = item
        if isinstance(item, dict):
            src, dst = item.get("source"), item.get("target", item.get("source"))
            perms = item.get("permissions", "rwm")
            dev = f"{src}:{dst}:{perms}" if isinstance(src, str) else None
        if not isinstance(dev, str):
            continue
        if not dev.startswith("/"):
            b.err(
                (*path, "devices", i),
                f'"{dev}" is not a device; expected "/dev/HOST[:/dev/CONTAINER[:rwm]]"',
            )
            continue
        kept.append(dev)
    if "devices" not in b.allow:
        b.err(
            (*path, "devices"),
            "devices give the container direct access to host hardware; they are "
            "refused by the safety policy",
            'remove them, or add "devices" to `policy: {allow: [...]}` if this app '
            "really needs them",
            key=True,
        )
    out["devices"] = tuple(kept)


# compose's namespace keys beyond pid and ipc: the one value each that shares the host's
# namespace ("host") and its policy entry; which other values the engine takes.
NAMESPACES = {
    "cgroup": ("host-cgroup", ("private",)),
    "userns_mode": ("host-userns", ()),
    "uts": ("host-uts", ()),
}


# The runtime the engine runs every container with unless told otherwise (dockerd
# registers runc under both names).
DEFAULT_RUNTIMES = ("runc", "io.containerd.runc.v2")


def runtime_and_cgroup_parent(b: Builder, path: Path, raw: dict[str, Any]) -> None:
    """``runtime`` other than runc, and any ``cgroup_parent``, need their ``policy.allow``
    entries. A runtime is whatever program the host registered under that name: one that
    hands out GPUs (``nvidia`` with ``NVIDIA_VISIBLE_DEVICES=all`` gives every GPU without
    ``devices``), one that runs without the engine's isolation, one meant for another
    team's workloads. A cgroup parent takes the container out of the cgroup the engine
    (``--cgroup-parent``) puts every container in, out of the limits the host set there, or
    into another workload's cgroup, whose memory and CPU it then shares and can exhaust."""
    runtime = raw.get("runtime")
    if isinstance(runtime, str) and runtime and runtime not in DEFAULT_RUNTIMES:
        refuse(
            b,
            (*path, "runtime"),
            f'runtime "{runtime}" (a runtime other than the engine\'s runc)',
            "runtime",
        )
    parent = raw.get("cgroup_parent")
    if isinstance(parent, str) and parent.strip():
        refuse(
            b,
            (*path, "cgroup_parent"),
            f'cgroup_parent "{parent.strip()}" (the container leaves the cgroup the engine '
            "puts containers in, and its limits)",
            "cgroup_parent",
        )
    oom_protection(b, path, raw)


def oom_protection(b: Builder, path: Path, raw: dict[str, Any]) -> None:
    """A container the kernel spares when the host runs out of memory needs
    ``policy.allow: [oom]``: with ``oom_kill_disable`` or a negative ``oom_score_adj``
    (-1000: never) the kernel kills something else instead, another app's containers, or
    sshd and dockerd, the way an operator reaches the host."""
    adj = raw.get("oom_score_adj")
    try:
        value = int(str(adj).strip()) if isinstance(adj, (int, str)) else 0
    except ValueError:
        value = 0  # not a number: the key's own reader says so
    if value < 0:
        refuse(
            b,
            (*path, "oom_score_adj"),
            f"oom_score_adj {value} (the kernel kills other processes of the host first when "
            "memory runs out)",
            "oom",
        )
    if raw.get("oom_kill_disable") is True:
        refuse(
            b,
            (*path, "oom_kill_disable"),
            "oom_kill_disable: true (the kernel never kills the container when memory runs "
            "out, but other processes of the host)",
            "oom",
        )


def namespaces(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    """cgroup (host or private), userns_mode and uts (host): sharing a namespace of the host
    needs its ``policy.allow`` entry."""
    for key, (name, others) in NAMESPACES.items():
        value = raw.get(key)
        if not isinstance(value, str) or not value:
            continue
        p = (*path, key)
        if value == "host":
            refuse(b, p, f"{key}: host", name)
        elif value not in others:
            b.err(
                p,
                f'"{value}" is not a mode the engine has for {key}',
                "use " + " or ".join(("host", *others)) + ", or remove it",
            )
            continue
        out[key] = value
    if out.get("uts") == "host" and isinstance(raw.get("hostname"), str) and raw["hostname"]:
        b.err(
            (*path, "uts"),
            "uts: host gives the container the host's name: hostname cannot be set as well "
            "(the engine refuses both)",
            "remove hostname, or uts",
        )


DEVICE_RULE = re.compile(r"^[abc] (\d+|\*):(\d+|\*) [rwm]{1,3}$")


def device_cgroup_rules(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    """``device_cgroup_rules`` ("c 1:3 rwm"): they let the container use host devices, so
    ``policy.allow: [devices]`` as for ``devices:``."""
    rules = raw.get("device_cgroup_rules")
    if not isinstance(rules, list) or not rules:
        return
    kept = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, str):
            continue
        if not DEVICE_RULE.match(rule.strip()):
            b.err(
                (*path, "device_cgroup_rules", i),
                f'"{rule}" is not a device rule',
                'write "TYPE MAJOR:MINOR ACCESS", e.g. "c 1:3 rwm" (type a, b or c; '
                "* for any number; access r, w and m)",
            )
            continue
        kept.append(rule.strip())
    if "devices" not in b.allow:
        b.err(
            (*path, "device_cgroup_rules"),
            "device_cgroup_rules let the container use host devices; they are refused by "
            "the safety policy",
            'remove them, or add "devices" to `policy: {allow: [...]}` if this app '
            "really needs them",
            key=True,
        )
    out["device_cgroup_rules"] = tuple(kept)
