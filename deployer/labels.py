"""Names of the labels the deployer puts on what it creates (containers, volumes, images).

Pure constants so that the plan (pure core) and the Docker adapter agree on them.
"""

from __future__ import annotations

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

COMPOSE_PROJECT = "com.docker.compose.project"
# What Swarm (and `docker stack deploy`) labels a stack's services and volumes with.
STACK_NAMESPACE = "com.docker.stack.namespace"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_NUMBER = "com.docker.compose.container-number"
COMPOSE_ONEOFF = "com.docker.compose.oneoff"
COMPOSE_CONFIG_HASH = "com.docker.compose.config-hash"  # compose v2 lists only containers with one
