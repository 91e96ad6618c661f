"""Gates that refuse a deploy before anything on a host changes: a deploy freeze and
the manifest's hold label on the merge request. ``--force`` overrides both, loudly."""

from __future__ import annotations

from deployer.context import Context
from deployer.errors import Blocked
from deployer.manifest.model import GitlabPolicy


def check(ctx: Context, policy: GitlabPolicy, *, force: bool = False) -> list[str]:
    """Raise ``Blocked`` (exit 4) when a gate is closed. With ``force`` return instead
    the lines to log saying which gate was overridden."""
    overridden: list[str] = []
    if ctx.deploy_freeze:
        if not force:
            raise Blocked(
                "a deploy freeze is active (CI_DEPLOY_FREEZE is set for this pipeline)",
                hint="wait until the freeze period ends (Settings > CI/CD > Deploy freezes), "
                "or run the deploy with --force if this deploy must go out now",
            )
        overridden.append("deploy freeze is active: deploying anyway (--force)")
    mr = ctx.merge_request
    if mr is not None and policy.hold_label and policy.hold_label in mr.labels:
        where = f" {mr.url}" if mr.url else ""
        if not force:
            raise Blocked(
                f"merge request !{mr.iid} ({mr.title}) has the label {policy.hold_label!r}:"
                f" deploy held{where}",
                hint=f"remove the label {policy.hold_label!r} from !{mr.iid} and run the job "
                "again, or deploy with --force",
            )
        overridden.append(
            f"merge request !{mr.iid} has the label {policy.hold_label!r}: deploying anyway"
            " (--force)"
        )
    return overridden
