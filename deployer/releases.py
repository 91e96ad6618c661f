"""Release ids, and choosing among the releases recorded on a host: the one to go back to,
and its images. Shared by both engines."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from deployer.context import Context
from deployer.engine import Release
from deployer.errors import InvalidInput
from deployer.manifest.model import Manifest


def choose(releases: list[Release], to: str | None, where: str) -> Release:
    """The release to go back to: ``to`` (an id or a unique prefix), else the previous one."""
    if not releases:
        raise InvalidInput(
            f"no release of this app is recorded on {where}",
            hint="deploy once with `deployer deploy` before rolling back",
        )
    ids = [r.id for r in releases]
    if to:
        found = [r for r in releases if r.id == to] or [r for r in releases if r.id.startswith(to)]
        if len(found) != 1:
            raise InvalidInput(
                f"--to {to}: {'no' if not found else 'more than one'} release matches on {where}",
                hint="the releases kept are: " + ", ".join(reversed(ids)),
            )
        return found[0]
    if len(releases) < 2:
        raise InvalidInput(
            f"only one release ({ids[0]}) is recorded on {where}: nothing to roll back to",
            hint="name a release with --to, or deploy the version you want",
        )
    return releases[-2]


def release_digests(
    release: Release, manifest: Manifest
) -> tuple[dict[str, str], list[str] | None]:
    """The digests ``release`` recorded for the services ``manifest`` still has, and the
    services to limit the plan to (None: all of them)."""
    digests = {s: d for s, d in release.digests.items() if s in manifest.service_names}
    if not digests:
        raise InvalidInput(
            f"release {release.id} has none of the services of {manifest.path}",
            hint="choose another release with --to",
        )
    only = None if len(digests) == len(manifest.services) else sorted(digests)
    return digests, only


def new_release_id(context: Context, now: float | None = None) -> str:
    """A new release id, sortable by time: ``20261123T041502123Z-abc1234`` (both engines)."""
    now = time.time() if now is None else now
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now * 1000) % 1000:03d}Z"
    short = context.commit_short_sha or context.commit_sha[:8] or "local"
    return f"{stamp}-{short}"


def merge_request_text(context: Context) -> str:
    """The merge request as releases and labels show it: ``!12 Title`` (empty: none)."""
    mr = context.merge_request
    return f"!{mr.iid} {mr.title}" if mr else ""


def release_record(  # the one way a release is written down, on both engines
    manifest: Manifest,
    context: Context,
    release_id: str,
    *,
    digests: Mapping[str, str],
    config_hashes: Mapping[str, str],
    replicas: Mapping[str, int],
    created_at: float,
    files: Mapping[str, Sequence[Mapping[str, object]]] | None = None,
) -> Release:
    """The release ``release_id`` of ``manifest``'s app and environment, deployed from
    ``context`` (commit, pipeline, job, merge request, user, GitLab project)."""
    return Release(
        id=release_id,
        app=manifest.app,
        environment=manifest.environment.name,
        digests=digests,
        config_hashes=config_hashes,
        replicas=replicas,
        commit=context.commit_sha,
        pipeline_url=context.pipeline_url,
        job_url=context.job_url,
        merge_request=merge_request_text(context),
        user=context.user,
        created_at=created_at,
        files=files or {},
        project=context.project_path,
        project_id=context.project_id,
    )


def with_release_files(manifest: Manifest, release: Release) -> Manifest:
    """The manifest with the files ``release`` mounted: a rollback mounts the copies of
    that release (still on the hosts: retention keeps them with the release), not the
    checkout's."""
    from dataclasses import replace

    from deployer.manifest.model import FileMount

    services = []
    for svc in manifest.services:
        recs = release.files.get(svc.name)
        if svc.name in release.digests and (recs or svc.files):
            files = tuple(FileMount(**rec) for rec in recs or ())  # type: ignore[arg-type]
            services.append(replace(svc, files=files))
        else:
            services.append(svc)
    return replace(manifest, services=tuple(services))
