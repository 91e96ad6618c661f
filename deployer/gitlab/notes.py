"""Notes on the merge request: the plan in MR pipelines, the result after a deploy.

Only ``DEPLOYER_GITLAB_TOKEN`` may post: the job token cannot create notes, so without
the write token the note is skipped with one line saying why. A note that cannot be
posted never fails the deploy: the deploy does not depend on GitLab's API.
"""

from __future__ import annotations

from collections.abc import Mapping

from deployer.context import Context
from deployer.gitlab import api


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
    try:
        project = gl.projects.get(ctx.project_id, lazy=True)
        merge_request = project.mergerequests.get(mr.iid, lazy=True)
        merge_request.notes.create({"body": body})
    except api.api_errors() as e:
        return f"{what} not posted on !{mr.iid}: {api.describe(e)}"
    return f"{what} posted on !{mr.iid}"
