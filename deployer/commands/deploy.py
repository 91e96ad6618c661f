"""`deployer deploy [-f FILE] [--env NAME] [--services a,b] [--wait-lock DURATION] [--force]`.

Computes the plan with the same code as `deployer plan`, prints it, and applies exactly
that plan (deployer/rollout/): lock every host, pull, tasks, health-gated rollout,
rollback of everything this run changed on failure. Writes the reports (JSON, dotenv,
JUnit, Markdown) into ``--report-dir`` and a summary into the job log.

Exit 0 deployed (or nothing to do) · 1 failed and rolled back · 2 invalid input ·
3 a host or registry unreachable (nothing changed) · 4 blocked (lock, freeze, hold
label) · 5 failed and the rollback failed too.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TextIO

from deployer.commands.finish import finish_early, report
from deployer.context import Context
from deployer.errors import EXIT_OK, DeployerError, InvalidInput
from deployer.manifest.model import Manifest, RegistryAuth
from deployer.plan import Plan
from deployer.report.log import JobLog


def duration_arg(value: str | None, flag: str) -> float:
    if not value:
        return 0.0
    from deployer.manifest.parse import duration

    try:
        return duration(value)
    except ValueError as e:
        raise InvalidInput(f"{flag}: {e}", hint=f"for example {flag} 10m") from e


def load(args: argparse.Namespace, environ: Mapping[str, str]) -> Manifest:
    from deployer.manifest import load_manifest

    return load_manifest(args.file, args.env, environ)


def context_for(manifest: Manifest, environ: Mapping[str, str]) -> Context:
    from deployer.gitlab.context import build_context

    return build_context(environ, manifest.gitlab)


def run(args: argparse.Namespace, out: TextIO, environ: Mapping[str, str] | None = None) -> int:
    from deployer.commands.plan import services_arg
    from deployer.report.plan import render
    from deployer.targets import check_only, connect_hosts, prepare

    env = dict(os.environ if environ is None else environ)
    wait_lock = duration_arg(getattr(args, "wait_lock", None), "--wait-lock")
    only = services_arg(args.services)
    manifest = load(args, env)
    from deployer.report.redact import secret_values

    log = JobLog(out, secrets=secret_values(manifest, env))  # container logs may quote them
    ctx = context_for(manifest, env)
    started = time.time()
    try:
        gate_notes = gates(ctx, manifest, force=bool(getattr(args, "force", False)))
    except DeployerError as e:  # a freeze or a hold label: reports say so, nothing changed
        finish_early(e, manifest, ctx, env, args, log, started)
        raise
    for note in [*ctx.notes, *gate_notes]:
        log.line(note)
    if manifest.environment.engine == "swarm":
        from deployer.swarm import commands as swarm

        return swarm.deploy(manifest, env, only, ctx, args, log, started, wait_lock=wait_lock)
    try:
        check_only(manifest, only)  # a bad --services fails before connecting
        with log.section("connect", f"Connecting to {manifest.environment.name}'s host(s)"):
            hosts = connect_hosts(manifest, env)
            for h in hosts:
                log.line(f"{h.name}: connected")
        with log.section("plan", f"Plan: {manifest.app} → {manifest.environment.name}"):
            prepared = prepare(manifest, env, only, connected=hosts)
    except DeployerError as e:
        finish_early(e, manifest, ctx, env, args, log, started)
        raise
    with prepared:
        log.text(render(prepared.plan, "text"))
        return apply(
            manifest,
            prepared.plan,
            prepared.hosts_by_name,
            prepared.observed_by_name,
            ctx,
            env,
            args,
            log,
            wait_lock=wait_lock,
            kind="deploy",
        )


def gates(ctx: Context, manifest: Manifest, *, force: bool) -> list[str]:
    from deployer.gitlab.gates import check

    return check(ctx, manifest.gitlab, force=force)


def auth_lookup(
    manifest: Manifest, environ: Mapping[str, str]
) -> Callable[[str], RegistryAuth | None]:
    from deployer.docker.registry import auth_for

    def lookup(image: str) -> RegistryAuth | None:
        return auth_for(image, manifest.registries, environ)

    return lookup


def apply(  # noqa: PLR0913 (a whole run)
    manifest: Manifest,
    plan: Plan,
    hosts: Mapping[str, object],
    observed: Mapping[str, object],
    ctx: Context,
    environ: Mapping[str, str],
    args: argparse.Namespace,
    log: JobLog,
    *,
    wait_lock: float,
    kind: str,
) -> int:
    """Run the rollout of ``plan``, write the summary and reports, exit like the result."""
    from deployer.docker.host import DockerHost
    from deployer.rollout import Rollout

    engines = [h for h in hosts.values() if isinstance(h, DockerHost)]
    if engines and len(engines) == len(hosts):
        from deployer.ops.containers import ContainerOperations
        from deployer.ops.stale import break_stale_lock

        # A lock left by a job that ended (runner lost, kill -9) need not block us.
        break_stale_lock(
            ContainerOperations(manifest, engines, environ), environ, ctx.holder, log.line
        )

    rollout = Rollout(
        manifest,
        plan,
        hosts,  # type: ignore[arg-type]
        observed,  # type: ignore[arg-type]
        ctx,
        log,
        wait_lock=wait_lock,
        kind=kind,
        auth_for=auth_lookup(manifest, environ),
    )
    with cancel_on_sigterm(rollout.cancelled, log):
        result = rollout.run()
    report(result, ctx, manifest, environ, args, log, kind=kind)
    if rollout.error is not None:
        raise rollout.error
    return EXIT_OK


@contextlib.contextmanager
def cancel_on_sigterm(event: threading.Event, log: JobLog) -> Iterator[None]:
    """A cancelled job (SIGTERM) stops the rollout at its next step and rolls back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: object) -> None:
        log.line("SIGTERM: stopping the deploy at the next step and rolling back")
        event.set()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
