"""Release records of a Swarm environment: Swarm configs named
``<app>_<environment>_release-<id>`` (readable from any manager), the newest
``keep_releases`` kept; and the labels a release puts on the services it deploys."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import time

import docker.errors

from deployer import labels as L
from deployer import ownership
from deployer.engine import Release
from deployer.errors import DeployerError
from deployer.manifest.model import host_form
from deployer.releases import merge_request_text, release_record
from deployer.result import DeployResult
from deployer.swarm import spec as S
from deployer.swarm.api import SwarmApi

_NOT_STORED = ("app", "environment", "files")


def release_labels(sw: SwarmApi, release: str) -> dict[str, str]:
    """The labels a release puts on the services and jobs it deploys (empty ones left out)."""
    c = sw.context
    out = {L.RELEASE: release, L.TIME: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for key, value in (
        (L.COMMIT, c.commit_sha),
        (L.PIPELINE, c.pipeline_url),
        (L.JOB, c.job_url),
        (L.USER, c.user),
        (L.PROJECT, c.project_path),
        (L.MR, merge_request_text(c)),
    ):
        if value:
            out[key] = value
    return out


# -- the records ------------------------------------------------------------------------


def _release_prefix(sw: SwarmApi) -> str:
    return f"{sw.manifest.app}_{host_form(sw.manifest.environment.name)}_release-"


def record_release(sw: SwarmApi, result: DeployResult) -> None:
    m = sw.manifest
    assert result.release is not None
    release = release_record(
        m,
        sw.context,
        result.release,
        digests=dict(result.digests),
        config_hashes={s.name: s.config_hash() for s in m.services},
        replicas={s.name: s.replicas for s in m.services},
        created_at=time.time(),
    )
    if not release.project:  # outside CI: the app stays the project's that deployed it
        earlier = releases(sw)
        release = ownership.keep(release, earlier[-1] if earlier else None)
    # a Swarm config holds the record without the app, environment and files (as written
    # by every earlier release: its labels name the app and environment)
    data = {k: v for k, v in dataclasses.asdict(release).items() if k not in _NOT_STORED}
    labels = {
        L.MANAGED: "true",
        L.ROLE: L.ROLE_RELEASE,
        L.APP: m.app,
        L.ENVIRONMENT: m.environment.name,
        L.RELEASE: result.release,
        S.STACK_NAMESPACE: m.app,
    }
    name = (_release_prefix(sw) + result.release)[:64]
    with sw.wrapped(f"recording release {result.release}"):
        sw.api.create_config(name, json.dumps(data).encode(), labels=labels)
    _prune_releases(sw)
    if any(s.files for s in sw.manifest.services):
        with contextlib.suppress(DeployerError):
            sw.prune_files()


def releases(sw: SwarmApi) -> list[Release]:
    """The recorded releases of the app and environment, oldest first."""
    m = sw.manifest
    with sw.wrapped("listing releases"):
        found = sw.api.configs(
            filters={"label": [f"{L.ROLE}={L.ROLE_RELEASE}", f"{L.APP}={m.app}"]}
        )
    out = []
    for cfg in found:
        if (cfg["Spec"].get("Labels") or {}).get(L.ENVIRONMENT) != m.environment.name:
            continue
        try:
            raw = json.loads(base64.b64decode(cfg["Spec"].get("Data", "")))
        except ValueError:
            continue
        out.append(
            Release(
                id=str(raw["id"]),
                app=m.app,
                environment=m.environment.name,
                digests=dict(raw.get("digests") or {}),
                config_hashes=dict(raw.get("config_hashes") or {}),
                replicas=dict(raw.get("replicas") or {}),
                commit=str(raw.get("commit", "")),
                pipeline_url=str(raw.get("pipeline_url", "")),
                job_url=str(raw.get("job_url", "")),
                merge_request=str(raw.get("merge_request", "")),
                user=str(raw.get("user", "")),
                created_at=float(raw.get("created_at", 0.0)),
                project=str(raw.get("project", "")),
                project_id=str(raw.get("project_id", "")),
            )
        )
    return sorted(out, key=lambda r: r.id)


def _prune_releases(sw: SwarmApi) -> None:
    keep = max(1, sw.manifest.rollout.keep_releases) + 1  # the current one, and N back
    prefix = _release_prefix(sw)
    with sw.wrapped("listing releases"):
        found = [
            c
            for c in sw.api.configs(filters={"name": prefix})
            if c["Spec"]["Name"].startswith(prefix)
        ]
    found.sort(key=lambda c: c["Spec"]["Name"])
    for cfg in found[:-keep]:
        with sw.wrapped("pruning old releases"), contextlib.suppress(docker.errors.NotFound):
            sw.api.remove_config(cfg["ID"])
