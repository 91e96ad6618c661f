"""How the replicas of one service are replaced: start-first (the new container beside the
old one, healthy, the old one out of the aliases, drained, stopped) or stop-first (fixed
host ports); then the switch of names, the watch after it, and retiring what is removed.
Every change is journalled with its undo."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import partial

from deployer import labels as L
from deployer.engine import (
    COMPLETED,
    HealthOutcome,
    exited,
    kept_name,
    next_name,
    service_networks,
)
from deployer.manifest.model import Service
from deployer.plan import ObservedContainer, Step
from deployer.releases import merge_request_text
from deployer.rollout import hooks
from deployer.rollout.joins import follows_replaced, stopping
from deployer.rollout.state import DEFAULT_MONITOR, RunState, StepFailure, grace_of


@dataclass
class Item:
    """One replica to roll: its canonical name, the container it replaces (if any)."""

    replica: int
    canonical: str
    old: ObservedContainer | None


def labels(r: RunState, svc: Service, digest: str, replica: int) -> dict[str, str]:
    ctx = r.context
    return {
        L.MANAGED: "true",
        L.APP: r.manifest.app,
        L.ENVIRONMENT: r.manifest.environment.name,
        L.SERVICE: svc.name,
        L.REPLICA: str(replica),
        L.RELEASE: r.release_id,
        L.DIGEST: digest,
        L.IMAGE: svc.image,
        L.CONFIG_HASH: svc.config_hash(),
        L.CONFIG_PARTS: json.dumps(svc.config_parts(), sort_keys=True),
        L.ROLE: L.ROLE_CURRENT,
        L.COMMIT: ctx.commit_sha,
        L.PIPELINE: ctx.pipeline_url,
        L.JOB: ctx.job_url,
        L.MR: merge_request_text(ctx),
        L.USER: ctx.user,
        L.TIME: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.wall())),
        L.PROJECT: ctx.project_path,
    }


def create(
    r: RunState, host: str, svc: Service, step: Step, item: Item, aliases: bool = True
) -> str:
    engine = r.hosts[host]
    digest = step.new_digest or r.plan.digests[svc.name]
    new_labels = labels(r, svc, digest, item.replica)
    if r.kind == "restart" and item.old is not None and item.old.release:
        # the same image and configuration: still the release it restarts (the one
        # `status` shows and `rollback --to` takes), not a release nobody recorded
        new_labels[L.RELEASE] = item.old.release
    if r.manifest.compose_project:  # `docker compose ps` still lists it: teams can go back
        new_labels[L.COMPOSE_PROJECT] = r.manifest.compose_project
        new_labels[L.COMPOSE_SERVICE] = svc.name
        new_labels[L.COMPOSE_NUMBER] = str(item.replica)
        new_labels[L.COMPOSE_ONEOFF] = "False"
        # the deployer's own hash: compose v2's `ps` lists the container, and its `up -d`
        # (whose hash differs) recreates it when a team takes the app back
        new_labels[L.COMPOSE_CONFIG_HASH] = svc.config_hash()
    cid = engine.create(
        r.manifest,
        svc,
        digest,
        item.replica,
        new_labels,
        next_name(item.canonical, r.release_id),
        anonymous_volumes_from=item.old.id if item.old else None,
        aliases=aliases,
    )
    r.do(host, f"remove new {item.canonical}", lambda: engine.remove(cid))
    r.runs[host].new_containers.append(cid)
    return cid


def gate(r: RunState, host: str, svc: Service, cid: str, item: Item) -> None:
    engine = r.hosts[host]
    pol = r.manifest.rollout
    if svc.completes:
        r.line(
            f"{item.canonical}: waiting until it completes (up to {pol.health_timeout:g}s)", host
        )
        out = engine.wait_completed(cid, pol.health_timeout)
    else:
        r.line(f"{item.canonical}: waiting until healthy (up to {pol.health_timeout:g}s)", host)
        hc = svc.healthcheck
        start_interval = hc.start_interval if hc is not None else None
        out = engine.wait_healthy(cid, pol.health_timeout, pol.healthy_after, start_interval)
        if svc.may_exit and not out.healthy and out.status == exited(0):
            out = HealthOutcome(True, COMPLETED, "", out.seconds)  # as it may
    if not out.healthy:
        detail = out.detail.strip()
        r.line(f"{item.canonical}: new container is {out.status}", host)
        for text in detail.splitlines()[-25:]:
            r.line(f"  | {text}", host)
        raise StepFailure(
            f"{host}: {svc.name} replica {item.replica}: new container is {out.status}",
            excerpt=detail,
        )
    r.line(f"{item.canonical}: {out.status} after {out.seconds:.1f}s", host)


def start_first(r: RunState, host: str, svc: Service, step: Step, group: list[Item]) -> list[str]:
    engine = r.hosts[host]
    new: list[str] = []
    with r.starting(host):
        for item in group:
            # Not reachable by the service name until healthy: no request meets it starting.
            cid = create(r, host, svc, step, item, aliases=False)
            engine.start(cid)
            new.append(cid)
            if svc.pre_stop:  # a rollback stops it after them, before it removes it
                halt = partial(hooks.stop, r, host, svc, cid, item.canonical, grace_of(svc))
                r.do(host, f"stop new {item.canonical}", halt)
            hooks.post_start(r, host, svc, cid, item.canonical)
            r.line(f"{item.canonical}: started the new container beside the old one", host)
    names = {net: list(a) for net, a in service_networks(r.manifest, svc)}
    for item, cid in zip(group, new, strict=True):
        gate(r, host, svc, cid, item)
        if names:
            engine.attach_aliases(cid, names)
    olds = [(item, item.old) for item in group if item.old is not None]
    running = [(item, old) for item, old in olds if old.running]
    drained = _edge_switch(r, host, svc, group, new, drain=True)
    for _item, old in running:
        had = engine.detach_aliases(old.id)
        r.do(host, f"aliases of {old.name}", partial(engine.attach_aliases, old.id, had))
    if running and r.manifest.rollout.drain > 0 and not drained:
        r.line(f"draining the old container(s) for {r.manifest.rollout.drain:g}s", host)
        r.sleep(r.manifest.rollout.drain)
    _switch(r, host, svc, group, new, stop_old=True)
    return new


def stop_first(r: RunState, host: str, svc: Service, step: Step, group: list[Item]) -> list[str]:
    engine = r.hosts[host]
    grace = grace_of(svc)
    with r.starting(host):
        new = [create(r, host, svc, step, item) for item in group]
        for item in group:
            if item.old is not None and item.old.running:
                stopping(r, host, svc, item.old)
                hooks.pre_stop(r, host, svc, item.old.id, item.old.name, grace)
                engine.stop(item.old.id, grace)
                if not follows_replaced(r, host, svc):
                    again = partial(hooks.start_again, r, host, svc, item.old.id, item.old.name)
                    r.do(host, f"restart {item.old.name}", again)
        for item, cid in zip(group, new, strict=True):
            engine.start(cid)
            halt = partial(hooks.stop, r, host, svc, cid, item.canonical, grace)
            r.do(host, f"stop new {item.canonical}", halt)
            r.line(f"{item.canonical}: stopped the old container, started the new one", host)
            hooks.post_start(r, host, svc, cid, item.canonical)
    for item, cid in zip(group, new, strict=True):
        gate(r, host, svc, cid, item)
    _edge_switch(r, host, svc, group, new, drain=False)
    _switch(r, host, svc, group, new, stop_old=False)
    return new


def monitor(r: RunState, host: str, svc: Service, switched: list[tuple[Item, str]]) -> None:
    """After the switch, every new container must keep running, not restart, and pass
    its healthchecks for ``update_config.monitor`` seconds, or the deploy rolls back."""
    seconds = svc.update_config.monitor
    seconds = DEFAULT_MONITOR if seconds is None else seconds
    if seconds <= 0 or not switched or svc.completes:  # a completed run exited: as it should
        return
    r.line(f"{svc.name}: watching the new container(s) for {seconds:g}s", host)
    failed = r.hosts[host].watch([cid for _, cid in switched], seconds, exit_ok=svc.may_exit)
    if failed is None:
        r.line(f"{svc.name}: stayed healthy for {seconds:g}s", host)
        return
    cid, out = failed
    item = next(i for i, c in switched if c == cid)
    detail = out.detail.strip()
    r.line(f"{item.canonical}: {out.status} after the switch", host)
    for text in detail.splitlines()[-25:]:
        r.line(f"  | {text}", host)
    raise StepFailure(
        f"{host}: {svc.name} replica {item.replica}: {out.status} within "
        f"{seconds:g}s after the switch (update_config.monitor)",
        excerpt=detail,
    )


def _edge_switch(
    r: RunState, host: str, svc: Service, group: list[Item], new: list[str], drain: bool
) -> bool:
    """A public service: its route moves to the new containers (each one must answer on
    the route's port first), then the old ones drain. False when not proxied."""
    if r.edge is None or svc.proxy is None:
        return False
    moves = [
        (item.replica, cid, item.old.id if item.old else None)
        for item, cid in zip(group, new, strict=True)
    ]
    r.edge.switch(host, svc, moves, r.do, r.manifest.rollout.health_timeout, drain=drain)
    return True


def _switch(
    r: RunState, host: str, svc: Service, group: list[Item], new: list[str], stop_old: bool
) -> None:
    """Old containers become kept (stopped, renamed); the new ones take the names."""
    engine = r.hosts[host]
    grace = grace_of(svc)
    for item, cid in zip(group, new, strict=True):
        old = item.old
        if old is not None:
            if stop_old and old.running:
                stopping(r, host, svc, old)
                hooks.pre_stop(r, host, svc, old.id, old.name, grace)
                engine.stop(old.id, grace)
                if not follows_replaced(r, host, svc):
                    again = partial(hooks.start_again, r, host, svc, old.id, old.name)
                    r.do(host, f"restart {old.name}", again)
            # a restart's new container keeps the old one's release, and takes the kept
            # name of that release once a later deploy replaces it: the old one is kept
            # by its id
            release = None if r.kind == "restart" else old.release
            keep_as = kept_name(item.canonical, release, old.id)
            # compose may have started a kept container again: it has that name already
            if old.name != keep_as:
                engine.rename(old.id, keep_as)
                r.do(host, f"rename back {old.name}", partial(engine.rename, old.id, old.name))
            if r.kind == "restart":
                r.runs[host].restarted.append(old.id)
        engine.rename(cid, item.canonical)
        r.do(
            host,
            f"rename away {item.canonical}",
            partial(engine.rename, cid, next_name(item.canonical, r.release_id)),
        )
        r.line(f"{item.canonical}: switched", host)


def retire(r: RunState, host: str, c: ObservedContainer, grace: float) -> None:
    """Scale down / removed service: stop and keep it (renamed) for rollback."""
    engine = r.hosts[host]
    if c.running:
        svc = r.manifest.service(c.service) if c.service in r.manifest.service_names else None
        hooks.pre_stop(r, host, svc, c.id, c.name, grace)
        engine.stop(c.id, grace)
        if svc is None or not follows_replaced(r, host, svc):
            r.do(host, f"restart {c.name}", partial(hooks.start_again, r, host, svc, c.id, c.name))
    engine.rename(c.id, kept_name(c.name, c.release, c.id))
    r.do(host, f"rename back {c.name}", lambda: engine.rename(c.id, c.name))
    r.runs[host].switched = True
    r.line(f"{c.name}: stopped and kept for rollback", host)
