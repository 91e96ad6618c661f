"""Names of the labels the deployer puts on what it creates (containers, volumes, images).

Pure constants so that the plan (pure core) and the Docker adapter agree on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

_C = TypeVar("_C", bound=Mapping[str, Any])

PREFIX = "io.deployer."
APP = PREFIX + "app"
ENVIRONMENT = PREFIX + "environment"
SERVICE = PREFIX + "service"
REPLICA = PREFIX + "replica"
RELEASE = PREFIX + "release"
DIGEST = PREFIX + "image-digest"
IMAGE = PREFIX + "image"
CONFIG_HASH = PREFIX + "config-hash"
CONFIG_PARTS = PREFIX + "config-parts"  # JSON: {key: short hash}
ROLE = PREFIX + "role"  # "current", "kept" (previous release, stopped), "task", "lock", "release"
COMMIT = PREFIX + "commit"
PIPELINE = PREFIX + "pipeline"
JOB = PREFIX + "job"
MR = PREFIX + "merge-request"
USER = PREFIX + "deployed-by"
TIME = PREFIX + "deployed-at"
PROJECT = PREFIX + "project"
PROJECT_ID = PREFIX + "project-id"  # on release records only (deployer.ownership)
MANAGED = PREFIX + "managed"  # "true" on everything the deployer owns

ROLE_CURRENT = "current"
ROLE_KEPT = "kept"
ROLE_TASK = "task"
ROLE_LOCK = "lock"
ROLE_RELEASE = "release"
ROLE_EDGE = "edge-proxy"  # the host's edge proxy (deployer.proxy)
# The policy entry of an app that manages the host's shared edge proxy: replaces it while
# it holds other apps' routes, and mounts its volumes (every app's certificates).
EDGE_PROXY_ALLOW = "edge-proxy"

# On every container Swarm runs for a task, whoever made the service. Such a container
# also carries every label of its image (Swarm adds none of its own to blank them): an
# image committed from an app's container, or built with LABEL io.deployer.app=..., makes
# its tasks look like that app's containers. Container mode never takes one for its own.
SWARM_TASK_ID = "com.docker.swarm.task.id"

COMPOSE_PROJECT = "com.docker.compose.project"
# What Swarm (and `docker stack deploy`) labels a stack's services and volumes with.
STACK_NAMESPACE = "com.docker.stack.namespace"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_NUMBER = "com.docker.compose.container-number"
COMPOSE_ONEOFF = "com.docker.compose.oneoff"
COMPOSE_CONFIG_HASH = "com.docker.compose.config-hash"  # compose v2 lists only containers with one


def not_swarm_tasks(containers: Iterable[_C]) -> list[_C]:
    """``containers`` (the engine's listing or inspect data) without Swarm's task containers:
    a label filter cannot say "without a label", so every container-mode listing of an
    app's containers goes through this."""
    out = []
    for c in containers:
        labels = c.get("Labels")
        if labels is None:
            labels = (c.get("Config") or {}).get("Labels")
        if SWARM_TASK_ID not in (labels or {}):
            out.append(c)
    return out
