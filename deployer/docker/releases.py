"""Release records on a host, and retention.

A release is recorded as an empty named volume ``deployer-release-<app>-<env>-<id>``
whose labels hold the release as JSON: it lives on the host itself (no extra store),
survives the deployer's container, and is listed with one filtered API call.
Retention keeps the newest ``keep_releases`` releases with their kept containers and
images; it removes older ones of this app and environment only, and never an image a
kept release or any container still uses (the engine refuses, and we do not force).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import docker
import docker.errors

from deployer import labels as L
from deployer.docker.containers import wrapped
from deployer.engine import KEPT_SEP, Release
from deployer.manifest.model import host_form

RECORD = L.PREFIX + "release-record"


def record_name(app: str, environment: str, release_id: str) -> str:
    return f"deployer-release-{app}-{host_form(environment)}-{release_id}"


# Kept out of the JSON: an older deployer reads the record as ``Release(**data)``, and a
# key it does not know would hide the release from it (``rollback`` of an older version).
_LABELLED = {"project": L.PROJECT, "project_id": L.PROJECT_ID}


def record(client: docker.DockerClient, host: str, release: Release) -> None:
    data = dataclasses.asdict(release)
    labels = {
        L.MANAGED: "true",
        L.ROLE: L.ROLE_RELEASE,
        L.APP: release.app,
        L.ENVIRONMENT: release.environment,
        L.RELEASE: release.id,
    }
    for key, label in _LABELLED.items():
        if data.pop(key):
            labels[label] = getattr(release, key)
    labels[RECORD] = json.dumps(data, sort_keys=True)
    with wrapped(f"record release {release.id}", host):
        client.api.create_volume(
            record_name(release.app, release.environment, release.id),
            driver="local",
            labels=labels,
        )


def _from_labels(labels: dict[str, str]) -> Release | None:
    try:
        data = json.loads(labels[RECORD])
        data.update({key: labels.get(label, "") for key, label in _LABELLED.items()})
        return Release(**data)
    except (KeyError, ValueError, TypeError):
        return None


def list_releases(client: docker.DockerClient, host: str, app: str, env: str) -> list[Release]:
    """This app's releases on the host, oldest first (ids sort by time)."""
    with wrapped("list releases", host):
        res = client.api.volumes(
            filters={
                "label": [f"{L.ROLE}={L.ROLE_RELEASE}", f"{L.APP}={app}", f"{L.ENVIRONMENT}={env}"]
            }
        )
    out = []
    for vol in res.get("Volumes") or []:
        rel = _from_labels(vol.get("Labels") or {})
        if rel and rel.app == app and rel.environment == env:
            out.append(rel)
    return sorted(out, key=lambda r: r.id)


def prune(  # noqa: C901, PLR0912 (retention rules in order)
    client: docker.DockerClient, host: str, app: str, env: str, keep: Sequence[Release]
) -> list[str]:
    """Remove what releases older than ``keep`` left behind; returns what was removed."""
    api: docker.APIClient = client.api
    keep_ids = {r.id for r in keep}
    needed = {d for r in keep for d in r.digests.values()}
    removed: list[str] = []
    candidates: set[str] = set()
    with wrapped("prune old releases", host):
        containers = L.not_swarm_tasks(
            api.containers(
                all=True, filters={"label": [f"{L.APP}={app}", f"{L.ENVIRONMENT}={env}"]}
            )
        )
        doomed: list[tuple[str, str, dict[str, str]]] = []  # (id, name, labels)
        for c in containers:
            name = (c.get("Names") or ["/"])[0].lstrip("/")
            labels = c.get("Labels") or {}
            if KEPT_SEP not in name or c.get("State") == "running":
                continue
            if labels.get(L.ROLE) in (L.ROLE_LOCK, L.ROLE_TASK):
                continue
            if labels.get(L.RELEASE) in keep_ids:
                continue
            doomed.append((c["Id"], name, labels))
        for (_, name, labels), gone in zip(
            doomed, _remove_containers(api, [d[0] for d in doomed]), strict=True
        ):
            if not gone:
                continue
            removed.append(f"container {name}")
            if labels.get(L.DIGEST):
                candidates.add(labels[L.DIGEST])
        for rel in list_releases(client, host, app, env):
            if rel.id in keep_ids:
                continue
            candidates.update(rel.digests.values())
            try:
                api.remove_volume(record_name(app, env, rel.id))
                removed.append(f"release {rel.id}")
            except docker.errors.NotFound:
                pass
        in_use = {c.get("ImageID") for c in api.containers(all=True)}
        for ref in sorted(candidates - needed):
            try:
                image_id = api.inspect_image(ref)["Id"]
            except docker.errors.NotFound:
                continue
            if image_id in in_use or any(_same_image(api, image_id, d) for d in needed):
                continue
            try:
                api.remove_image(ref)
                removed.append(f"image {ref}")
            except docker.errors.APIError as e:
                if e.status_code not in (404, 409):
                    raise
        from deployer.docker import files as repo_files

        kept_files: dict[str, list[dict[str, object]]] = {}
        for r in keep:
            for svc, recs in r.files.items():
                kept_files.setdefault(f"{r.id}/{svc}", []).extend(dict(x) for x in recs)
        removed += repo_files.prune(api, app, env, kept_files)
    return removed


# Removals of one prune in flight at once: a release of 10 services left 10 stopped
# containers, which one at a time took 0.25 s at the end of every deploy.
REMOVE_PARALLEL = 8


def _remove_containers(api: docker.APIClient, ids: Sequence[str]) -> list[bool]:
    """Remove the (stopped) containers ``ids`` side by side; for each, whether it was
    removed (False: already gone). Any other failure is raised."""

    def remove(cid: str) -> bool:
        try:
            api.remove_container(cid)
        except docker.errors.NotFound:
            return False
        return True

    if len(ids) <= 1:
        return [remove(cid) for cid in ids]
    with ThreadPoolExecutor(max_workers=min(REMOVE_PARALLEL, len(ids))) as pool:
        return list(pool.map(remove, ids))


def _same_image(api: docker.APIClient, image_id: str, ref: str) -> bool:
    try:
        return bool(api.inspect_image(ref)["Id"] == image_id)
    except docker.errors.NotFound:
        return False
