"""Bind sources resolved on the target host, through its engine, before anything changes.

The safety policy judges the path a manifest writes; a symlink on the host can still point
a harmless-looking path (``/srv/app/run``) at the Docker socket or at ``/var``. The
engine binds what the link points to, so the policy must judge that too. The deployer
cannot look at a remote host's file system itself, but its engine can: a probe container
(never started, the deployer's own empty lock image, ``/`` bound read-only at ``/host``)
is created, and each component of each bind source is looked at through the archive API's
stat (``HEAD /containers/{id}/archive``), which reports a symlink's target. A link is
followed by hand (its target replaces the path so far; at most 40 links, as the kernel),
so every link in the path is resolved on the host, not in the probe's own file system.
The probe is removed before the check returns. Hard links cannot be told from files.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import posixpath
from typing import Any

import docker
import docker.errors

from deployer import labels as L
from deployer.docker.containers import wrapped
from deployer.docker.lock import LOCK_IMAGE, ensure_lock_image
from deployer.errors import InvalidInput
from deployer.manifest import policy
from deployer.manifest.model import Manifest
from deployer.manifest.problems import format_path

MOUNT = "/host"
MAX_LINKS = 40
_MODE_SYMLINK = 1 << 27  # Go's os.ModeSymlink in the stat's mode


Key = tuple[str | int, ...]


def bind_sources(manifest: Manifest) -> list[tuple[Key, str, bool]]:
    """(key path, host path, read-only) of every bind mount of the manifest, and of every
    host path a named volume's ``driver_opts`` mount (``o: bind``, ``device: ...``)."""
    out: list[tuple[Key, str, bool]] = []
    for svc in manifest.services:
        for i, m in enumerate(svc.volumes):
            if m.type == "bind" and m.source:
                out.append((("services", svc.name, "volumes", i), m.source, m.read_only))
    for v in manifest.volumes:
        if v.external:
            continue
        for source, read_only in policy.volume_host_paths(v.driver, dict(v.driver_opts)):
            out.append((("volumes", v.name, "driver_opts"), source, read_only))
    return out


def lending_containers(manifest: Manifest) -> list[tuple[Key, str, bool]]:
    """(key path, container name, read-only) of every ``volumes_from: container:NAME``:
    a container of the host the service takes every mount of."""
    out: list[tuple[Key, str, bool]] = []
    for svc in manifest.services:
        for i, (kind, name, mode) in enumerate(svc.volume_lenders):
            if kind == "container":
                out.append((("services", svc.name, "volumes_from", i), name, mode == "ro"))
    return out


def lent_sources(
    manifest: Manifest, api: docker.APIClient, host: str
) -> list[tuple[Key, str, str, bool]]:
    """(key path, container, host path, read-only) of every host path the containers of
    ``volumes_from: container:NAME`` mount: their binds, and what their volumes' driver
    options mount. A container that does not exist lends nothing (the engine refuses it)."""
    out: list[tuple[Key, str, str, bool]] = []
    for key, name, ro in lending_containers(manifest):
        with wrapped(f"look at the mounts of container {name}", host):
            try:
                mounts = api.inspect_container(name).get("Mounts") or []
            except docker.errors.NotFound:
                continue
            for m in mounts:
                read_only = ro or m.get("RW") is False
                if m.get("Type") == "bind" and m.get("Source"):
                    out.append((key, name, str(m["Source"]), read_only))
                elif m.get("Type") == "volume" and m.get("Name"):
                    try:
                        vol = api.inspect_volume(m["Name"])
                    except docker.errors.NotFound:
                        continue
                    opts = {str(k): str(v) for k, v in (vol.get("Options") or {}).items()}
                    for source, vro in policy.volume_host_paths(vol.get("Driver"), opts):
                        out.append((key, name, source, read_only or vro))
    return out


def volume_sources(
    manifest: Manifest, api: docker.APIClient, host: str
) -> list[tuple[Key, str, str, bool]]:
    """(key path, volume, host path, read-only) of every host path that a named volume the
    services mount, as it exists on ``host`` now, mounts through its driver options
    (``o: bind`` with ``device:``, an overlay's directories, a device): an ``external``
    one above all, whose options the manifest never states, and a volume made earlier
    with other options than the manifest's. A volume not there yet mounts what the
    manifest says (judged when it was read)."""
    from deployer.naming import app_volume_name

    out: list[tuple[Key, str, str, bool]] = []
    seen: set[str] = set()
    for svc in manifest.services:
        for i, m in enumerate(svc.volumes):
            if m.type != "volume" or not m.source:
                continue
            real = app_volume_name(manifest, m.source)
            if real in seen:
                continue
            seen.add(real)
            with wrapped(f"look at the volume {real}", host):
                try:
                    vol = api.inspect_volume(real)
                except docker.errors.NotFound:
                    continue
            opts = {str(k): str(v) for k, v in (vol.get("Options") or {}).items()}
            for source, ro in policy.volume_host_paths(vol.get("Driver"), opts):
                key = ("services", svc.name, "volumes", i)
                out.append((key, real, source, ro or m.read_only))
    return out


def _stat(api: docker.APIClient, probe: str, path: str) -> dict[str, Any] | None:
    res = api.head(api._url("/containers/{0}/archive", probe), params={"path": path})
    if res.status_code == 404:
        return None
    if res.status_code == 500:  # the engine's own resolution failed: a loop, mostly
        shown = path[len(MOUNT) :] or "/"
        raise InvalidInput(
            f'the host path "{shown}" cannot be resolved by the engine: too many levels of '
            "symlinks, or a link it cannot follow",
            hint="bind the path the link points to, or fix the link on the host",
        )
    api._raise_for_status(res)
    header = res.headers.get("X-Docker-Container-Path-Stat", "")
    try:
        stat: dict[str, Any] = json.loads(base64.b64decode(header) or b"{}")
    except (binascii.Error, ValueError):
        return None
    return stat


