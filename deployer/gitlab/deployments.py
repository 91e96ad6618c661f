"""The last successful deployment of an environment and the deploy report its job kept.

Two reads, both allowed to the job token: the deployments API
(``GET /projects/:id/deployments?environment=…&status=success&order_by=id&sort=desc``)
names the newest successful deployment and its job (``deployable``); the job artifacts
API (``GET /projects/:id/jobs/:job_id/artifacts/*artifact_path``) returns that job's
``deploy-report.json``. Every way this can fail becomes ``Unavailable`` with a one-line
reason for the job log; no exception of the client escapes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from deployer.baseline import Baseline
from deployer.gitlab import api

GOOD_OUTCOMES = ("deployed", "nothing-to-do")


class Unavailable(Exception):
    """The recorded state cannot be read; ``str()`` is the reason, one line."""


def last_deployment_report(
    environ: Mapping[str, str],
    environment: str,
    artifact_path: str,
    *,
    app: str,
    timeout: float = api.DEFAULT_TIMEOUT,
) -> tuple[dict[str, Any], Baseline]:
    access = api.read_access(environ)
    if access is None:
        raise Unavailable("no GitLab API access here (CI_SERVER_URL or CI_JOB_TOKEN is not set)")
    project_id = environ.get("CI_PROJECT_ID", "")
    if not project_id:
        raise Unavailable("CI_PROJECT_ID is not set")
    gl = api.client(access, timeout)
    try:
        project = gl.projects.get(project_id, lazy=True)
        found = project.deployments.list(
            environment=environment,
            status="success",
            order_by="id",
            sort="desc",
            per_page=1,
            get_all=False,
        )
    except api.api_errors() as e:
        raise Unavailable(f"cannot list the deployments of {environment}: {api.describe(e)}") from e
    if not found:
        raise Unavailable(f"{environment} has no successful deployment yet")
    deployment = found[0]
    deployable = getattr(deployment, "deployable", None) or {}
    job_id = deployable.get("id") if isinstance(deployable, dict) else None
    if not isinstance(job_id, int):
        raise Unavailable(f"deployment #{deployment.id} of {environment} names no job")
    try:
        raw = project.jobs.get(job_id, lazy=True).artifact(artifact_path)
    except api.api_errors() as e:
        if getattr(e, "response_code", None) == 404:
            raise Unavailable(
                f"job {job_id} (deployment #{deployment.id}) kept no {artifact_path} "
                "(expired, or the job did not keep it)"
            ) from e
        raise Unavailable(f"cannot read job {job_id}'s {artifact_path}: {api.describe(e)}") from e
    try:
        report = json.loads(raw if isinstance(raw, (bytes, str)) else b"")
    except ValueError as e:
        raise Unavailable(f"job {job_id}'s {artifact_path} is not JSON") from e
    if not isinstance(report, dict) or "outcome" not in report:
        raise Unavailable(f"job {job_id}'s {artifact_path} is not a deploy report")
    if report.get("app") != app or report.get("environment") != environment:
        raise Unavailable(
            f"job {job_id}'s report is of {report.get('app')}/{report.get('environment')}, "
            f"not {app}/{environment}"
        )
    if report.get("outcome") not in GOOD_OUTCOMES:
        raise Unavailable(
            f"job {job_id}'s report records a deploy that did not succeed "
            f"({report.get('outcome')})"
        )
    baseline = Baseline(
        environment=environment,
        deployment_id=int(deployment.id),
        job_id=job_id,
        commit=str(getattr(deployment, "sha", "") or ""),
        release=report.get("release") if isinstance(report.get("release"), str) else None,
        finished_at=str(deployable.get("finished_at") or ""),
    )
    return report, baseline
