"""`deployer plan`: what a deploy would change on each host, changing nothing.

Loads the manifest for the environment, connects to its hosts, resolves every image to
a digest (no pull), observes what runs and prints the plan as a table (text), JSON or
Markdown. Exit 0; with ``--detailed-exitcode`` 0 when nothing would change, 10 when
something would (like terraform). Connection and registry failures exit 3.

``--against last-deployment`` (merge request pipelines) contacts no host: it compares
the manifest with the state recorded in the report of the environment's last successful
deployment, read through GitLab's API with the job token. When that report cannot be
read, the plan is validate-only and says why in one line (exit 0).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from deployer.errors import EXIT_CHANGES, EXIT_OK, InvalidInput
from deployer.manifest.model import Manifest
from deployer.ownership import take_over
from deployer.plan import check_only
from deployer.requests import PlanRequest


def load_manifest(path: str, env_name: str | None, environ: Mapping[str, str]) -> Manifest:
    """The manifest validated and interpolated for one environment (exit 2 when invalid)."""
    from deployer.manifest.loader import load_manifest as load

    return load(path, env_name, environ)


def services_arg(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [s.strip() for s in value.split(",") if s.strip()]
    if not names:
        raise InvalidInput("--services is empty", hint="name services: --services web,worker")
    return names


def run(req: PlanRequest, out: TextIO, environ: Mapping[str, str] | None = None) -> int:
    from deployer.report.plan import render
    from deployer.target import open_target

    env = dict(os.environ if environ is None else environ)
    only = services_arg(req.services)
    manifest = load_manifest(req.file, req.env, env)
    if req.against == "last-deployment":
        return run_against_last_deployment(req, manifest, env, out)
    notes = [
        f"{s.name}: `build:` is not used at deploy time; the deploy runs the image {s.image}"
        + (" (the name `deployer build --push` pushes to)" if s.build.image_defaulted else "")
        for s in manifest.services
        if s.build is not None and (only is None or s.name in only)
    ] + data_notes(manifest, only)
    from deployer.gitlab.context import from_variables

    with open_target(
        manifest, env, from_variables(env), take_over(req.take_over_from, env)
    ) as target:
        check_only(manifest, only)
        target.connect(None)
        plan = target.plan(only, None)  # another GitLab project's environment: exit 2
        routes = target.routes()
        notes += target.notes
    if routes:
        out.write(_with_routes(render(plan, req.format), req.format, routes))
        _notes(notes + restart_notes(manifest, plan), req.format, out)
        out.flush()
        return _exit(req, plan)
    out.write(render(plan, req.format))
    _notes(notes + restart_notes(manifest, plan), req.format, out)
    out.flush()
    from deployer.gitlab.notes import share_plan

    note = share_plan(plan, env)  # MR pipelines only; stderr keeps --format json clean
    if note:
        print(note, file=sys.stderr)
    if req.detailed_exitcode and plan.changes:
        return EXIT_CHANGES
    return EXIT_OK


def _notes(notes: list[str], fmt: str, out: TextIO) -> None:
    if notes:
        print("\n".join(notes), file=out if fmt == "text" else sys.stderr)


def restart_notes(manifest: Manifest, plan: Any) -> list[str]:
    """The services a deploy restarts because it replaces one they depend on with
    ``restart: true`` (their own step says nothing changes)."""
    from deployer.plan import Action

    out = []
    for hp in plan.hosts:
        replaced = {s.service for s in hp.steps if s.changes and s.action is not Action.REMOVE}
        for svc in manifest.services:
            why = sorted(set(svc.depends_restart) & replaced)
            if why and svc.name not in replaced:
                out.append(
                    f"{hp.host}: {svc.name} restarts when {', '.join(why)} is replaced "
                    "(depends_on restart: true)"
                )
    return out


def data_notes(manifest: Manifest, only: Sequence[str] | None = None) -> list[str]:
    """One line per data directory of the compose files: what stands for it on the hosts."""
    from deployer.naming import app_volume_name

    out = []
    for vol in manifest.volumes:
        if vol.data_dir is None:
            continue
        users = [
            f"{s.name} at {m.target}"
            for s in manifest.services
            for m in s.volumes
            if m.type == "volume" and m.source == vol.name and (only is None or s.name in only)
        ]
        if users:
            out.append(
                f"{vol.data_dir} is data ({', '.join(users)}): the volume "
                f"{app_volume_name(manifest, vol.name)}, created empty on each host and kept "
                "across deploys and rollbacks (`deployer down --volumes` removes it)"
            )
    return out


def _with_routes(text: str, fmt: str, routes: list[dict[str, str]]) -> str:
    if fmt == "json":
        data = json.loads(text)
        data["routes"] = routes
        return json.dumps(data, indent=2) + "\n"
    lines = ["", "Edge proxy routes:"]
    lines += [f"  {r['change']:8} {r['route']}  ({r['host']})" for r in routes]
    return text.rstrip("\n") + "\n" + "\n".join(lines) + "\n"


def _exit(req: PlanRequest, plan: Any) -> int:
    if req.detailed_exitcode and plan.changes:
        return EXIT_CHANGES
    return EXIT_OK


def run_against_last_deployment(
    req: PlanRequest, manifest: Manifest, env: Mapping[str, str], out: TextIO
) -> int:
    """The manifest against the last successful deployment's recorded state; validate-only
    (with the reason) when it cannot be read. No host is contacted."""
    from deployer import baseline
    from deployer.gitlab.deployments import Unavailable, last_deployment_report

    name = manifest.environment.name
    try:
        report, source = last_deployment_report(env, name, req.artifact, app=manifest.app)
        plan = baseline.compare(manifest, report, source)
    except (Unavailable, baseline.NotAState) as e:
        reason = str(e) if isinstance(e, Unavailable) else f"the recorded report: {e}"
        if req.format == "json":
            json.dump({"against": "last-deployment", "validate_only": reason}, out)
            out.write("\n")
        else:
            out.write(f"validate only: {reason}\n")
            out.write(f"{manifest.path}: valid for {name} ({len(manifest.services)} services)\n")
        out.flush()
        return EXIT_OK
    if req.format == "json":
        json.dump(baseline.as_dict(plan), out, indent=2)
        out.write("\n")
    elif req.format == "markdown":
        out.write(baseline.render_markdown(plan))
    else:
        out.write(baseline.render_text(plan))
    out.flush()
    if env.get("CI_MERGE_REQUEST_IID"):
        from deployer.gitlab.context import from_variables
        from deployer.gitlab.notes import PLAN_MARKER, post_note

        body = PLAN_MARKER.format(app=plan.app, env=plan.environment) + "\n\n"
        body += baseline.render_markdown(plan)
        print(post_note(from_variables(env), body, env, what="plan"), file=sys.stderr)
    if req.detailed_exitcode and plan.changed:
        return EXIT_CHANGES
    return EXIT_OK
