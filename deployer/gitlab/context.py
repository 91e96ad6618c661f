"""Build the CI context from GitLab's predefined variables and, through the API, the
merge request that produced the commit.

- Merge request pipelines: the ``CI_MERGE_REQUEST_*`` variables (the API adds the
  author and the labels as they are now, when it can be reached).
- Any other pipeline (the default branch after a merge): the merge requests of the
  commit, ``GET /projects/:id/repository/commits/:sha/merge_requests``; a direct push
  has none.
- GitLab unreachable or no token: a note in ``Context.notes`` and the deploy goes on,
  unless the manifest says ``gitlab: {require_api: true}`` (then ``Unreachable``).
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from deployer import labels
from deployer.context import Context, MergeRequest
from deployer.errors import Unreachable
from deployer.gitlab import api
from deployer.manifest.model import GitlabPolicy

ZERO_SHA = "0" * 40


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no")


def _local_identity() -> tuple[str, str]:
    """Outside CI: user@host and the checked-out commit, when git can tell."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    who = f"{user}@{socket.gethostname()}"
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=3,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return who, sha


def from_variables(environ: Mapping[str, str]) -> Context:
    """The context as the predefined variables alone describe it (no API call)."""
    env = environ
    in_ci = _truthy(env.get("GITLAB_CI")) or bool(env.get("CI_JOB_ID"))
    sha = env.get("CI_COMMIT_SHA", "")
    user = env.get("GITLAB_USER_LOGIN", "")
    if not in_ci:
        local_user, local_sha = _local_identity()
        user = user or local_user
        sha = sha or local_sha
    mr: MergeRequest | None = None
    iid = env.get("CI_MERGE_REQUEST_IID", "")
    if iid.isdigit():
        project_url = env.get("CI_MERGE_REQUEST_PROJECT_URL") or env.get("CI_PROJECT_URL", "")
        mr = MergeRequest(
            iid=int(iid),
            title=env.get("CI_MERGE_REQUEST_TITLE", ""),
            author="",
            url=f"{project_url}/-/merge_requests/{iid}" if project_url else "",
            labels=tuple(
                x.strip() for x in env.get("CI_MERGE_REQUEST_LABELS", "").split(",") if x.strip()
            ),
            source_branch=env.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", ""),
            target_branch=env.get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", ""),
        )
    return Context(
        commit_sha=sha,
        commit_short_sha=env.get("CI_COMMIT_SHORT_SHA", sha[:8]),
        ref=env.get("CI_COMMIT_REF_NAME", ""),
        before_sha=env.get("CI_COMMIT_BEFORE_SHA", ""),
        project_path=env.get("CI_PROJECT_PATH", ""),
        project_id=env.get("CI_PROJECT_ID", ""),
        server_url=api.server_url(env),
        pipeline_id=env.get("CI_PIPELINE_ID", ""),
        pipeline_url=env.get("CI_PIPELINE_URL", ""),
        pipeline_source=env.get("CI_PIPELINE_SOURCE", ""),
        job_id=env.get("CI_JOB_ID", ""),
        job_url=env.get("CI_JOB_URL", ""),
        user=user,
        environment=env.get("CI_ENVIRONMENT_NAME", ""),
        default_branch=env.get("CI_DEFAULT_BRANCH", ""),
        deploy_freeze=_truthy(env.get("CI_DEPLOY_FREEZE")),
        merge_request=mr,
        in_ci=in_ci,
    )


def _mr_from_api(data: Mapping[str, Any]) -> MergeRequest:
    author = data.get("author") or {}
    return MergeRequest(
        iid=int(data["iid"]),
        title=str(data.get("title", "")),
        author=str(author.get("username", "")),
        url=str(data.get("web_url", "")),
        labels=tuple(str(x) for x in data.get("labels") or ()),
        source_branch=str(data.get("source_branch", "")),
        target_branch=str(data.get("target_branch", "")),
    )


