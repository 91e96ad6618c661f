"""Who and what produced this deploy: the CI context, as plain data.

Built by ``deployer.gitlab.context`` from GitLab's predefined variables (and the API
for the merge request of a commit); outside CI it holds what can be found locally.
Passed explicitly to whatever needs it; there is no global context.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class MergeRequest:
    iid: int
    title: str
    author: str
    url: str
    labels: tuple[str, ...] = ()
    source_branch: str = ""
    target_branch: str = ""


@dataclass(frozen=True)
class Context:
    commit_sha: str = ""
    commit_short_sha: str = ""
    ref: str = ""
    before_sha: str = ""
    project_path: str = ""
    project_id: str = ""
    server_url: str = ""
    pipeline_id: str = ""
    pipeline_url: str = ""
    pipeline_source: str = ""
    job_id: str = ""
    job_url: str = ""
    user: str = ""
    environment: str = ""
    default_branch: str = ""
    deploy_freeze: bool = False
    merge_request: MergeRequest | None = None
    in_ci: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)  # what could not be found, and why

    @property
    def holder(self) -> str:
        """How a lock or a release names this run: the job URL in CI, else user@host."""
        return self.job_url or self.pipeline_url or self.user or "local"
