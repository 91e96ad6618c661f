"""How a deploy, rollback or restart ends: the job-log summary, the report files, the MR note,
the webhook notifications.

Shared by both engines' commands, so it depends on no command module.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from deployer.context import Context
from deployer.errors import EXIT_OK, DeployerError
from deployer.manifest.model import Manifest
from deployer.report.log import JobLog
from deployer.requests import Request
from deployer.result import DeployResult, Outcome
from deployer.target import Applied


def report(
    result: DeployResult,
    ctx: Context,
    manifest: Manifest | None,
    environ: Mapping[str, str],
    request: Request,
    log: JobLog,
    *,
    kind: str | None = None,
) -> None:
    """The job-log summary, the report files, the MR note and the webhook notifications
    (none of them ever fails the deploy). ``kind`` names the command (deploy, rollback,
    restart, down); by default the CLI's command."""
    from deployer.gitlab.notes import post_note
    from deployer.report.artifacts import write_reports
    from deployer.report.markdown import result_markdown
    from deployer.report.redact import secret_values
    from deployer.report.summary import write_summary

    write_summary(log, result)
    secrets = secret_values(manifest, environ)
    report_dir = request.report_dir
    if report_dir:
        try:
            paths = write_reports(
                result, report_dir, context=ctx, secrets=secrets, manifest=manifest
            )
            log.line("reports: " + ", ".join(str(p) for p in paths.values()))
        except DeployerError as e:
            log.line(f"reports not written: {e.message}")
    if result.outcome is not Outcome.NOTHING_TO_DO and ctx.in_ci:
        from deployer.report.redact import Redactor

        body = Redactor(secrets)(result_markdown(result, ctx))
        log.line(post_note(ctx, body, environ, what="deploy note"))
    if manifest is not None and manifest.notify.webhooks:
        from deployer.notify import send
        from deployer.report.redact import Redactor

        send(
            manifest.notify,
            result,
            ctx,
            kind or request.command,
            redact=Redactor(secrets),
            log=log.line,
        )


def finish_early(
    e: DeployerError,
    manifest: Manifest,
    ctx: Context,
    environ: Mapping[str, str],
    request: Request,
    log: JobLog,
    started: float,
    hosts: Sequence[str] = (),
) -> None:
    """Reports for a run that stopped before the rollout (unreachable host, bad input)."""
    outcome = {3: Outcome.UNREACHABLE, 4: Outcome.BLOCKED, 2: Outcome.INVALID}.get(
        e.exit_code, Outcome.UNREACHABLE
    )
    result = DeployResult(
        app=manifest.app,
        environment=manifest.environment.name,
        outcome=outcome,
        started_at=started,
        seconds=round(time.time() - started, 3),
        error=e.message,
        url=manifest.environment.url,
        hosts=dict.fromkeys(hosts, "unchanged"),
    )
    report(result, ctx, manifest, environ, request, log)


def conclude(
    applied: Applied,
    ctx: Context,
    manifest: Manifest,
    environ: Mapping[str, str],
    request: Request,
    log: JobLog,
    *,
    kind: str,
) -> int:
    """Report how applying a plan ended, and exit like it (the same on both engines)."""
    report(applied.result, ctx, manifest, environ, request, log, kind=kind)
    if applied.error is not None:
        raise applied.error
    return EXIT_OK
