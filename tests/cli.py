"""The deployer run by a test: in-process (``cli``), or as its console script in a
checkout as a CI job runs it (``Job``: the real process, its exit code, everything it
prints); and what a run left on the engine (``current``, ``sh``)."""

from __future__ import annotations

import io
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
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


def start_deploy(
    manifest: Path, image: str, command: str = "deploy", env_name: str = "test"
) -> subprocess.Popen[str]:
    """``deployer <command>`` of ``manifest`` in a process of its own, as a job runs it
    (none of our CI variables), ``WEB_IMAGE`` set to ``image``; its output on one pipe."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CI", "GITLAB"))}
    env.update(WEB_IMAGE=image, PYTHONUNBUFFERED="1")
    env.pop("DOCKER_HOST", None)
    return subprocess.Popen(
        [sys.executable, "-m", "deployer", command, "-f", str(manifest), "--env", env_name],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def signal_at(
    manifest: Path,
    image: str,
    pattern: str,
    sig: int = signal.SIGKILL,
    deadline: float = 120,
) -> tuple[int, str]:
    """Run a deploy in its own process, send ``sig`` when it prints ``pattern`` (asserted
    to come within ``deadline`` seconds, before the deploy ends); its exit code and its
    whole output."""
    killed = sig == signal.SIGKILL
    return act_at(manifest, image, pattern, lambda p: p.send_signal(sig), killed, deadline)


def act_at(
    manifest: Path,
    image: str,
    pattern: str,
    act: Callable[[subprocess.Popen[str]], object],
    killed: bool = False,
    deadline: float = 120,
) -> tuple[int, str]:
    """Run a deploy in its own process, ``act`` on it when it prints ``pattern``
    (asserted to come within ``deadline`` seconds, before the deploy ends; ``killed``:
    the act ends it, read no further); its exit code and its whole output."""
    proc = start_deploy(manifest, image)
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    give_up = time.monotonic() + deadline
    acted = False
    try:
        while True:
            try:
                line = lines.get(timeout=max(give_up - time.monotonic(), 0.1))
            except queue.Empty:
                raise AssertionError(f"no end within {deadline:g} s:\n" + "".join(seen)) from None
            if line is None:
                break
            seen.append(line)
            if not acted and re.search(pattern, line):
                act(proc)
                acted = True
                if killed:
                    break
    finally:
        if proc.poll() is None and killed:
            proc.kill()
        proc.wait(timeout=120)
    assert acted, "the deploy ended before the line:\n" + "".join(seen)
    return proc.returncode, "".join(seen)


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
