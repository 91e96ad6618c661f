"""The result as Markdown for a merge request note."""

from __future__ import annotations

from deployer.context import Context
from deployer.result import DeployResult, Outcome, StepStatus

_TITLE = {
    Outcome.DEPLOYED: "✅ **{app}** deployed to **{env}**",
    Outcome.NOTHING_TO_DO: "✅ **{app}** on **{env}** was already up to date",
    Outcome.ROLLED_BACK: "❌ deploy of **{app}** to **{env}** failed and was rolled back",
    Outcome.ROLLBACK_FAILED: "🚨 deploy of **{app}** to **{env}** failed and the rollback "
    "failed too: a human must look",
    Outcome.BLOCKED: "⏸️ deploy of **{app}** to **{env}** was blocked",
    Outcome.INVALID: "❌ deploy of **{app}** to **{env}** refused: invalid input",
    Outcome.UNREACHABLE: "❌ deploy of **{app}** to **{env}**: a host could not be reached",
}

MARKER = "<!-- deployer:{kind} {app} {env} -->"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _fence(text: str) -> str:
    n = 3
    while "`" * n in text:
        n += 1
    return "`" * n


def result_markdown(result: DeployResult, context: Context | None = None) -> str:
    lines = [MARKER.format(kind="result", app=result.app, env=result.environment), ""]
    lines.append("### " + _TITLE[result.outcome].format(app=result.app, env=result.environment))
    lines.append("")
    facts = []
    if result.release:
        facts.append(f"release `{result.release}`")
    if result.previous_release:
        facts.append(f"previous `{result.previous_release}`")
    facts.append(f"{result.seconds:.1f} s")
    if result.url:
        facts.append(f"<{result.url}>")
    if context is not None:
        if context.commit_short_sha:
            facts.append(f"commit `{context.commit_short_sha}`")
        if context.job_url:
            facts.append(f"[job]({context.job_url})")
        elif context.pipeline_url:
            facts.append(f"[pipeline]({context.pipeline_url})")
    lines.append(" · ".join(facts))
    if result.error:
        lines += ["", "> " + result.error.replace("\n", "\n> ")]
    if result.digests:
        lines += ["", "| service | image |", "|---|---|"]
        lines += [f"| {_cell(s)} | `{_cell(d)}` |" for s, d in sorted(result.digests.items())]
    if result.hosts:
        lines += ["", "| host | outcome |", "|---|---|"]
        lines += [f"| {_cell(h)} | {_cell(o)} |" for h, o in sorted(result.hosts.items())]
    for step in result.steps:
        if step.status is StepStatus.FAILED:
            lines += [
                "",
                f"<details><summary>{_cell(step.name)} on {_cell(step.host)}: "
                f"{_cell(step.detail or 'failed')}</summary>",
                "",
            ]
            if step.log_excerpt:
                fence = _fence(step.log_excerpt)
                lines += [fence, step.log_excerpt.rstrip("\n"), fence]
            lines += ["", "</details>"]
    return "\n".join(lines) + "\n"
