"""Notes on the merge request: the plan in MR pipelines, the result after a deploy.

Only ``DEPLOYER_GITLAB_TOKEN`` may post: the job token cannot create notes, so without
the write token the note is skipped with one line saying why. A note that cannot be
posted never fails the deploy: the deploy does not depend on GitLab's API.

A note whose body starts with a marker line (``<!-- deployer:plan app env -->``)
replaces the MR's earlier note with the same marker instead of adding one per push.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from deployer.context import Context
from deployer.gitlab import api

if TYPE_CHECKING:
    from deployer.plan import Plan

PLAN_MARKER = "<!-- deployer:plan {app} {env} -->"


def _marker(body: str) -> str | None:
    first = body.split("\n", 1)[0].strip()
    return first if first.startswith("<!-- deployer:") and first.endswith("-->") else None


def post_note(
    ctx: Context,
    body: str,
    environ: Mapping[str, str],
    *,
    what: str = "note",
    timeout: float = api.DEFAULT_TIMEOUT,
) -> str:
    """Post ``body`` on the context's merge request. Returns one line for the job log."""
    mr = ctx.merge_request
    if mr is None:
        return f"{what} not posted: no merge request for this pipeline"
    access = api.write_access(environ)
    if access is None:
        if not api.server_url(environ):
            return f"{what} not posted on !{mr.iid}: not in GitLab CI (no CI_SERVER_URL)"
        return (
            f"{what} not posted on !{mr.iid}: set a masked {api.WRITE_TOKEN} (project access "
            "token, api scope) to post it; the job token cannot write notes"
        )
    if not ctx.project_id:
        return f"{what} not posted on !{mr.iid}: CI_PROJECT_ID is not set"
    gl = api.client(access, timeout)
    marker = _marker(body)
    try:
        project = gl.projects.get(ctx.project_id, lazy=True)
        merge_request = project.mergerequests.get(mr.iid, lazy=True)
        if marker is not None:
            for note in merge_request.notes.list(
                get_all=False, per_page=50, order_by="updated_at", sort="desc"
            ):
                if _marker(str(note.body)) == marker:
                    note.body = body
                    note.save()
                    return f"{what} updated on !{mr.iid}"
        merge_request.notes.create({"body": body})
    except api.api_errors() as e:
        return f"{what} not posted on !{mr.iid}: {api.describe(e)}"
    return f"{what} posted on !{mr.iid}"


def share_plan(
    plan: Plan, environ: Mapping[str, str], *, timeout: float = api.DEFAULT_TIMEOUT
) -> str | None:
    """In a merge request pipeline, post (or update) the plan as a note on the MR.

    Returns the line to log, or None outside merge request pipelines (nothing to say).
    """
    if not environ.get("CI_MERGE_REQUEST_IID"):
        return None
    from deployer.gitlab.context import from_variables
    from deployer.report.plan import render

    body = PLAN_MARKER.format(app=plan.app, env=plan.environment) + "\n\n"
    body += render(plan, "markdown")
    return post_note(from_variables(environ), body, environ, what="plan", timeout=timeout)
