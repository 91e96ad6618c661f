"""Which GitLab project an app's environment belongs to on its hosts, and the guard that
keeps a CI job of another project from changing it by accident.

Two projects whose manifests name the same ``app:`` (one copied from the other) would
otherwise replace, prune and roll back each other's containers on a shared host. The
project is recorded with every release (``Release.project``/``project_id``); hosts that
only have releases of older deployers are read from the ``io.deployer.project`` label
those deployers already put on every container they created. Pure: no docker, no gitlab.

The rules (docs/guarantees.md, "One GitLab project's deploy does not replace another's"):

- same project (same id; else same path): go on; a project renamed or moved keeps its id
  and goes on, recording its new path;
- another project: refused (``InvalidInput``, exit 2) before anything changes, naming
  both, unless ``--take-over-from <recorded project path>`` (or the variable
  ``DEPLOYER_TAKE_OVER_FROM``) names exactly the project
  that deployed it: the app moves to this project on purpose (given when there is
  nothing to take, e.g. a retried job, the flag is said to do nothing);
- nothing recorded (a first deploy, or only records of older deployers without a label),
  or a run outside GitLab CI (no ``CI_PROJECT_PATH``): go on, and say so in the log; a
  run outside CI keeps the recorded project (``keep``), it does not free the app.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from deployer.context import Context
from deployer.engine import Release
from deployer.errors import InvalidInput
from deployer.plan import ObservedContainer

FLAG = "--take-over-from"
VARIABLE = "DEPLOYER_TAKE_OVER_FROM"  # the same, set once in GitLab's "Run job" form


def take_over(flag: str | None, environ: Mapping[str, str]) -> str:
    """The project a run may take the environment from: the flag, else the variable."""
    return (flag or environ.get(VARIABLE, "")).strip()


@dataclass(frozen=True)
class Owner:
    """The project that deployed the app's environment on one host (or Swarm)."""

    where: str
    path: str  # "" when nothing recorded says
    id: str = ""
    source: str = ""  # "release <id>", or "the labels of its container <name>"


def owner_of(
    where: str, releases: Sequence[Release], containers: Iterable[ObservedContainer] = ()
) -> Owner:
    """The project of the newest release that records one, else the project label of the
    app's containers (written by older deployers too), else no project."""
    for rel in reversed(releases):
        if rel.project:
            return Owner(where, rel.project, rel.project_id, f"release {rel.id}")
    # the newest container's (two projects' containers: the accident happened before)
    labelled = max((c for c in containers if c.project), key=lambda c: c.created, default=None)
    if labelled is not None:
        return Owner(where, labelled.project, "", f"the labels of its container {labelled.name}")
    return Owner(where, "")


def _same(owner: Owner, ctx: Context) -> bool:
    if owner.id and ctx.project_id:
        return owner.id == ctx.project_id
    return owner.path == ctx.project_path


def guard(
    owners: Sequence[Owner],
    app: str,
    environment: str,
    ctx: Context,
    take_over: str = "",
    manifest_path: str = "deploy.yml",
) -> list[str]:
    """Refuse (exit 2) a run of another project than the one that deployed
    ``app``/``environment`` on any of ``owners``' hosts; else the lines to log."""
    what = f"{app}/{environment}"
    recorded = [o for o in owners if o.path]
    if not ctx.project_path:
        if recorded:
            projects = ", ".join(sorted({o.path for o in recorded}))
            return [
                f"not a GitLab CI job (no CI_PROJECT_PATH): {what} belongs to {projects}, "
                "not checked; it stays that project's"
            ]
        return []
    me = ctx.project_path
    others = [o for o in recorded if not _same(o, ctx)]
    lines: list[str] = []
    if take_over and not others:  # a retried job, or the flag left in: nothing to take
        lines.append(f"{FLAG} {take_over}: {what} is not that project's; the flag does nothing")
    for o in others:
        if take_over and o.path == take_over:
            lines.append(
                f"{o.where}: {what} moves from the GitLab project {o.path} to {me} "
                f"({FLAG}): a deploy or rollback records it as {me}'s"
            )
            continue
        raise InvalidInput(
            f"{o.where}: {what} was deployed by the GitLab project {o.path} (recorded in "
            f"{o.source}), and this job is of {me}: refused, nothing changed",
            hint=(
                f"if this is another app, give it a name of its own (`app:` in "
                f"{manifest_path}); to move {what} to {me} on purpose, run again with "
                f"{FLAG} {o.path} (in a job: the variable {VARIABLE}={o.path})"
            ),
        )
    renamed = sorted({o.path for o in recorded if _same(o, ctx) and o.path != me})
    if renamed:
        lines.append(f"{what}: the GitLab project {', '.join(renamed)} is now {me} (same id)")
    if not recorded and owners:
        lines.append(f"{what}: no GitLab project recorded on its hosts; recording {me}")
    return lines


def keep(release: Release, previous: Release | None) -> Release:
    """``release`` with the project it belongs to: a run outside CI (no project) keeps
    the one the previous release recorded."""
    from dataclasses import replace

    if release.project or previous is None or not previous.project:
        return release
    return replace(release, project=previous.project, project_id=previous.project_id)
