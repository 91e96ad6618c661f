"""The dotenv report: variables for later jobs and the environment's URL.

GitLab's dotenv artifacts take ``KEY=VALUE`` lines only: no quotes, no multi-line
values, no comments or blank lines, at most 5 KB: long host and service lists are cut.
"""

from __future__ import annotations

from deployer.context import Context
from deployer.result import DeployResult

MAX_LIST = 1000  # characters of DEPLOY_HOSTS / DEPLOY_SERVICES


def _clean(value: object) -> str:
    return " ".join(str(value).split())


def _joined(items: list[str]) -> str:
    text = ",".join(items)
    if len(text) <= MAX_LIST:
        return text
    cut = text[:MAX_LIST].rsplit(",", 1)[0]
    return f"{cut},... ({len(items)} in all)"


def dotenv_vars(result: DeployResult, context: Context | None = None) -> dict[str, str]:
    out = {
        "DEPLOY_URL": result.url or "",
        "DEPLOY_RELEASE": result.release or "",
        "DEPLOY_PREVIOUS_RELEASE": result.previous_release or "",
        "DEPLOY_ENVIRONMENT": result.environment,
        "DEPLOY_APP": result.app,
        "DEPLOY_OUTCOME": str(result.outcome),
        "DEPLOY_SECONDS": f"{result.seconds:.1f}",
        "DEPLOY_HOSTS": _joined(sorted(result.hosts)),
        "DEPLOY_SERVICES": _joined(sorted(result.digests)),
    }
    if context is not None:
        out["DEPLOY_COMMIT"] = context.commit_sha
        if context.merge_request is not None:
            out["DEPLOY_MERGE_REQUEST"] = str(context.merge_request.iid)
    return {k: _clean(v) for k, v in out.items()}


def render_dotenv(values: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in values.items())
