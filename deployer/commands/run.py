"""`deployer run TASK` or `deployer run --service S -- CMD...`.

A one-off container from the deployed release's image (its exact digest, even when the
tag has moved since) with the service's configuration, the same path as the manifest's
tasks; removed afterwards. Exits with the command's exit code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TextIO

from deployer.errors import InvalidInput
from deployer.manifest.model import Manifest, Task
from deployer.ownership import take_over
from deployer.requests import RunRequest

DEFAULT_TIMEOUT = 600.0


def choose_task(manifest: Manifest, name: str | None, service: str | None, argv: list[str]) -> Task:
    from deployer.commands.exec import command_arg

    if name and not service:
        found = [t for t in manifest.tasks if t.name == name]
        if not found:
            names = ", ".join(t.name for t in manifest.tasks) or "none"
            raise InvalidInput(
                f"{name}: not a task of {manifest.path}",
                hint=f"the tasks are: {names}; or run a command with --service S -- CMD",
            )
        if argv[1:] if argv[:1] == ["--"] else argv:
            raise InvalidInput(
                f"{name}: a task runs the command the manifest gives it, not `-- CMD`",
                hint=f"deployer run {name}, or deployer run --service S -- CMD",
            )
        return found[0]
    if not service:
        raise InvalidInput(
            "nothing to run", hint="deployer run TASK, or deployer run --service web -- CMD"
        )
    if service not in manifest.service_names:
        raise InvalidInput(
            f"--service {service}: not a service of {manifest.path}",
            hint=f"the services are: {', '.join(manifest.service_names)}",
        )
    # After `--` argparse gives the command's first word as TASK: it belongs to CMD.
    command = command_arg(([name] if name else []) + argv)
    return Task("run", service, tuple(command), "before-deploy", DEFAULT_TIMEOUT)


def run(req: RunRequest, out: TextIO, environ: Mapping[str, str] | None = None) -> int:
    from deployer.commands.deploy import load
    from deployer.gitlab.context import from_variables
    from deployer.ops import check_project, open_environment
    from deployer.report.log import JobLog
    from deployer.report.redact import secret_values

    env = dict(os.environ if environ is None else environ)
    manifest = load(req, env)
    task = choose_task(manifest, req.task, req.service, list(req.argv))
    log = JobLog(out, secrets=secret_values(manifest, env))
    ops = open_environment(manifest, env)
    try:
        check_project(
            ops, manifest, from_variables(env), take_over(req.take_over_from, env), log.line
        )
        code = ops.run(task, log.line)
    finally:
        ops.close()
    log.line(f"{task.name} exited with code {code}")
    return code