def _split(path: str) -> list[str]:
    text = policy.canonical(path)
    return [] if text == "/" else text.strip("/").split("/")


def resolve(api: docker.APIClient, probe: str, path: str) -> str:
    """``path`` on the host with every symlink in it followed (the rest as written from the
    first component that does not exist)."""
    parts = _split(path)
    done = "/"
    links = 0
    i = 0
    while i < len(parts):
        here = posixpath.join(done, parts[i])
        stat = _stat(api, probe, MOUNT + here)
        if stat is None:
            return policy.canonical(posixpath.join(here, *parts[i + 1 :]))
        target = stat.get("linkTarget") or ""
        if int(stat.get("mode") or 0) & _MODE_SYMLINK and target:
            links += 1
            if links > MAX_LINKS:
                raise InvalidInput(f'the host path "{path}" has too many levels of symlinks')
            # the engine evaluates the link in the probe's file system: under /host it is
            # the host's path; outside, an absolute target the probe does not have
            if target == MOUNT or target.startswith(MOUNT + "/"):
                target = target[len(MOUNT) :] or "/"
            parts = _split(target) + parts[i + 1 :]
            done, i = "/", 0
            continue
        done, i = here, i + 1
    return done


def _where(manifest: Manifest, key: Key) -> str:
    """``file:line:column: services.<service>.volumes[<i>]:`` of a volume (or
    ``volumes.<name>.driver_opts``), as the manifest writes it (the key path alone when the
    file cannot be read again)."""
    shown = format_path(key) + ":"
    try:
        from deployer.manifest.loader import read

        at = read(manifest.path, {}).pos(key)
    except Exception:  # noqa: BLE001 - only the line is lost
        return f"{manifest.path}: {shown}"
    return f"{at.file}:{at.line}:{at.column}: {shown}"


def check_binds(manifest: Manifest, client: docker.DockerClient, host: str) -> None:
    """Refuse (InvalidInput, exit 2) a bind whose source is, on ``host``, a symlink to a path
    the policy refuses and ``policy.allow`` does not accept. Nothing of the app changes."""
    api: docker.APIClient = client.api
    binds = bind_sources(manifest)
    lent = lent_sources(manifest, api, host) if lending_containers(manifest) else []
    held = volume_sources(manifest, api, host)
    if not binds and not lent and not held:
        return
    ensure_lock_image(client, host)
    with wrapped("look at the bind mounts' host paths", host):
        probe = api.create_container(
            LOCK_IMAGE,
            labels={L.MANAGED: "true", L.APP: manifest.app, L.ROLE: "probe"},
            network_disabled=True,
            host_config=api.create_host_config(binds=[f"/:{MOUNT}:ro"]),
        )["Id"]
        try:
            sources = {src for _, src, _ in binds} | {src for _, _, src, _ in (*lent, *held)}
            resolved = {src: resolve(api, probe, src) for src in sources}
        finally:
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_container(probe, force=True)
    allowed = set(manifest.policy_allow)
    for key, name, source, read_only in lent:
        who = (f'the container "{name}" mounts', "volumes_from entry")
        _judge_lent(manifest, host, allowed, key, who, source, resolved[source], read_only)
    for key, name, source, read_only in held:
        who = (
            f'the volume "{name}" (as it is on the host) mounts, through its driver options,',
            "volume",
        )
        _judge_lent(manifest, host, allowed, key, who, source, resolved[source], read_only)
    for key, source, read_only in binds:
        real = resolved[source]
        if real == policy.canonical(source):
            continue  # no link: the manifest's check judged this very path
        missing = [
            (name, why)
            for name, why in policy.needs(real, read_only=read_only)
            if name not in allowed
        ]
        if missing:
            reasons = "; ".join(why for _, why in missing)
            names = " and ".join(f'"{n}"' for n, _ in missing)
            raise InvalidInput(
                f"{_where(manifest, key)} on {host}, the host "
                f'path "{source}" is a symlink to {real}, which the safety policy refuses: '
                f"{reasons}",
                hint=f"bind {real} itself if it is meant, and add {names} to "
                "`policy: {allow: [...]}` if this app really needs it; or remove the bind",
            )


def _judge_lent(
    manifest: Manifest,
    host: str,
    allowed: set[str],
    key: Key,
    who: tuple[str, str],
    source: str,
    real: str,
    read_only: bool,
) -> None:
    """Refuse a host path a ``volumes_from`` container lends, or an existing volume's
    driver options mount, that the policy refuses: the service would mount it as if it
    bound it itself. ``who``: who mounts it ('the container "x" mounts'), and what the hint
    says to remove."""
    what, remove = who
    missing: dict[str, str] = {}
    for path in dict.fromkeys((policy.canonical(source), real)):
        for entry, why in policy.needs(path, read_only=read_only):
            if entry not in allowed:
                missing.setdefault(entry, why)
    if not missing:
        return
    reasons = "; ".join(missing.values())
    names = " and ".join(f'"{n}"' for n in missing)
    path = policy.canonical(source)
    shown = path + (f" (a symlink to {real})" if real != path else "")
    raise InvalidInput(
        f"{_where(manifest, key)} on {host}, {what} the host path "
        f"{shown}, which the service would mount too; the safety policy refuses it: {reasons}",
        hint=f"add {names} to `policy: {{allow: [...]}}` if this app really needs it; or "
        f"remove the {remove}",
    )
