"""`deployer status [-f FILE] [--env NAME] [--format text|json]`.

What runs where, per host and service replica: release, image digest, commit, merge
request, health, uptime, who deployed it and when. Read from the containers' labels
and the release records on each host; nothing changes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TextIO

from deployer.errors import EXIT_OK
from deployer.requests import StatusRequest


def run(req: StatusRequest, out: TextIO, environ: Mapping[str, str] | None = None) -> int:
    from deployer.manifest import load_manifest
    from deployer.ops import reached_all, warn_unreachable
    from deployer.target import open_target

    env = dict(os.environ if environ is None else environ)
    manifest = load_manifest(req.file, req.env, env)
    with open_target(manifest, env) as target:
        unreachable = target.connect_reachable()
        warn_unreachable(unreachable)
        out.write(target.status(req.format))
    out.flush()
    reached_all(unreachable)
    return EXIT_OK
