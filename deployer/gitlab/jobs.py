"""Is the GitLab job that holds a deploy lock still running?

A lock's holder is the job's URL (``<server>/<project path>/-/jobs/<id>``, see
``Context.holder``). ``GET /projects/:id/jobs/:job_id`` gives its ``status``; a job
that ended (failed, canceled, success, skipped) can no longer hold anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from deployer.errors import Unreachable
from deployer.gitlab.api import api_errors, client, describe, read_access, server_url

# The statuses of a job that may still run (GitLab's job status values).
ACTIVE = frozenset(
    {"created", "pending", "running", "waiting_for_resource", "preparing", "scheduled", "manual"}
)


@dataclass(frozen=True)
class JobRef:
    server: str
    project: str
    job_id: int


@dataclass(frozen=True)
class JobState:
    status: str
    web_url: str

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


def job_of(holder: str, environ: Mapping[str, str]) -> JobRef | None:
    """The GitLab job a lock holder names, when it is a job of this GitLab server."""
    server = server_url(environ)
    if not server or not holder.startswith(server + "/"):
        return None
    rest = holder[len(server) + 1 :]
    project, sep, job = rest.partition("/-/jobs/")
    if not sep or not project or not job.isdigit():
        return None
    return JobRef(server, project, int(job))


def job_state(ref: JobRef, environ: Mapping[str, str]) -> JobState:
    """The job's status from the GitLab API; ``Unreachable`` (exit 3) when it cannot tell."""
    access = read_access(environ)
    if access is None:
        raise Unreachable(
            "cannot ask GitLab whether the lock's job still runs: no token "
            "(CI_JOB_TOKEN or DEPLOYER_GITLAB_TOKEN) and CI_SERVER_URL",
            hint="run it in a GitLab job, or break the lock with `deployer unlock --force`",
        )
    gl = client(access)
    path = f"/projects/{quote(ref.project, safe='')}/jobs/{ref.job_id}"
    try:
        data = gl.http_get(path)
    except api_errors() as e:
        raise Unreachable(
            f"cannot ask GitLab about job {ref.job_id} of {ref.project}: {describe(e)}",
            hint="check the token's access to that project, or use `deployer unlock --force`",
        ) from e
    if not isinstance(data, dict) or "status" not in data:
        raise Unreachable(f"GitLab's answer about job {ref.job_id} has no status")
    return JobState(str(data["status"]), str(data.get("web_url") or ""))
