"""Run a command in a running container (``docker exec``) and stream its output."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import docker

from deployer.docker.containers import wrapped


def exec_in(
    api: docker.APIClient,
    host: str,
    container_id: str,
    command: Sequence[str],
    out: Callable[[bytes], None],
    err: Callable[[bytes], None],
    *,
    tty: bool = False,
) -> int:
    """Run ``command`` in the container; its output goes to ``out``/``err`` as it
    comes; returns its exit code. The stream ends when the command ends."""
    with wrapped(f"exec in {container_id[:12]}", host):
        created = api.exec_create(container_id, list(command), stdout=True, stderr=True, tty=tty)
        stream = api.exec_start(created["Id"], stream=True, demux=not tty, tty=tty)
        for chunk in stream:
            if tty:
                out(chunk)
                continue
            so, se = chunk
            if so:
                out(so)
            if se:
                err(se)
        info = api.exec_inspect(created["Id"])
    code = info.get("ExitCode")
    return 126 if code is None else int(code)
