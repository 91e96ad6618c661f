"""The deployer run by a test: in-process (``cli``), or as its console script in a
checkout as a CI job runs it (``Job``: the real process, its exit code, everything it
prints); and what a run left on the engine (``current``, ``sh``)."""

from __future__ import annotations

import io
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import docker

from deployer import labels as L
from deployer.cli import main
from tests.testenv import TestEnv

ROOT = Path(__file__).resolve().parents[1]
DEPLOYER = ROOT / ".venv" / "bin" / "deployer"


# the commands that write reports (into --report-dir, by default the working directory)
REPORTING = ("deploy", "rollback", "restart")


def cli(*argv: str) -> tuple[int, str]:
    """``deployer <argv>`` in this process, with this process's environment: (exit
    code, what it printed). A reporting command not told where writes its reports into a
    directory of its own, not into the checkout the tests run in (where parallel tests
    would overwrite each other's)."""
    out = io.StringIO()
    args = list(argv)
    if args and args[0] in REPORTING and not any(a.startswith("--report-dir") for a in args):
        with tempfile.TemporaryDirectory(prefix="deployer-reports-") as reports:
            return main([*args, "--report-dir", reports], out), out.getvalue()
    return main(args, out), out.getvalue()


def job_environ(testenv: TestEnv, host: str = "ssh", **extra: str) -> dict[str, str]:
    """A job's variables and nothing of ours: PATH, HOME, the host to deploy to (``ssh``
    with its key and known_hosts, or ``engine`` over the socket) and ``extra``."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(ROOT / ".testenv")}
    if host == "ssh":
        env.update(testenv.ssh_environ())
    else:
        env["DOCKER_HOST"] = testenv.engine_host
    return {**env, **extra}


@dataclass
class Job:
    """``job(*args, expect=0)``: `deployer <args>` in ``cwd`` with only ``env``; asserts
    its exit code and returns what it printed (stdout, then stderr; only stdout with
    ``stderr=False``). Every output is kept in ``written``, for the tests that scan them."""

    cwd: Path
    env: Mapping[str, str]
    timeout: float = 300
    stderr: bool = True
    written: list[tuple[str, bytes]] = field(default_factory=list)

    def __call__(self, *args: str, expect: int = 0) -> str:
        proc = subprocess.run(
            [str(DEPLOYER), *args],
            cwd=self.cwd,
            env=dict(self.env),
            capture_output=True,
            timeout=self.timeout,
            check=False,
        )
        self.written.append((f"{args} stdout", proc.stdout))
        self.written.append((f"{args} stderr", proc.stderr))
        assert proc.returncode == expect, (args, proc.stdout.decode(), proc.stderr.decode())
        return proc.stdout.decode() + (proc.stderr.decode() if self.stderr else "")


def current(
    engine: docker.DockerClient, app: str, service: str
) -> docker.models.containers.Container:
    """The one current container of ``service`` (asserted one)."""
    found = engine.containers.list(
        filters={"label": [f"{L.APP}={app}", f"{L.SERVICE}={service}", f"{L.ROLE}=current"]}
    )
    assert len(found) == 1, [c.name for c in found]
    return found[0]


def sh(container: docker.models.containers.Container, script: str) -> str:
    """``sh -c script`` in the container (asserted to succeed); its output."""
    code, out = container.exec_run(["sh", "-c", script])
    assert code == 0, out
    return str(out.decode())
