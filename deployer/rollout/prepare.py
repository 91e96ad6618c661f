"""What comes before and around the services' rollout: the leftovers of an interrupted
deploy, the pulls (nothing changes if one fails), the app's networks and volumes, and the
before-/after-deploy tasks."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from deployer import labels as L
from deployer.engine import service_networks
from deployer.errors import Blocked, DeployerError
from deployer.manifest.model import RegistryAuth, Task
from deployer.plan import Action, Leftover
from deployer.result import StepStatus
from deployer.rollout import hooks
from deployer.rollout.state import DEFAULT_GRACE, RunState, StepFailure, grace_of, short
from deployer.rollout.strategies import labels


def cleanup(r: RunState) -> None:
    """Under the lock, before any change: what an interrupted deploy left behind.

    Listed again now that no other deploy can run. First, a run of a service that runs
    once (a migration) that the interrupted deploy started and that is still at work is
    waited for, never cut short: if it still runs after ``rollout.health_timeout``, the
    deploy stops here (exit 4), nothing touched. Then current containers get back the
    aliases an interrupted drain took; leftovers leave the aliases, are drained, and
    are removed (a kept container of a release is stopped, not removed). Nothing of
    this is undone by a rollback: none of it belongs to a release.
    """
    app, env = r.manifest.app, r.manifest.environment.name
    for host in r.order:
        engine = r.hosts[host]
        found = list(engine.leftovers(app, env))
        if not found:
            continue
        rec = r.step(host, f"cleanup of {len(found)} leftover(s)", "cleanup")
        try:
            with r.log.section("cleanup", "Cleaning up after an interrupted deploy"):
                _clean_host(r, host, found)
        except DeployerError as e:
            r.done(rec, StepStatus.FAILED, e.message)
            raise
        r.done(rec, detail=", ".join(c.name for c in found))


def _let_runs_finish(r: RunState, host: str, found: Sequence[Leftover]) -> None:
    """Wait for each run of a run-once service still at work (a migration killed midway
    can leave data half changed; removing it would kill it): it ends as it ends, the
    deploy then runs its own. Blocked when one still runs after the health timeout."""
    engine = r.hosts[host]
    timeout = r.manifest.rollout.health_timeout
    for lo in found:
        known = lo.service in r.manifest.service_names
        if not (lo.running and known and r.manifest.service(lo.service).completes):
            continue
        r.line(
            f"cleanup: {lo.name} is a run of {lo.service} an interrupted deploy started, still "
            f"at work: waiting until it exits (up to {timeout:g}s)",
            host,
        )
        out = engine.wait_completed(lo.id, timeout)
        if out.healthy or not out.status.startswith("timeout"):
            r.line(f"cleanup: {lo.name} {out.status} after {out.seconds:.1f}s", host)
            continue
        raise Blocked(
            f"{host}: {lo.name}, a run of {lo.service} started by an interrupted deploy, is "
            f"still running after {timeout:g}s; it is left at work",
            hint=f"deploy again once it has exited (`deployer logs {lo.service}` follows it), "
            "or stop it if it must not finish",
        )


def _clean_host(r: RunState, host: str, found: Sequence[Leftover]) -> None:
    engine = r.hosts[host]
    _let_runs_finish(r, host, found)
    for c in r.observed[host].containers:
        if not c.running or c.service not in r.manifest.service_names:
            continue
        names = dict(service_networks(r.manifest, r.manifest.service(c.service)))
        if names and engine.ensure_aliases(c.id, names):
            r.line(f"cleanup: {c.name} has its network aliases back", host)
    drain = False
    for lo in found:
        r.line(f"cleanup: {lo.name}: {lo.why}", host)
        if lo.running and engine.detach_aliases(lo.id):
            drain = True
            r.line(f"cleanup: {lo.name} is out of the network aliases", host)
    if drain and r.manifest.rollout.drain > 0:
        r.line(f"cleanup: draining for {r.manifest.rollout.drain:g}s", host)
        r.sleep(r.manifest.rollout.drain)
    for lo in found:
        if lo.keep:
            known = lo.service in r.manifest.service_names
            svc = r.manifest.service(lo.service) if known else None
            grace = DEFAULT_GRACE if svc is None else grace_of(svc)
            if lo.running:
                hooks.pre_stop(r, host, svc, lo.id, lo.name, grace)
            engine.stop(lo.id, grace)
            r.line(f"cleanup: {lo.name} stopped (kept for rollback)", host)
        else:
            engine.remove(lo.id)
            r.line(f"cleanup: {lo.name} removed", host)


# -- pulls ----------------------------------------------------------------------------


def _auth(r: RunState, image: str) -> RegistryAuth | None:
    if r.auth_for is not None:
        return r.auth_for(image)
    registry = image.split("/", 1)[0] if "/" in image else "docker.io"
    for auth in r.manifest.registries:
        if auth.server.rstrip("/").split("://")[-1] == registry:
            return auth
    return None


def _pulls_for(r: RunState, host: str) -> list[tuple[str, str]]:
    """(service, digest) this host needs: changed services, and task images."""
    hp = next(h for h in r.plan.hosts if h.host == host)
    wanted = {s.service for s in hp.steps if s.changes and s.action is not Action.REMOVE}
    if host == r.order[0]:
        wanted |= {t.service for t in r.manifest.tasks if t.service in r.plan.digests}
    return [(s, r.plan.digests[s]) for s in sorted(wanted) if s in r.plan.digests]


def pull_all(r: RunState) -> None:
    with r.log.section("pull", "Pulling images (by digest, before any change)"):
        r.parallel(r.order, partial(_pull_host, r))
        errors = [run.failed for run in r.runs.values() if run.failed]
        if errors:
            raise errors[0]


def _pull_host(r: RunState, host: str) -> None:
    engine = r.hosts[host]
    for service, digest in _pulls_for(r, host):
        rec = r.step(host, f"pull {service}", "pull", service)
        svc = r.manifest.service(service)
        try:
            engine.pull(digest, _auth(r, svc.image), partial(r.host_line, host))
        except DeployerError as e:
            r.done(rec, StepStatus.FAILED, e.message)
            raise
        r.done(rec, detail=digest)
        r.line(f"{service}: image {short(digest)} ready", host)


def infrastructure(r: RunState) -> None:
    """The app's networks and named volumes, on every host (tasks need them too)."""
    for host in r.order:
        rec = r.step(host, "networks and volumes", "infrastructure")
        try:
            r.hosts[host].ensure_infrastructure(r.manifest)
        except DeployerError as e:
            r.done(rec, StepStatus.FAILED, e.message)
            raise
        shipped: list[str] = getattr(r.hosts[host], "shipped", [])
        r.done(rec, detail=f"shipped {', '.join(shipped)}" if shipped else "")
        if shipped:
            r.line(f"shipped {', '.join(shipped)}", host)


