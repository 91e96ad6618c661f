"""The lifecycle hooks of a service, run as docker compose runs them: ``post_start`` after
every start of one of its containers, ``pre_stop`` before every stop.

``post_start``: after each new container starts, before its health gate; a hook that
fails (a non-zero exit, or still running at ``rollout.health_timeout``) fails that
container's rollout, which rolls back. A container the deployer starts again (an old one a
rollback brings back, a ``depends_on`` restart) runs them too; one that fails then makes
that undo fail (the rollback says so). ``pre_stop``: before a container is stopped, all of
them within its stop grace period; a failure is logged and the stop goes on (docker compose
refuses to stop the container and fails; a deploy's rollback or ``deployer down`` that
stopped halfway would leave more broken than a hook that did not run).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from deployer.engine import HookOutcome, HostEngine
from deployer.errors import DeployerError
from deployer.manifest.model import Service
from deployer.rollout.state import RunState, StepFailure

_SHOWN = 10  # lines of a failed hook's output in the log


def _status(out: HookOutcome, limit: float) -> str:
    if out.exit_code is None:
        return f"still running after {limit:g}s"
    return f"exited with code {out.exit_code}"


def post_start(r: RunState, host: str, svc: Service, cid: str, name: str) -> None:
    """Run the service's ``post_start`` hooks in its container ``cid``, in order."""
    limit = r.manifest.rollout.health_timeout
    for i, hook in enumerate(svc.post_start):
        out = r.hosts[host].run_hook(cid, hook, limit)
        if out.ok:
            r.line(f"{name}: post_start[{i}] done ({out.seconds:.1f}s)", host)
            continue
        status = _status(out, limit)
        r.line(f"{name}: post_start[{i}] {status}", host)
        for text in out.output.splitlines()[-_SHOWN:]:
            r.line(f"  | {text}", host)
        raise StepFailure(
            f"{host}: {svc.name}: the post_start hook [{i}] of {name} {status}",
            excerpt=out.output,
        )


def start_again(r: RunState, host: str, svc: Service | None, cid: str, name: str) -> None:
    """Start a container the run stopped (the undo of that stop), then its ``post_start``
    hooks, as compose runs them after any start; ``svc`` None: a service the manifest no
    longer has, whose hooks are unknown."""
    r.hosts[host].start(cid)
    if svc is not None:
        post_start(r, host, svc, cid, name)


def stop(r: RunState, host: str, svc: Service, cid: str, name: str, grace: float) -> None:
    """Stop a running container after its ``pre_stop`` hooks (a new container a rollback
    stops, as ``docker compose stop`` would)."""
    pre_stop(r, host, svc, cid, name, grace)
    r.hosts[host].stop(cid, grace)


def restart(r: RunState, host: str, svc: Service, cid: str, name: str, grace: float) -> None:
    """Stop and start a running container, as ``docker compose restart`` does: its
    ``pre_stop`` hooks before the stop, its ``post_start`` hooks after the start."""
    stop(r, host, svc, cid, name, grace)
    start_again(r, host, svc, cid, name)


def pre_stop(
    r: RunState, host: str, svc: Service | None, cid: str, name: str, grace: float
) -> None:
    """``run_pre_stop`` within a run, its lines in the host's part of the log."""
    run_pre_stop(r.hosts[host], partial(r.host_line, host), svc, cid, name, grace)


def run_pre_stop(
    engine: HostEngine,
    say: Callable[[str], None],
    svc: Service | None,
    cid: str,
    name: str,
    grace: float,
) -> None:
    """Run the service's ``pre_stop`` hooks in ``cid`` before it is stopped: together
    within ``grace`` seconds; a hook that fails is logged, the next one and the stop go on."""
    if svc is None or not svc.pre_stop:
        return
    left = grace
    for i, hook in enumerate(svc.pre_stop):
        if left <= 0:
            say(f"{name}: pre_stop[{i}] not run: the stop grace period ({grace:g}s) is spent")
            return
        try:
            out = engine.run_hook(cid, hook, left)
        except DeployerError as e:
            say(f"{name}: pre_stop[{i}] could not run: {e.message}; stopping it anyway")
            return
        left -= out.seconds
        if out.ok:
            say(f"{name}: pre_stop[{i}] done ({out.seconds:.1f}s)")
            continue
        say(f"{name}: pre_stop[{i}] {_status(out, grace)}; stopping it anyway")
        for text in out.output.splitlines()[-_SHOWN:]:
            say(f"  | {text}")
