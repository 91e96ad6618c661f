"""Files from the repository on a host: content-addressed volumes the deployer owns.

Each packed file or directory (see ``deployer.manifest.pack``) lives in its own volume
``deployer-files-<app>-<env>-<digest>``, written once through the Docker API: a helper
container that is created, never started, mounts the volumes, and ``put_archive`` extracts
the archive into them (the same call over unix, TCP+TLS and SSH; no scp, no shell on the
host). The archive's last entry, ``done``, marks a complete copy: a copy interrupted half
way is written again. Containers bind ``<volume mountpoint>/c`` read-only at the target.

Retention removes the volumes no kept release and no remaining container uses.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import docker
import docker.errors

from deployer import labels as L
from deployer.docker.transport import wrapped
from deployer.errors import DeployFailed
from deployer.manifest import pack as F
from deployer.manifest.model import FileMount, Manifest

ROLE_FILES = "files"
ROLE_HELPER = "files-helper"
DIGEST = L.PREFIX + "files-digest"
USED = L.PREFIX + "files"  # on containers: JSON list of the digests they mount


def volume_name(app: str, env: str, digest: str) -> str:
    return f"deployer-files-{app}-{env}-{digest[:32]}"


def archive_of(fm: FileMount) -> bytes:
    """The archive of ``fm`` from its source, checked against the digest planned."""
    if fm.content is not None:
        data = F.pack_bytes(fm.content.encode(), fm.mode or 0o444, fm.uid, fm.gid)
    elif fm.source is not None:
        data = F.pack_path(fm.source, fm.mode, fm.uid, fm.gid)
    else:
        raise F.PackError("its content is not available here")
    if F.digest(data) != fm.digest:
        raise F.PackError("it changed while the deploy ran")
    return data


def raw_content(fm: FileMount) -> bytes:
    """The bytes of a single file (for a Swarm secret or config), checked against the
    digest planned; ValueError when they cannot be had or changed."""
    if fm.directory:
        raise F.PackError("it is a directory")
    archive_of(fm)  # the same bytes, mode and owner as planned
    if fm.content is not None:
        return fm.content.encode()
    assert fm.source is not None
    return F.read_source(fm.source)


def used_label(files: Iterable[FileMount]) -> str:
    return json.dumps(sorted({f.digest for f in files}))


def ship(
    client: docker.DockerClient, host: str, manifest: Manifest, image: str | None = None
) -> list[str]:
    """Make every file the manifest's services mount present on the host; returns the
    labels of what was written (``file ./nginx.conf``)."""
    app, env = manifest.app, manifest.environment.name
    wanted: dict[str, FileMount] = {}
    for svc in manifest.services:
        for fm in svc.files:
            wanted.setdefault(fm.digest, fm)
    if not wanted:
        return []
    api: docker.APIClient = client.api
    written: list[str] = []
    with wrapped("ship files", host):
        have = {
            v["Name"]
            for v in api.volumes(
                filters={
                    "label": [f"{L.ROLE}={ROLE_FILES}", f"{L.APP}={app}", f"{L.ENVIRONMENT}={env}"]
                }
            ).get("Volumes")
            or []
        }
        order = sorted(wanted)
        for d in order:
            name = volume_name(app, env, d)
            if name not in have:
                fm = wanted[d]
                api.create_volume(
                    name,
                    driver="local",
                    labels={
                        L.MANAGED: "true",
                        L.ROLE: ROLE_FILES,
                        L.APP: app,
                        L.ENVIRONMENT: env,
                        DIGEST: d,
                        L.PREFIX + "files-name": fm.label,
                    },
                )
        helper = api.create_container(
            image or _any_image(api),
            command=["/deployer-files-helper-is-never-started"],
            entrypoint=[],
            labels={
                L.MANAGED: "true",
                L.ROLE: ROLE_HELPER,
                L.APP: app,
                L.ENVIRONMENT: env,
            },
            host_config=api.create_host_config(
                mounts=[
                    {"Type": "volume", "Source": volume_name(app, env, d), "Target": f"/v/{i}"}
                    for i, d in enumerate(order)
                ],
                network_mode="none",
            ),
            network_disabled=True,
            use_config_proxy=False,
        )["Id"]
        try:
            for i, d in enumerate(order):
                if _complete(api, helper, f"/v/{i}"):
                    continue
                fm = wanted[d]
                try:
                    data = archive_of(fm)
                except F.PackError as e:
                    raise DeployFailed(
                        f"{host}: {fm.label} (for {fm.target}) cannot be shipped: {e}",
                        hint="deploy from a checkout that has it",
                    ) from e
                if not api.put_archive(helper, f"/v/{i}", data):
                    raise DeployFailed(f"{host}: writing {fm.label} failed")
                written.append(fm.label)
        finally:
            with contextlib.suppress(docker.errors.APIError):
                api.remove_container(helper, force=True)
    return written


def _complete(api: docker.APIClient, cid: str, path: str) -> bool:
    try:
        stream, _ = api.get_archive(cid, f"{path}/{F.DONE}")
    except docker.errors.NotFound:
        return False
    for _ in stream:
        pass
    return True


def _any_image(api: docker.APIClient) -> str:
    images = api.images(quiet=True)
    if not images:
        raise DeployFailed("no image on the host to write files with")
    return str(images[0])


def mounts(
    api: docker.APIClient, manifest: Manifest, files: Sequence[FileMount]
) -> list[dict[str, Any]]:
    """The read-only bind mounts of ``files`` (their volumes must exist: see ``ship``)."""
    out: list[dict[str, Any]] = []
    points: dict[str, str] = {}
    for fm in files:
        name = volume_name(manifest.app, manifest.environment.name, fm.digest)
        if name not in points:
            try:
                points[name] = api.inspect_volume(name)["Mountpoint"]
            except docker.errors.NotFound as e:
                raise DeployFailed(
                    f"the copy of {fm.label} is not on the host (volume {name})",
                    hint="deploy again: the deploy ships it",
                ) from e
        out.append(
            {
                "Type": "bind",
                "Source": f"{points[name]}/{F.CONTENT}",
                "Target": fm.target,
                "ReadOnly": True,
            }
        )
    return out


def prune(
    api: docker.APIClient, app: str, env: str, keep_files: Mapping[str, Iterable[Mapping[str, Any]]]
) -> list[str]:
    """Remove the file volumes of this app that no kept release and no container uses."""
    needed = {str(r.get("digest")) for recs in keep_files.values() for r in recs}
    for c in L.not_swarm_tasks(
        api.containers(all=True, filters={"label": [f"{L.APP}={app}", f"{L.ENVIRONMENT}={env}"]})
    ):
        try:
            needed.update(json.loads((c.get("Labels") or {}).get(USED) or "[]"))
        except ValueError:
            continue
    removed: list[str] = []
    vols = (
        api.volumes(
            filters={
                "label": [f"{L.ROLE}={ROLE_FILES}", f"{L.APP}={app}", f"{L.ENVIRONMENT}={env}"]
            }
        ).get("Volumes")
        or []
    )
    for v in vols:
        labels = v.get("Labels") or {}
        if labels.get(DIGEST) in needed:
            continue
        try:
            api.remove_volume(v["Name"])
        except docker.errors.APIError as e:
            if e.status_code not in (404, 409):
                raise
            continue
        removed.append(f"files {labels.get(L.PREFIX + 'files-name', v['Name'])}")
    return removed
