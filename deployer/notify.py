"""Webhook notifications of a command's outcome (manifest ``notify:``).

Deploy, rollback, restart and down post what happened to every webhook whose ``on:``
list holds the outcome's event (success, failure, blocked), in one of three shapes:
Slack (incoming webhook: ``text`` and Block Kit blocks), Microsoft Teams (a Workflows
webhook message carrying an Adaptive Card) and a generic JSON object.

A payload holds what the reports show about the run (app, environment, release, commit,
merge request, user, duration, failed services, job URL) and never an environment
value, a log excerpt or a token; it passes the redactor too. Webhook URLs are secrets:
no message names them. All webhooks are posted in parallel, each bounded by the
timeout, and the caller waits at most a little longer than that: a webhook that is
down, slow or refusing is one log line and never changes the command's outcome.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from deployer.context import Context
from deployer.manifest.model import Manifest, NotifyPolicy, Webhook
from deployer.result import DeployResult, Outcome, StepStatus

EVENTS = {
    Outcome.DEPLOYED: "success",
    Outcome.NOTHING_TO_DO: "success",
    Outcome.ROLLED_BACK: "failure",
    Outcome.ROLLBACK_FAILED: "failure",
    Outcome.UNREACHABLE: "failure",
    Outcome.INVALID: "failure",
    Outcome.BLOCKED: "blocked",
}
GRACE = 1.0  # seconds the caller waits beyond the timeout for every thread to finish
USER_AGENT = "gitlab-docker-deployer"


def event_of(result: DeployResult) -> str:
    return EVENTS.get(result.outcome, "failure")


def failed_services(result: DeployResult) -> list[str]:
    """Services with a failed step (rollout, task, pull) on any host."""
    return sorted(
        {s.service for s in result.steps if s.service and s.status is StepStatus.FAILED}
    )


def facts(result: DeployResult, ctx: Context, kind: str) -> dict[str, Any]:
    """The fields every payload shape is made from: plain data, no secret in it."""
    mr = ctx.merge_request
    return {
        "kind": kind,
        "event": event_of(result),
        # `down` that removed the environment succeeded: say "removed", not "deployed".
        "outcome": "removed"
        if kind == "down" and result.outcome is Outcome.DEPLOYED
        else str(result.outcome),
        "app": result.app,
        "environment": result.environment,
        "release": result.release,
        "previous_release": result.previous_release,
        "url": result.url,
        "commit": ctx.commit_sha or None,
        "ref": ctx.ref or None,
        "merge_request": {"iid": mr.iid, "title": mr.title, "url": mr.url} if mr else None,
        "user": ctx.user or None,
        "seconds": round(result.seconds, 1),
        "failed_services": failed_services(result),
        "error": result.error,
        "job_url": ctx.job_url or None,
        "pipeline_url": ctx.pipeline_url or None,
        "project": ctx.project_path or None,
    }


_VERBS = {
    ("deploy", "success"): "deployed",
    ("rollback", "success"): "rolled back",
    ("restart", "success"): "restarted",
    ("down", "success"): "taken down",
}


def headline(f: Mapping[str, Any]) -> str:
    target = f"{f['app']} → {f['environment']}"
    if f["event"] == "blocked":
        return f"{f['kind']} of {target} blocked"
    if f["event"] == "failure":
        return f"{f['kind']} of {target} FAILED ({f['outcome']})"
    if f["outcome"] == str(Outcome.NOTHING_TO_DO):
        return f"{f['kind']} of {target}: nothing to do"
    return f"{target} {_VERBS.get((f['kind'], 'success'), f['kind'] + ' done')}"


def _rows(f: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = [("App", f["app"]), ("Environment", f["environment"])]
    if f["release"]:
        rows.append(("Release", f["release"]))
    if f["commit"]:
        rows.append(("Commit", str(f["commit"])[:12]))
    if f["merge_request"]:
        mr = f["merge_request"]
        rows.append(("Merge request", f"!{mr['iid']} {mr['title']}"))
    if f["user"]:
        rows.append(("User", f["user"]))
    rows.append(("Duration", f"{f['seconds']} s"))
    if f["failed_services"]:
        rows.append(("Failed services", ", ".join(f["failed_services"])))
    if f["error"]:
        rows.append(("Error", f["error"]))
    return rows


def slack_payload(f: Mapping[str, Any]) -> dict[str, Any]:
    text = headline(f)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in _rows(f)[:10]
            ],  # Slack allows 10 fields per section
        },
    ]
    links = [(n, f[k]) for n, k in (("Job", "job_url"), ("Environment URL", "url")) if f[k]]
    if links:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"<{u}|{n}>"} for n, u in links],
            }
        )
    return {"text": text, "blocks": blocks}


def teams_payload(f: Mapping[str, Any]) -> dict[str, Any]:
    actions = [
        {"type": "Action.OpenUrl", "title": n, "url": f[k]}
        for n, k in (("Job", "job_url"), ("Environment URL", "url"))
        if f[k]
    ]
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": headline(f),
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
                "color": {"success": "Good", "failure": "Attention"}.get(f["event"], "Warning"),
            },
            {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in _rows(f)]},
        ],
        "actions": actions,
    }
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def json_payload(f: Mapping[str, Any]) -> dict[str, Any]:
    return {"text": headline(f), **f}


SHAPES: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "slack": slack_payload,
    "teams": teams_payload,
    "json": json_payload,
}


def payload(hook: Webhook, f: Mapping[str, Any], redact: Callable[[str], str]) -> bytes:
    body = json.dumps(SHAPES.get(hook.format, json_payload)(f), ensure_ascii=False)
    return redact(body).encode()


def _post(url: str, body: bytes, timeout: float) -> str | None:
    """None when the webhook accepted it, else a one-line reason (never the URL)."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(65536)
            return None
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code}"
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, TimeoutError):
            return f"no answer within {timeout:g} s"
        why = getattr(reason, "strerror", None) or type(reason).__name__
        return f"cannot connect ({why})"
    except OSError as e:
        return f"failed ({type(e).__name__})"


