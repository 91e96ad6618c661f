"""Access to the GitLab API: which token, which client, and wrapping its errors.

Two tokens exist in a job. ``CI_JOB_TOKEN`` can read commits, the merge requests of a
commit and merge requests; it cannot post notes. ``DEPLOYER_GITLAB_TOKEN`` (a project
access token with api scope, given as a masked variable) can. Reads use the write
token when it is set, else the job token; writes use only the write token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import gitlab

DEFAULT_TIMEOUT = 10.0
WRITE_TOKEN = "DEPLOYER_GITLAB_TOKEN"


@dataclass(frozen=True)
class Access:
    url: str
    token: str
    kind: Literal["private", "job"]

    def __repr__(self) -> str:  # never show the token
        return f"Access(url={self.url!r}, kind={self.kind!r})"


def server_url(environ: Mapping[str, str]) -> str:
    return environ.get("CI_SERVER_URL", "").rstrip("/")


def read_access(environ: Mapping[str, str]) -> Access | None:
    """The token to read with: the write token if given, else the job token."""
    url = server_url(environ)
    if not url:
        return None
    if environ.get(WRITE_TOKEN):
        return Access(url, environ[WRITE_TOKEN], "private")
    if environ.get("CI_JOB_TOKEN"):
        return Access(url, environ["CI_JOB_TOKEN"], "job")
    return None


def write_access(environ: Mapping[str, str]) -> Access | None:
    """Only the write token may write; the job token is never used for notes."""
    url = server_url(environ)
    if url and environ.get(WRITE_TOKEN):
        return Access(url, environ[WRITE_TOKEN], "private")
    return None


def client(access: Access, timeout: float = DEFAULT_TIMEOUT) -> gitlab.Gitlab:
    import gitlab

    kwargs: dict[str, Any] = {"timeout": timeout, "retry_transient_errors": False}
    if access.kind == "private":
        kwargs["private_token"] = access.token
    else:
        kwargs["job_token"] = access.token
    return gitlab.Gitlab(access.url, **kwargs)


def api_errors() -> tuple[type[BaseException], ...]:
    """The exceptions one API call can raise: GitLab's answers and transport failures."""
    import gitlab.exceptions
    import requests

    return (gitlab.exceptions.GitlabError, requests.RequestException)


def describe(error: BaseException) -> str:
    """A one-line reason for a failed call, without request headers (tokens)."""
    import gitlab.exceptions
    import requests

    if isinstance(error, gitlab.exceptions.GitlabAuthenticationError):
        return f"GitLab refused the token (HTTP {error.response_code})"
    if isinstance(error, gitlab.exceptions.GitlabError):
        code = f"HTTP {error.response_code}: " if error.response_code else ""
        return f"GitLab answered {code}{error.error_message}"
    if isinstance(error, requests.Timeout):
        return "GitLab did not answer in time"
    if isinstance(error, requests.ConnectionError):
        return "cannot connect to GitLab"
    return f"GitLab request failed: {type(error).__name__}"
