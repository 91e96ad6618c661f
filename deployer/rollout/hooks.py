"""The lifecycle hooks of a service, run by the rollout as docker compose runs them.

``post_start``: after each new container starts, before its health gate; a hook that
fails (a non-zero exit, or still running at ``rollout.health_timeout``) fails that
container's rollout, which rolls back. ``pre_stop``: before a container is stopped, all of
them within its stop grace period; a failure is logged and the stop goes on.
"""

from __future__ import annotations

from deployer.engine import HookOutcome
from deployer.errors import DeployerError
from deployer.manifest.model import Service
from deployer.rollout.state import RunState, StepFailure

_SHOWN = 10  # lines of a failed hook's output in the log


def _status(out: HookOutcome, limit: float) -> str:
    if out.exit_code is None:
        return f"still running after {limit:g}s"
    return f"exited with code {out.exit_code}"


def post_start(r: RunState, host: str, svc: Service, cid: str, name: str) -> None:
    """Run the service's ``post_start`` hooks in its new container ``cid``, in order."""
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


def pre_stop(
    r: RunState, host: str, svc: Service | None, cid: str, name: str, grace: float
) -> None:
    """Run the service's ``pre_stop`` hooks in ``cid`` before it is stopped: together
    within ``grace`` seconds; a hook that fails is logged, the next one and the stop go on."""
    if svc is None or not svc.pre_stop:
        return
    left = grace
    for i, hook in enumerate(svc.pre_stop):
        if left <= 0:
            r.line(
                f"{name}: pre_stop[{i}] not run: the stop grace period ({grace:g}s) is spent", host
            )
            return
        try:
            out = r.hosts[host].run_hook(cid, hook, left)
        except DeployerError as e:
            r.line(f"{name}: pre_stop[{i}] could not run: {e.message}; stopping it anyway", host)
            return
        left -= out.seconds
        if out.ok:
            r.line(f"{name}: pre_stop[{i}] done ({out.seconds:.1f}s)", host)
            continue
        r.line(f"{name}: pre_stop[{i}] {_status(out, grace)}; stopping it anyway", host)
        for text in out.output.splitlines()[-_SHOWN:]:
            r.line(f"  | {text}", host)
