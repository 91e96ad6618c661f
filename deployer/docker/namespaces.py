"""Which PID and IPC namespaces of other containers a container joined (``pid`` / ``ipc``
``container:<id>``, what a ``service:NAME`` becomes at create).

The container listing names the network mode only (``HostConfig.NetworkMode``), so these
are read by inspect: one per running container of a service that joins such a namespace
(``Service.namespaces_joined``), none for the other services. The plan compares them with
NAME's current container (``deployer.plan._rejoined``): a dependent left in the namespace of
a container a killed deploy replaced is replaced in turn, joining the current one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import docker
import docker.errors

from deployer.docker.transport import wrapped_errors
from deployer.manifest.model import Service
from deployer.plan import ObservedContainer

KEYS = ("pid", "ipc")
_FIELD = {"pid": "PidMode", "ipc": "IpcMode"}


def joined_namespaces(host_config: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """(key, container id) of each PID / IPC namespace an inspected container joined."""
    out = []
    for key in KEYS:
        kind, _, cid = str(host_config.get(_FIELD[key]) or "").partition(":")
        if kind == "container" and cid:
            out.append((key, cid))
    return tuple(out)


def read(
    api: docker.APIClient,
    host: str,
    containers: Sequence[ObservedContainer],
    services: Sequence[Service],
) -> list[ObservedContainer]:
    """``containers`` with ``joined_ns`` filled in for the running ones of services that
    join a PID or IPC namespace (adopted ones were inspected already: left as they are)."""
    joining = {s.name for s in services if any(k in KEYS for k, _ in s.namespaces_joined)}
    out = []
    for c in containers:
        if c.service not in joining or not c.running or c.adopted_from:
            out.append(c)
            continue
        with wrapped_errors(host, f"inspecting container {c.name}"):
            try:
                info = api.inspect_container(c.id)
            except docker.errors.NotFound:
                info = {}  # removed meanwhile: the plan finds nothing to compare
        out.append(replace(c, joined_ns=joined_namespaces(info.get("HostConfig") or {})))
    return out
