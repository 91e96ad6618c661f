"""A service's lifecycle hook (``post_start``, ``pre_stop``) run in one of its containers,
as docker compose runs it: an exec with the hook's user, privileges, working directory and
variables, its output kept for the log, bounded in time."""

from __future__ import annotations

import threading
import time

import docker

from deployer.docker.containers import wrapped
from deployer.engine import HookOutcome
from deployer.manifest.model import Hook

OUTPUT_TAIL = 2048  # characters of a hook's output kept for the log (its end)


def run_hook(
    client: docker.DockerClient, host: str, container_id: str, hook: Hook, timeout: float
) -> HookOutcome:
    """Run ``hook`` in the container; its exit code (None: still running after
    ``timeout`` seconds, left to the container's stop or removal) and its last output."""
    api: docker.APIClient = client.api
    started = time.monotonic()
    with wrapped(f"run a hook in {container_id[:12]}", host):
        created = api.exec_create(
            container_id,
            list(hook.command),
            stdout=True,
            stderr=True,
            privileged=hook.privileged,
            user=hook.user or "",
            environment=[f"{k}={v}" for k, v in hook.environment] or None,
            workdir=hook.working_dir,
        )
        exec_id = created["Id"]
        output: list[bytes] = []
        failed: list[BaseException] = []

        def attach() -> None:
            try:
                data = api.exec_start(exec_id, stream=False)
                output.append(data if isinstance(data, bytes) else b"")
            except BaseException as e:  # reported by the caller's thread  # noqa: BLE001
                failed.append(e)

        worker = threading.Thread(target=attach, name="hook", daemon=True)
        worker.start()
        worker.join(max(timeout, 0.0))
        seconds = time.monotonic() - started
        if worker.is_alive():
            return HookOutcome(None, "", seconds)
        if failed:
            raise failed[0]
        code = api.exec_inspect(exec_id).get("ExitCode")
    text = b"".join(output).decode("utf-8", "replace").strip()
    return HookOutcome(126 if code is None else int(code), text[-OUTPUT_TAIL:], seconds)
