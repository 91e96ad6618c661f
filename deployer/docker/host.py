"""``DockerHost``: one Docker host behind the ``HostEngine`` interface (deployer/engine.py).

Read side (observe, kept, resolve) here and in observe.py/registry.py; the write side
(create, start, stop, health, lock, releases, ...) in containers.py, infra.py (networks,
volumes), aliases.py (network aliases, start), health.py, pull.py, lock.py and
releases.py. A ``DockerHost`` owns its ``Connection``: ``close()`` it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence

from deployer.docker import aliases as _aliases
from deployer.docker import containers as _containers
from deployer.docker import health as _health
from deployer.docker import hooks as _hooks
from deployer.docker import infra as _infra
from deployer.docker import lock as _lock
from deployer.docker import observe as _observe
from deployer.docker import pull as _pull
from deployer.docker import registry as _registry
from deployer.docker import releases as _releases
from deployer.docker.connect import DEFAULT_TIMEOUT, Connection, connect
from deployer.engine import HealthOutcome, HookOutcome, Lease, Release, TaskOutcome
from deployer.manifest.model import (
    Environment,
    Hook,
    Manifest,
    RegistryAuth,
    Service,
    host_form,
)
from deployer.plan import Leftover, Observed, ObservedContainer


class DockerHost:
    """One Docker host, whatever the transport (unix, tcp+TLS, ssh)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.client = conn.client
        self.api = conn.api
        self._name = conn.name
        self.shipped: list[str] = []  # files written by the last ensure_infrastructure

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"DockerHost({self._name})"

    @property
    def api_version(self) -> str:
        """The Engine API version this host's engine speaks."""
        return self.conn.api_version

    def check_binds(self, manifest: Manifest) -> None:
        """Refuse (exit 2) a bind whose source is here a symlink to a protected path."""
        from deployer.docker.symlinks import check_binds

        check_binds(manifest, self.client, self.name)

    def check_external(self, manifest: Manifest) -> None:
        """Refuse (exit 2) an ``external: true`` network or volume this host lacks."""
        _infra.check_external(self.client, self._name, manifest)

    def check_support(self, manifest: Manifest) -> None:
        """Refuse (exit 2) a logging, volume or network driver or a runtime the engine lacks."""
        from deployer.docker.support import check_support

        check_support(manifest, self.client, self.name)

    def check_owners(self, manifest: Manifest) -> None:
        """Refuse (exit 2) an existing volume or a lending container that is not this app's
        and environment's."""
        from deployer.docker.owners import check_owners

        check_owners(manifest, self.client, self.name)

    def check_subnets(self, manifest: Manifest) -> None:
        """Refuse (exit 2) an explicit subnet of a network to create that overlaps a
        network this host routes (``deployer.docker.subnets``)."""
        from deployer.docker.subnets import check_subnets

        check_subnets(manifest, self.api, self.name, self.conn.url)

    def check_networks(self, manifest: Manifest) -> None:
        """Refuse (exit 2) an existing network the services join that is, here, a macvlan
        or ipvlan network (the host's LAN) without ``policy.allow: [host-lan]``."""
        from deployer.docker.lan import check_networks

        check_networks(manifest, self.api, self.name)

    # -- read side ----------------------------------------------------------------------

    def observe(
        self,
        app: str,
        environment: str,
        *,
        compose_project: str | None = None,
        services: Sequence[Service] = (),
        engine_names: Mapping[str, str] | None = None,
    ) -> Observed:
        """The app's current containers here (plus compose's, adopted, for ``compose_project``).

        ``engine_names``: ``Manifest.engine_names()``, the networks and volumes a compose
        `name:` names."""
        return _observe.observe(
            self.api,
            self._name,
            app,
            environment,
            compose_project=compose_project,
            services=services,
            engine_names=engine_names,
        )

    def kept(self, app: str, environment: str) -> Sequence[ObservedContainer]:
        return _observe.kept(self.api, self._name, app, environment)

    def leftovers(self, app: str, environment: str) -> Sequence[Leftover]:
        summaries = _observe.list_app(self.api, self._name, app, environment)
        return _observe.leftovers(summaries, app, environment)

    def resolve(self, image: str, auth: RegistryAuth | None, *, pull_policy: str = "always") -> str:
        """``repo@sha256:...`` from the registry (no pull); ``sha256:<id>`` for "never"."""
        return _registry.resolve(self.api, self._name, image, auth, pull_policy=pull_policy)

    # -- write side (deployer/docker/containers.py, health.py, pull.py, lock.py, releases.py)

    def pull(self, ref: str, auth: RegistryAuth | None, progress: Callable[[str], None]) -> None:
        """Pull ``repo@sha256:...`` (skipped when the host has it: digests are content)."""
        if _pull.has_image(self.client, self._name, ref):
            shown = ref.split("@", 1)[0].rsplit("/", 1)[-1] if "@" in ref else ref[:19]
            progress(f"{shown}: already on the host")
            return
        _pull.pull(self.client, self._name, ref, auth, progress)

    def ensure_infrastructure(self, manifest: Manifest) -> None:
        _infra.ensure_infrastructure(self.client, self._name, manifest)
        if any(s.files for s in manifest.services):
            from deployer.docker import files as repo_files

            self.shipped = repo_files.ship(self.client, self._name, manifest)

    def create(
        self,
        manifest: Manifest,
        service: Service,
        digest: str,
        replica: int,
        labels: Mapping[str, str],
        name: str,
        anonymous_volumes_from: str | None = None,
        aliases: bool = True,
    ) -> str:
        return _containers.create_container(
            self.client,
            self._name,
            manifest,
            service,
            digest,
            labels,
            name,
            anonymous_volumes_from,
            aliases,
        )

    def start(self, container_id: str) -> None:
        _aliases.start(self.client, self._name, container_id)

    def stop(self, container_id: str, timeout: float) -> None:
        _containers.stop(self.client, self._name, container_id, timeout)

    def run_hook(self, container_id: str, hook: Hook, timeout: float) -> HookOutcome:
        return _hooks.run_hook(self.client, self._name, container_id, hook, timeout)

    def rename(self, container_id: str, name: str) -> None:
        with _containers.wrapped(f"rename {container_id[:12]} to {name}", self._name):
            self.api.rename(container_id, name)

    def remove(self, container_id: str) -> None:
        _containers.remove(self.client, self._name, container_id)

    def detach_aliases(self, container_id: str) -> Mapping[str, Sequence[str]]:
        return _aliases.detach_aliases(self.client, self._name, container_id)

    def attach_aliases(self, container_id: str, aliases: Mapping[str, Sequence[str]]) -> None:
        _aliases.attach_aliases(self.client, self._name, container_id, aliases)

    def ensure_aliases(self, container_id: str, aliases: Mapping[str, Sequence[str]]) -> bool:
        return _aliases.ensure_aliases(self.client, self._name, container_id, aliases)

    def health_now(self, container_id: str) -> HealthOutcome:
        return _health.health_now(self.client, self._name, container_id)

    def wait_healthy(
        self, container_id: str, timeout: float, stable: float, start_interval: float | None = None
    ) -> HealthOutcome:
        return _health.wait_healthy(
            self.client, self._name, container_id, timeout, stable, start_interval=start_interval
        )

    def wait_completed(self, container_id: str, timeout: float) -> HealthOutcome:
        return _health.wait_completed(self.client, self._name, container_id, timeout)

    def watch(
        self, container_ids: Sequence[str], seconds: float, exit_ok: bool = False
    ) -> tuple[str, HealthOutcome] | None:
        return _health.watch(self.client, self._name, container_ids, seconds, exit_ok=exit_ok)

    def logs(self, container_id: str, tail: int) -> str:
        return _containers.logs(self.client, self._name, container_id, tail)

    def run_task(
        self,
        manifest: Manifest,
        service: Service,
        digest: str,
        command: Sequence[str],
        labels: Mapping[str, str],
        timeout: float,
        progress: Callable[[str], None] | None = None,
    ) -> TaskOutcome:
        name = f"{manifest.app}-{host_form(manifest.environment.name)}-task-{secrets.token_hex(4)}"
        code, output, seconds = _containers.run_task(
            self.client,
            self._name,
            manifest,
            service,
            digest,
            command,
            labels,
            name,
            timeout,
            progress,
        )
        return TaskOutcome(code, output, seconds)

    def acquire_lock(self, key: str, holder: str, ttl: float, wait: float = 0.0) -> Lease:
        return _lock.acquire(self.client, self._name, key, holder, ttl, wait)

    def renew_lock(self, lease: Lease, ttl: float) -> Lease:
        return _lock.renew(self.client, self._name, lease, ttl)

    def release_lock(self, lease: Lease) -> None:
        _lock.release(self.client, self._name, lease)

    def releases(self, app: str, environment: str) -> Sequence[Release]:
        return _releases.list_releases(self.client, self._name, app, environment)

    def record_release(self, release: Release) -> None:
        _releases.record(self.client, self._name, release)

    def prune(self, app: str, environment: str, keep: Sequence[Release]) -> list[str]:
        return _releases.prune(self.client, self._name, app, environment, keep)

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
