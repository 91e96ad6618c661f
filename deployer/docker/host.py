"""``DockerHost``: one Docker host behind the ``HostEngine`` interface (deployer/engine.py).

Read side (observe, kept, resolve) here and in observe.py/registry.py; the write side
(create, start, stop, health, lock, releases, ...) in containers.py, health.py, pull.py,
lock.py and releases.py. A ``DockerHost`` owns its ``Connection``: ``close()`` it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from deployer.docker import observe as _observe
from deployer.docker import registry as _registry
from deployer.docker.connect import DEFAULT_TIMEOUT, Connection, connect
from deployer.manifest.model import Environment, RegistryAuth, Service
from deployer.plan import Observed, ObservedContainer


class DockerHost:
    """One Docker host, whatever the transport (unix, tcp+TLS, ssh)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.client = conn.client
        self.api = conn.api
        self._name = conn.name

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"DockerHost({self._name})"

    # -- read side ----------------------------------------------------------------------

    def observe(
        self,
        app: str,
        environment: str,
        *,
        compose_project: str | None = None,
        services: Sequence[Service] = (),
    ) -> Observed:
        """The app's current containers here (plus compose's, adopted, for ``compose_project``)."""
        return _observe.observe(
            self.api,
            self._name,
            app,
            environment,
            compose_project=compose_project,
            services=services,
        )

    def kept(self, app: str, environment: str) -> Sequence[ObservedContainer]:
        return _observe.kept(self.api, self._name, app, environment)

    def resolve(
        self, image: str, auth: RegistryAuth | None, *, pull_policy: str = "always"
    ) -> str:
        """``repo@sha256:...`` from the registry (no pull); ``sha256:<id>`` for "never"."""
        return _registry.resolve(self.api, self._name, image, auth, pull_policy=pull_policy)

    def close(self) -> None:
        self.conn.close()


def connect_host(
    url: str,
    environ: Mapping[str, str],
    manifest_env: Environment | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> DockerHost:
    """Connect to ``url`` (checks the engine answers) and wrap it as a ``DockerHost``."""
    allow = bool(manifest_env and manifest_env.allow_insecure_tcp)
    return DockerHost(connect(url, environ, timeout=timeout, allow_insecure_tcp=allow))
