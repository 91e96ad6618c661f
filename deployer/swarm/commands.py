"""The CLI's `plan`, `deploy`, `rollback` and `status` for ``engine: swarm`` environments.

The command modules dispatch here when ``manifest.environment.engine == "swarm"``; the
job log, reports and exit codes are the same as for container environments.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from deployer.context import Context
from deployer.errors import EXIT_OK, DeployerError, InvalidInput
from deployer.manifest.model import Manifest
from deployer.plan import Plan, make_plan
from deployer.swarm.target import SwarmTarget, raise_for_outcome

if TYPE_CHECKING:
    from deployer.report.log import JobLog


def _only(manifest: Manifest, only: Sequence[str] | None) -> list[str] | None:
    if only is None:
        return None
    unknown = [s for s in only if s not in manifest.service_names]
    if unknown:
        raise InvalidInput(
            f"--services: {', '.join(unknown)} not in {manifest.path} "
            f"(environment {manifest.environment.name})",
            hint=f"the services are: {', '.join(manifest.service_names)}",
        )
    return list(only)


def plan(manifest: Manifest, environ: Mapping[str, str], only: Sequence[str] | None) -> Plan:
    """`deployer plan`: the plan for the swarm, changing nothing."""
    scope = _only(manifest, only)
    with SwarmTarget.connect(manifest, environ) as target:
        return target.plan(scope)


def deploy(
    manifest: Manifest,
    environ: Mapping[str, str],
    only: Sequence[str] | None,
    ctx: Context,
    args: argparse.Namespace,
    log: JobLog,
    started: float,
    *,
    wait_lock: float,
) -> int:
    """`deployer deploy` for a swarm: plan, print, apply, report, exit like the result."""
    from deployer.commands.finish import finish_early
    from deployer.report.plan import render

    scope = _only(manifest, only)
    try:
        with log.section("plan", f"Plan: {manifest.app} → {manifest.environment.name} (Swarm)"):
            target = SwarmTarget.connect(manifest, environ, context=ctx)
    except DeployerError as e:
        finish_early(e, manifest, ctx, environ, args, log, started)
        raise
    with target:
        try:
            the_plan = target.plan(scope)
        except DeployerError as e:
            finish_early(e, manifest, ctx, environ, args, log, started, hosts=[target.name])
            raise
        log.text(render(the_plan, "text"))
        return _apply(target, the_plan, ctx, environ, args, log, started, wait_lock=wait_lock)


def _apply(  # noqa: PLR0913 (a whole run)
    target: SwarmTarget,
    the_plan: Plan,
    ctx: Context,
    environ: Mapping[str, str],
    args: argparse.Namespace,
    log: JobLog,
    started: float,
    *,
    wait_lock: float,
    run_tasks: bool = True,
) -> int:
    from deployer.commands.finish import finish_early, report

    manifest = target.manifest
    try:
        with log.section("rollout", f"Swarm rollout on {target.name}", collapsed=False):
            result = target.apply(the_plan, log, lock_wait=wait_lock, run_tasks=run_tasks)
    except DeployerError as e:
        finish_early(e, manifest, ctx, environ, args, log, started, hosts=[target.name])
        raise
    result.started_at = started
    report(result, ctx, manifest, environ, args, log)
    raise_for_outcome(result)
    return EXIT_OK


def rollback(
    manifest: Manifest,
    environ: Mapping[str, str],
    ctx: Context,
    args: argparse.Namespace,
    log: JobLog,
    started: float,
    *,
    wait_lock: float,
) -> int:
    """`deployer rollback` for a swarm: the chosen release's digests, today's manifest."""
    from deployer.commands.finish import finish_early
    from deployer.releases import choose, release_digests
    from deployer.report.plan import render

    try:
        target = SwarmTarget.connect(manifest, environ, context=ctx)
    except DeployerError as e:
        finish_early(e, manifest, ctx, environ, args, log, started)
        raise
    with target:
        chosen = choose(target.releases(), getattr(args, "to", None), target.name)
        digests, only = release_digests(chosen, manifest)
        the_plan = make_plan(manifest, [target.observe()], digests, only)
        log.line(f"rolling back to release {chosen.id} ({chosen.commit[:8] or 'no commit'})")
        log.text(render(the_plan, "text"))
        return _apply(
            target,
            the_plan,
            ctx,
            environ,
            args,
            log,
            started,
            wait_lock=wait_lock,
            run_tasks=False,
        )


def status_data(manifest: Manifest, environ: Mapping[str, str]) -> dict[str, Any]:
    with SwarmTarget.connect(manifest, environ) as target:
        rows = target.status()
        releases = target.releases()
        name = target.name
    return {
        "app": manifest.app,
        "environment": manifest.environment.name,
        "engine": "swarm",
        "hosts": [
            {
                "host": name,
                "latest_release": releases[-1].id if releases else None,
                "releases": [r.id for r in reversed(releases)],
                "services": [r.as_dict() for r in rows],
            }
        ],
    }


def status(manifest: Manifest, environ: Mapping[str, str], fmt: str) -> str:
    """`deployer status` for a swarm: services, digests, replicas running/desired, update."""
    data = status_data(manifest, environ)
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=True) + "\n"
    from deployer.report.status import host_heading, host_table

    parts = []
    for h in data["hosts"]:
        head = host_heading(f"{h['host']} (Swarm manager)", data, h)
        rows = [
            [
                r["swarm_service"],
                f"{r['running']}/{r['desired']}",
                r["update_state"] or "-",
                r["release"] or "-",
                (r["digest"] or "(not pinned)"),
                (r["commit"] or "")[:8] or "-",
                r["deployed_by"] or "-",
                r["deployed_at"] or "-",
            ]
            for r in h["services"]
        ]
        headers = [
            "service",
            "replicas",
            "update",
            "release",
            "image",
            "commit",
            "deployed by",
            "deployed at",
        ]
        body = host_table(rows, headers)
        failed = [
            f"  {r['service']}: {r['update_state']}: {r['update_message']}"
            for r in h["services"]
            if not r["healthy"] and r["update_message"]
        ]
        parts.append(head + "\n" + body + "".join(line + "\n" for line in failed))
    return "\n".join(parts)
