"""The lifecycle hooks ``post_start`` and ``pre_stop`` and ``use_api_socket``, as docker
compose v2 reads them.

A hook is an exec in the service's container: ``post_start`` right after each new
container starts, ``pre_stop`` before a container is stopped. ``privileged: true`` in a
hook gives the exec every capability of the host: the safety policy asks for the same
``privileged`` entry a privileged container needs. ``use_api_socket`` mounts the engine's
socket into the container: the same ``docker-socket`` entry a bind of the socket needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deployer.manifest import parse, policy
from deployer.manifest.model import API_SOCKET, Hook
from deployer.manifest.problems import Path
from deployer.manifest.readers import environment, security
from deployer.manifest.readers.values import str_or_none

if TYPE_CHECKING:
    from deployer.manifest.readers.core import Builder

HOOKS = ("post_start", "pre_stop")


def read_hooks(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    for key in HOOKS:
        items = raw.get(key)
        if not isinstance(items, list) or not items:
            continue
        if b.engine == "swarm":
            b.err(
                (*path, key),
                f"`{key}` is not possible with engine: swarm (Swarm runs no lifecycle hooks)",
                f"remove {key}, or deploy this environment with engine: container",
                key=True,
            )
            continue
        hooks = [hook(b, (*path, key, i), item) for i, item in enumerate(items)]
        if all(h is not None for h in hooks):
            out[key] = tuple(h for h in hooks if h is not None)


def hook(b: Builder, p: Path, item: Any) -> Hook | None:
    if not isinstance(item, dict):
        return None
    command = b.parsed((*p, "command"), parse.command, item.get("command"))
    if not command:
        if command is not None:
            b.err((*p, "command"), "the hook's command is empty", "write the command to run")
        return None
    working_dir = item.get("working_dir")
    if isinstance(working_dir, str) and working_dir and not working_dir.startswith("/"):
        b.err(
            (*p, "working_dir"),
            f'"{working_dir}" is not an absolute path',
            "start it with / (a path inside the container)",
        )
    privileged = item.get("privileged") is True
    if privileged:
        security.refuse(b, (*p, "privileged"), "privileged: true in a hook", "privileged")
    env: dict[str, str] = {}
    value = item.get("environment")
    epath = (*p, "environment")
    if isinstance(value, dict):
        env = environment.from_mapping(b, epath, value)
    elif isinstance(value, list):
        env = environment.from_list(b, epath, value)
    user = item.get("user")
    return Hook(
        command=command,
        user=str(user) if isinstance(user, str | int) and str(user) else None,
        privileged=privileged,
        working_dir=str_or_none(working_dir) or None,
        environment=tuple(sorted(env.items())),
    )


def read_api_socket(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    """``use_api_socket: true``: compose binds the engine's socket into the container and
    points DOCKER_CONFIG at its own directory; judged as that bind is."""
    if raw.get("use_api_socket") is not True:
        return
    p = (*path, "use_api_socket")
    if b.engine == "swarm":
        b.err(
            p,
            "use_api_socket is not possible with engine: swarm (a service's tasks run on "
            "any node: mount the socket with a bind in `volumes:` and `policy.allow`)",
            "remove it, or deploy this environment with engine: container",
        )
        return
    if policy.DOCKER_SOCKET not in b.allow:
        b.err(
            p,
            f"use_api_socket: true is refused by the safety policy: it mounts the engine's "
            f"socket {API_SOCKET} into the container, which then controls every container "
            "of the host",
            f'remove it, or add "{policy.DOCKER_SOCKET}" to `policy: {{allow: [...]}}` '
            "if this app really needs it",
        )
    out["use_api_socket"] = True