def send(
    policy: NotifyPolicy,
    result: DeployResult,
    ctx: Context,
    kind: str,
    *,
    redact: Callable[[str], str],
    log: Callable[[str], None],
) -> list[str]:
    """Post the outcome to every webhook that wants it; returns the log lines written.

    Returns after every post finished or after ``timeout + GRACE`` seconds, whichever
    comes first. Never raises.
    """
    event = event_of(result)
    hooks = [(i, h) for i, h in enumerate(policy.webhooks, 1) if event in h.on]
    if not hooks:
        return []
    f = facts(result, ctx, kind)
    outcomes: dict[int, str | None] = {}

    def worker(i: int, hook: Webhook) -> None:
        try:
            outcomes[i] = _post(hook.url, payload(hook, f, redact), policy.timeout)
        except Exception as e:  # noqa: BLE001 - a webhook must never fail the command
            outcomes[i] = f"failed ({type(e).__name__})"

    threads = [
        threading.Thread(target=worker, args=(i, h), daemon=True, name=f"notify-{i}")
        for i, h in hooks
    ]
    deadline = time.monotonic() + policy.timeout + GRACE
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    lines = []
    for i, hook in hooks:
        name = f"webhook {i} ({hook.format})"
        if i not in outcomes:
            line = f"notify: {name} not sent: no answer within {policy.timeout:g} s"
        elif outcomes[i] is None:
            line = f"notify: {name} sent ({event})"
        else:
            line = f"notify: {name} not sent: {outcomes[i]}"
        lines.append(redact(line))
    for line in lines:
        log(line)
    return lines


def outcome_of_error(exit_code: int) -> Outcome:
    return {2: Outcome.INVALID, 3: Outcome.UNREACHABLE, 4: Outcome.BLOCKED}.get(
        exit_code, Outcome.ROLLED_BACK if exit_code == 1 else Outcome.ROLLBACK_FAILED
    )


def notify_command(
    manifest: Manifest,
    ctx: Context,
    kind: str,
    outcome: Outcome,
    started: float,
    environ: Mapping[str, str],
    log: Callable[[str], None],
    *,
    error: str | None = None,
) -> None:
    """For commands that write no deploy report (down): post their outcome."""
    if not manifest.notify.webhooks:
        return
    from deployer.report.redact import Redactor, secret_values

    result = DeployResult(
        app=manifest.app,
        environment=manifest.environment.name,
        outcome=outcome,
        started_at=started,
        seconds=time.time() - started,
        error=error,
        url=manifest.environment.url,
    )
    send(
        manifest.notify,
        result,
        ctx,
        kind,
        redact=Redactor(secret_values(manifest, environ)),
        log=log,
    )
