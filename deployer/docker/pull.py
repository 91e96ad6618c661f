"""Pulls by digest through the low-level streaming API (FACTS 6, 8).

The high-level ``images.pull`` can swallow an error in the stream and hand back an
old local image; here any ``error`` message fails the pull. Credentials go with
every call (``login`` may return cached ones).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import docker
import docker.errors

from deployer.docker.containers import wrapped
from deployer.errors import DeployFailed
from deployer.manifest.model import RegistryAuth


def has_image(client: docker.DockerClient, host: str, ref: str) -> bool:
    with wrapped(f"look up image {ref}", host):
        try:
            client.api.inspect_image(ref)
            return True
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.NotFound:
            return False


def pull(
    client: docker.DockerClient,
    host: str,
    ref: str,
    auth: RegistryAuth | None,
    progress: Callable[[str], None],
) -> None:
    """Pull ``repo@sha256:...``; a local image ID (``sha256:...``) must already exist."""
    if ref.startswith("sha256:"):
        if not has_image(client, host, ref):
            raise DeployFailed(
                f"{host}: image {ref[:19]} is not on the host (pull_policy: never)",
                hint="build the image on this host before deploying, or set pull_policy",
            )
        return
    auth_config = {"username": auth.username, "password": auth.password} if auth else None
    layers_done = 0
    last = ""
    with wrapped(f"pull {ref}", host):
        stream = client.api.pull(ref, stream=True, decode=True, auth_config=auth_config)
        for msg in stream:
            m: dict[str, Any] = msg
            if m.get("error") or m.get("errorDetail"):
                detail = m.get("error") or (m.get("errorDetail") or {}).get("message")
                raise DeployFailed(
                    f"{host}: pull {ref} failed: {detail}",
                    hint="check the image exists in the registry and the credentials",
                )
            status = str(m.get("status") or "")
            if status in ("Pull complete", "Already exists"):
                layers_done += 1
                progress(f"{ref.split('@', maxsplit=1)[0]}: {layers_done} layer(s) ready")
            elif status.startswith(("Digest:", "Status:")) and status != last:
                progress(f"{ref.split('@', maxsplit=1)[0]}: {status}")
            last = status
    if not has_image(client, host, ref):
        raise DeployFailed(f"{host}: pull {ref} ended without the image on the host")
