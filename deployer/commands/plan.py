"""`deployer plan`: what a deploy would change on each host, changing nothing.

Loads the manifest for the environment, connects to its hosts, resolves every image to
a digest (no pull), observes what runs and prints the plan as a table (text), JSON or
Markdown. Exit 0; with ``--detailed-exitcode`` 0 when nothing would change, 10 when
something would (like terraform). Connection and registry failures exit 3.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import TextIO

from deployer.errors import EXIT_CHANGES, EXIT_OK, InvalidInput
from deployer.manifest.model import Manifest


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


def run(args: argparse.Namespace, out: TextIO, environ: Mapping[str, str] | None = None) -> int:
    from deployer.report.plan import render
    from deployer.targets import prepare

    env = dict(os.environ if environ is None else environ)
    only = services_arg(args.services)
    manifest = load_manifest(args.file, args.env, env)
    if manifest.environment.engine == "swarm":
        from deployer.swarm import commands as swarm

        plan = swarm.plan(manifest, env, only)
    else:
        with prepare(manifest, env, only) as prepared:
            plan = prepared.plan
    out.write(render(plan, args.format))
    out.flush()
    from deployer.gitlab.notes import share_plan

    note = share_plan(plan, env)  # MR pipelines only; stderr keeps --format json clean
    if note:
        print(note, file=sys.stderr)
    if args.detailed_exitcode and plan.changes:
        return EXIT_CHANGES
    return EXIT_OK
