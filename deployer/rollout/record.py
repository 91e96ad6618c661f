"""The end of a deploy that worked: the release recorded on every host (compose's state as
release ``0`` on the first deploy of an app compose started), then retention."""

from __future__ import annotations

from deployer import ownership
from deployer.engine import Release
from deployer.errors import DeployerError
from deployer.releases import release_record
from deployer.result import Outcome, StepStatus
from deployer.rollout.state import RunState


def finish(r: RunState) -> None:
    if r.kind == "restart":  # the same images and configuration: no new release
        r.result.outcome = Outcome.DEPLOYED
        r.line(f"restarted by {r.context.holder}; no release recorded")
        _remove_restarted(r)
        return
    previous = _previous_release(r) or _record_adopted(r)
    digests = dict(previous.digests) if previous else {}
    digests.update(r.plan.digests)
    replicas = dict(previous.replicas) if previous else {}
    hashes = dict(previous.config_hashes) if previous else {}
    files = dict(previous.files) if previous else {}
    for svc in r.manifest.services:
        if svc.name in r.plan.digests:
            replicas[svc.name] = svc.replicas
            hashes[svc.name] = svc.config_hash()
            files[svc.name] = [f.record() for f in svc.files]
    files = {k: v for k, v in files.items() if v}
    release = release_record(
        r.manifest,
        r.context,
        r.release_id,
        digests=digests,
        config_hashes=hashes,
        replicas=replicas,
        created_at=r.wall(),
        files=files,
    )
    release = ownership.keep(release, previous)
    r.result.previous_release = previous.id if previous else None
    for host in r.order:
        rec = r.step(host, f"record release {release.id}", "release")
        try:
            r.hosts[host].record_release(release)
        except DeployerError as e:  # the new version runs and is healthy: keep it
            r.done(rec, StepStatus.FAILED, e.message)
            r.line(f"could not record the release (rollback will not list it): {e.message}", host)
            continue
        r.done(rec)
    r.result.release = release.id
    r.result.outcome = Outcome.DEPLOYED
    r.line(f"release {release.id} recorded on {len(r.order)} host(s)")
    _retention(r)


def _remove_restarted(r: RunState) -> None:
    """The old containers of a restart that worked are removed: they carry the release
    that runs (its image and configuration), which nothing takes back from them, and
    retention keeps that release's containers: each restart left one more, stopped, for
    as long as the release was kept."""
    for host in r.order:
        engine = r.hosts[host]
        for cid in r.runs[host].restarted:
            try:
                engine.remove(cid)
            except DeployerError as e:  # the restart worked: never fail it for this
                r.line(f"could not remove the old container {cid[:12]}: {e.message}", host)


def _record_adopted(r: RunState) -> Release | None:
    """The first deploy of an app docker compose started: what compose ran is recorded
    as release ``0`` (before this one), so ``rollback`` can return to it."""
    if r.kind != "deploy":
        return None
    steps = [s for hp in r.plan.hosts for s in hp.steps if s.adopted]
    digests: dict[str, str] = {}
    replicas: dict[str, int] = {}
    for s in steps:
        old = s.old_digest or ""
        if s.service in digests or "@sha256:" not in old or ", " in old:
            continue  # several images, or one known by no registry digest
        digests[s.service] = old
        replicas[s.service] = s.replicas_before
    if not digests:
        return None
    release = Release(
        id="0",
        app=r.manifest.app,
        environment=r.manifest.environment.name,
        digests=digests,
        replicas=replicas,
        user="docker compose",
        created_at=r.result.started_at,
    )
    for host in r.order:
        try:
            r.hosts[host].record_release(release)
        except DeployerError as e:
            r.line(f"could not record compose's state as release 0: {e.message}", host)
            return None
    r.line("compose's state recorded as release 0 (rollback --to 0 returns to it)")
    return release


def _previous_release(r: RunState) -> Release | None:
    rels = r.hosts[r.order[0]].releases(r.manifest.app, r.manifest.environment.name)
    return rels[-1] if rels else None


def _retention(r: RunState) -> None:
    keep_n = max(1, r.manifest.rollout.keep_releases)
    for host in r.order:
        rec = r.step(host, "prune", "prune")
        engine = r.hosts[host]
        try:
            rels = engine.releases(r.manifest.app, r.manifest.environment.name)
            keep = list(rels[-keep_n:])
            removed = engine.prune(r.manifest.app, r.manifest.environment.name, keep)
        except DeployerError as e:  # retention never fails a deploy that worked
            r.done(rec, StepStatus.FAILED, e.message)
            r.line(f"retention skipped: {e.message}", host)
            continue
        r.done(rec, detail=f"kept {len(keep)} release(s), removed {len(removed)}")
        if removed:
            r.line(f"retention: removed {', '.join(removed)}", host)