def _pick(mrs: list[dict[str, Any]], sha: str, default_branch: str) -> dict[str, Any] | None:
    """The merge request that brought ``sha`` in: merged, into the default branch,
    preferring the one whose merge/squash commit or head is exactly this commit."""
    merged = [m for m in mrs if m.get("state") == "merged"]
    if default_branch:
        merged = [m for m in merged if m.get("target_branch") == default_branch] or merged
    for m in merged:
        if sha in (m.get("merge_commit_sha"), m.get("squash_commit_sha"), m.get("sha")):
            return m
    if merged:
        return merged[0]
    return mrs[0] if mrs else None


def lookup_merge_request(
    ctx: Context, environ: Mapping[str, str], timeout: float = api.DEFAULT_TIMEOUT
) -> tuple[MergeRequest | None, str | None]:
    """Ask GitLab for the merge request of this pipeline. Returns (MR, problem); problem
    is set when GitLab could not answer (the MR is then what the variables gave)."""
    access = api.read_access(environ)
    if access is None:
        why = (
            "not in GitLab CI" if not ctx.server_url else "no CI_JOB_TOKEN or DEPLOYER_GITLAB_TOKEN"
        )
        return ctx.merge_request, f"merge request not looked up: {why}"
    if not ctx.project_id:
        return ctx.merge_request, "merge request not looked up: CI_PROJECT_ID is not set"
    gl = api.client(access, timeout)
    project = gl.projects.get(ctx.project_id, lazy=True)
    try:
        if ctx.merge_request is not None:
            mr = project.mergerequests.get(ctx.merge_request.iid)
            return _mr_from_api(mr.attributes), None
        if not ctx.commit_sha:
            return None, "merge request not looked up: CI_COMMIT_SHA is not set"
        commit = project.commits.get(ctx.commit_sha, lazy=True)
        found = commit.merge_requests(get_all=False)
        chosen = _pick(list(found), ctx.commit_sha, ctx.default_branch)
        return (_mr_from_api(chosen) if chosen else None), None
    except api.api_errors() as e:
        return ctx.merge_request, f"GitLab API: {api.describe(e)} at {access.url}"


def build_context(
    environ: Mapping[str, str] | None = None,
    policy: GitlabPolicy | None = None,
    *,
    use_api: bool = True,
    timeout: float = api.DEFAULT_TIMEOUT,
) -> Context:
    """The context of this run. GitLab trouble becomes a note unless the policy requires
    the API, in which case it raises ``Unreachable`` (exit 3)."""
    env = os.environ if environ is None else environ
    policy = policy or GitlabPolicy()
    ctx = from_variables(env)
    if not use_api:
        return ctx
    mr, problem = lookup_merge_request(ctx, env, timeout)
    notes: list[str] = list(ctx.notes)
    if problem:
        if policy.require_api and ctx.in_ci:
            raise Unreachable(
                problem,
                hint="check that GitLab is reachable from the runner and the token is valid, "
                "or set `gitlab: {require_api: false}` in the manifest to deploy without it",
            )
        notes.append(f"{problem}; going on without merge metadata")
    elif mr is None and ctx.in_ci:
        notes.append(f"no merge request for commit {ctx.commit_short_sha} (direct push)")
    return replace(ctx, merge_request=mr, notes=tuple(notes))


def mr_reference(ctx: Context) -> str:
    """``!12 Title`` when the merge request is known, else ``""``."""
    mr = ctx.merge_request
    return f"!{mr.iid} {mr.title}".strip() if mr else ""


def context_labels(ctx: Context) -> dict[str, str]:
    """Labels carrying the merge metadata, for containers and the release record."""
    out = {
        labels.COMMIT: ctx.commit_sha,
        labels.PIPELINE: ctx.pipeline_url,
        labels.JOB: ctx.job_url,
        labels.USER: ctx.user,
        labels.PROJECT: ctx.project_path,
        labels.MR: mr_reference(ctx)
        + (f" ({ctx.merge_request.url})" if ctx.merge_request and ctx.merge_request.url else ""),
    }
    return {k: v for k, v in out.items() if v}