# -- tasks ----------------------------------------------------------------------------


def tasks(r: RunState, when: str) -> None:
    todo = [t for t in r.manifest.tasks if t.when == when]
    if not todo or r.kind != "deploy":
        return
    host = r.order[0]
    for task in todo:
        if task.service not in r.plan.digests:
            r.line(f"task {task.name} skipped: its service {task.service} is not deployed")
            continue
        _run_task(r, host, task)


def _run_task(r: RunState, host: str, task: Task) -> None:
    engine = r.hosts[host]
    svc = r.manifest.service(task.service)
    digest = r.plan.digests[task.service]
    rec = r.step(host, f"task {task.name}", "task", task.service)
    task_labels = {**labels(r, svc, digest, 0), L.ROLE: L.ROLE_TASK}
    with r.log.section(f"task_{task.name}", f"Task {task.name} ({task.when})"):
        r.line(f"task {task.name}: {' '.join(task.command)}", host)
        try:
            out = engine.run_task(
                r.manifest,
                svc,
                digest,
                task.command,
                task_labels,
                task.timeout,
                lambda text: r.line(f"  | {text}", host),
            )
        except DeployerError as e:
            r.done(rec, StepStatus.FAILED, e.message)
            raise
    if out.exit_code != 0:
        r.done(rec, StepStatus.FAILED, f"exit code {out.exit_code}")
        rec.log_excerpt = out.output[-4000:]
        raise StepFailure(
            f"{host}: task {task.name} ({task.when}) failed with exit code {out.exit_code}",
            excerpt=out.output,
        )
    r.done(rec, detail=f"exit 0 in {out.seconds:.1f}s")
