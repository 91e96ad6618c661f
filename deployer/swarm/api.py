"""The raw side of a Swarm environment: one manager's Engine API through ``SwarmEngine``
(real or the recording fake), every call's failure turned into a located ``Unreachable``,
and the app's services, tasks, networks, secrets and configs read and written.

Nothing here decides what to change: ``swarm.apply`` does, through these calls.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Self

import docker
import docker.auth
import docker.errors
import requests.exceptions

from deployer import labels as L
from deployer.context import Context
from deployer.docker import registry
from deployer.docker.transport import wrapped_errors
from deployer.errors import InvalidInput
from deployer.manifest.model import Manifest, RegistryAuth, Service
from deployer.naming import stack_network_name
from deployer.report.log import Log
from deployer.result import StepRecord
from deployer.swarm import spec as S
from deployer.swarm.engine import DockerSwarmEngine, SwarmEngine

POLL = 0.5


class SwarmApi:
    """One Swarm (through one manager) for one app and environment: the raw calls."""

    def __init__(
        self,
        manifest: Manifest,
        engine: SwarmEngine | docker.DockerClient,
        host: str,
        *,
        context: Context | None = None,
        environ: Mapping[str, str] | None = None,
        on_close: Callable[[], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.manifest = manifest
        self.environ: Mapping[str, str] = environ if environ is not None else {}
        # The raw calls go through ``SwarmEngine`` (real or fake); a docker client is
        # wrapped in the real one.
        self.api: SwarmEngine = (
            DockerSwarmEngine(engine.api) if isinstance(engine, docker.DockerClient) else engine
        )
        self.name = host
        self.context = context or Context()
        self.on_close = on_close
        self.sleep = sleep
        self.clock = clock

    def close(self) -> None:
        if self.on_close is not None:
            self.on_close()
            self.on_close = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def wrapped(self, what: str) -> Iterator[None]:
        """A failed call ``what`` as a located ``Unreachable``, as for a host
        (``transport.wrapped_errors``: TLS, timeouts, SSH, the engine's refusal)."""
        with wrapped_errors(self.name, what, who="Swarm manager"):
            yield

    def step(self, kind: str, name: str, service: str, **fields: Any) -> StepRecord:
        """A step of this run on the manager, started now."""
        return StepRecord(
            host=self.name, name=name, kind=kind, service=service, started_at=time.time(), **fields
        )

    def check_manager(self) -> None:
        with self.wrapped("reading swarm state"):
            info = self.api.info()
        swarm = info.get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active":
            raise InvalidInput(
                f"environments.{self.manifest.environment.name}.engine is swarm, but the "
                f"engine at {self.name} is not part of a swarm "
                f"(state {swarm.get('LocalNodeState') or 'inactive'})",
                hint="run `docker swarm init` there, or point the environment's hosts at a "
                "Swarm manager",
            )
        if not swarm.get("ControlAvailable"):
            raise InvalidInput(
                f"the engine at {self.name} is a Swarm worker, not a manager: services can "
                "only be deployed through a manager",
                hint="put a manager first in the environment's hosts",
            )

    # -- reading ------------------------------------------------------------------------

    def app_services(self) -> list[dict[str, Any]]:
        with self.wrapped("listing services"):
            found: list[dict[str, Any]] = self.api.services(
                filters={"label": f"{S.STACK_NAMESPACE}={self.manifest.app}"}
            )
        return found

    def tasks_of(self, service_ids: Sequence[str], *, running: bool = True) -> list[dict[str, Any]]:
        if not service_ids:
            return []
        filters: dict[str, Any] = {"service": list(service_ids)}
        if running:
            filters["desired-state"] = "running"
        with self.wrapped("listing tasks"):
            found: list[dict[str, Any]] = self.api.tasks(filters=filters)
        return found

    def inspect(self, service_id: str) -> dict[str, Any]:
        with self.wrapped(f"inspecting service {service_id}"):
            found: dict[str, Any] = self.api.inspect_service(service_id)
        return found

    def auth_for(self, image: str) -> RegistryAuth | None:
        """Credentials for the image's registry (manifest, DOCKER_AUTH_CONFIG, CI_*)."""
        return registry.auth_for(image, self.manifest.registries, self.environ)

    def auth_header(self, image: str) -> dict[str, str]:
        auth = self.auth_for(image)
        if auth is None:
            return {}
        return {
            "X-Registry-Auth": docker.auth.encode_header(
                {
                    "username": auth.username,
                    "password": auth.password,
                    "serveraddress": registry.registry_of(image),
                }
            )
        }

    def create_service(self, spec: Mapping[str, Any]) -> str:
        headers = self.auth_header(spec["TaskTemplate"]["ContainerSpec"]["Image"])
        with self.wrapped(f"creating service {spec['Name']}"):
            created = self.api.create_service(spec, headers)
        return str(created["ID"])

    def update_service(self, service_id: str, spec: Mapping[str, Any]) -> None:
        headers = self.auth_header(spec["TaskTemplate"]["ContainerSpec"]["Image"])
        with self.wrapped(f"updating service {spec['Name']}"):
            version = self.api.inspect_service(service_id)["Version"]["Index"]
            self.api.update_service(service_id, version, spec, headers)

    def remove_service(self, service_id: str, deadline: float = 30.0) -> None:
        with (
            self.wrapped(f"removing service {service_id}"),
            contextlib.suppress(docker.errors.NotFound),
        ):
            self.api.remove_service(service_id)
        # Its task containers stop asynchronously; wait (bounded) so its networks can go.
        # Swarm leaves the exited containers of finished job tasks behind: remove those.
        label = f"com.docker.swarm.service.id={service_id}"
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            with self.wrapped("listing the service's containers"):
                left = self.api.containers(all=True, filters={"label": label})
            if all(c.get("State") in ("exited", "dead", "created") for c in left):
                for c in left:
                    with (
                        self.wrapped("removing a finished task's container"),
                        contextlib.suppress(docker.errors.NotFound),
                    ):
                        self.api.remove_container(c["Id"], force=True)
                return
            self.sleep(POLL)

    def ensure_networks(self, log: Log) -> None:
        m = self.manifest
        for name, external in S.app_networks(m):
            with self.wrapped(f"looking up network {name}"):
                found = [n for n in self.api.networks(names=[name]) if n["Name"] == name]
            if found:
                continue
            if external:
                raise InvalidInput(
                    f"{m.path}: networks.{name}: external network {name} does not exist on "
                    f"the swarm of {self.name}",
                    hint=f"create it (docker network create -d overlay --attachable {name})",
                )
            top = next((n for n in m.networks if stack_network_name(m, n.name) == name), None)
            with self.wrapped(f"creating network {name}"):
                self.api.create_network(
                    name,
                    driver=(top.driver if top and top.driver else "overlay"),
                    attachable=True,
                    internal=bool(top and top.internal),
                    labels={
                        S.STACK_NAMESPACE: m.app,
                        L.MANAGED: "true",
                        L.APP: m.app,
                        L.ENVIRONMENT: m.environment.name,
                        **dict(top.labels if top else ()),
                    },
                )
            log.line(f"network {name}: created (overlay, attachable)")

    def ensure_files(self, service: Service, log: Log) -> dict[str, str]:
        """The Swarm secrets and configs of ``service``'s files, created when missing (named
        by content: an existing one already holds the same bytes); returns name -> ID."""
        from deployer.docker.files import ROLE_FILES, raw_content

        m = self.manifest
        refs: dict[str, str] = {}
        for fm in service.files:
            name = S.object_name(m, fm)
            if name in refs:
                continue
            secret = fm.kind == "secret"
            with self.wrapped(f"looking up {fm.label}"):
                found = (self.api.secrets if secret else self.api.configs)(filters={"name": name})
            found = [o for o in found if o["Spec"]["Name"] == name]
            if found:
                refs[name] = found[0]["ID"]
                continue
            try:
                data = raw_content(fm)
            except ValueError as e:
                raise InvalidInput(
                    f"{m.path}: services.{service.name}: {fm.label} cannot be shipped: {e}"
                ) from e
            if len(data) > 500 * 1024:
                raise InvalidInput(
                    f"{m.path}: services.{service.name}: {fm.label} is larger than 500 KiB, "
                    "the limit of a Swarm secret or config",
                    hint="bake it into the image, or deploy with engine: container",
                )
            labels = {
                S.STACK_NAMESPACE: m.app,
                L.MANAGED: "true",
                L.APP: m.app,
                L.ENVIRONMENT: m.environment.name,
                L.ROLE: ROLE_FILES,
            }
            with self.wrapped(f"creating {fm.label}"):
                create = self.api.create_secret if secret else self.api.create_config
                created = create(name, data, labels=labels)
            refs[name] = created["ID"] if isinstance(created, dict) else str(created)
            log.line(
                f"{service.name}: {fm.label} stored as {'secret' if secret else 'config'} {name}"
            )
        return refs

    def prune_files(self) -> None:
        """Remove this app's secrets and configs no service spec (current or previous) uses."""
        from deployer.docker.files import ROLE_FILES

        m = self.manifest
        used: set[str] = set()
        for svc in self.app_services():
            for spec in (svc.get("Spec") or {}, svc.get("PreviousSpec") or {}):
                c = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
                used.update(x.get("SecretID", "") for x in c.get("Secrets") or [])
                used.update(x.get("ConfigID", "") for x in c.get("Configs") or [])
        flt = {
            "label": [
                f"{L.APP}={m.app}",
                f"{L.ENVIRONMENT}={m.environment.name}",
                f"{L.ROLE}={ROLE_FILES}",
            ]
        }
        with self.wrapped("listing secrets and configs"):
            objs: list[tuple[dict[str, Any], Callable[[str], None]]] = [
                (o, self.api.remove_secret) for o in self.api.secrets(filters=flt)
            ]
            objs += [(o, self.api.remove_config) for o in self.api.configs(filters=flt)]
        for obj, remove in objs:
            if obj["ID"] in used:
                continue
            with contextlib.suppress(docker.errors.APIError):
                remove(obj["ID"])

    # -- output and teardown --------------------------------------------------------------

    def job_output(self, service_id: str) -> str:
        with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
            chunks = self.api.service_logs(
                service_id, stdout=True, stderr=True, follow=False, timestamps=False
            )
            return b"".join(chunks).decode(errors="replace")
        return ""

    def service_logs(self, service_id: str, tail: int = 20) -> str:
        with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
            chunks = self.api.service_logs(
                service_id, stdout=True, stderr=True, follow=False, tail=tail
            )
            return b"".join(chunks).decode(errors="replace")[-4000:]
        return ""

    def remove_app(self) -> None:
        """Remove every service, job and network of the app (tests and teardown)."""
        for svc in self.app_services():
            self.remove_service(svc["ID"])
        with self.wrapped("listing networks"):
            nets = self.api.networks(filters={"label": f"{S.STACK_NAMESPACE}={self.manifest.app}"})
        for net in nets:
            with self.wrapped("removing network"), contextlib.suppress(docker.errors.NotFound):
                self.api.remove_network(net["Id"])
