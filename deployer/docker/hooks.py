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
_KEPT = OUTPUT_TAIL * 4  # bytes read kept (a character is up to 4): the rest is dropped as read


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
        output = bytearray()  # its last bytes only: a hook may print without end
        failed: list[BaseException] = []

        def attach() -> None:
            try:
                for chunk in api.exec_start(exec_id, stream=True):
                    output.extend(chunk if isinstance(chunk, bytes) else b"")
                    if len(output) > _KEPT:
                        del output[:-_KEPT]
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
    text = bytes(output).decode("utf-8", "replace").strip()
    return HookOutcome(126 if code is None else int(code), text[-OUTPUT_TAIL:], seconds)
