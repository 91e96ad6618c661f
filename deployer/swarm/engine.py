"""The raw Swarm calls the deployer makes, as a protocol: the real engine or a fake.

``SwarmTarget`` (the orchestration: plan, lock, rollout, undo, releases) talks to a Swarm
manager only through ``SwarmEngine``. ``DockerSwarmEngine`` is the real one, over the
docker SDK's low-level client (any transport: unix, tcp+TLS, ssh); tests/fakeswarm.py is
a recording in-memory one, so Swarm's rollout, failure and rollback are unit-tested as
container mode is with tests/fakehost.py. Errors are the SDK's (``docker.errors``), also
from the fake: the orchestration translates them once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol


class SwarmEngine(Protocol):
    """What the orchestration asks of a Swarm manager. Dicts are the Engine API's JSON."""

    # -- the node -----------------------------------------------------------------------
    def info(self) -> dict[str, Any]: ...
    def nodes(self) -> list[dict[str, Any]]: ...

    # -- services and tasks -------------------------------------------------------------
    def services(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]: ...
    def inspect_service(self, service: str) -> dict[str, Any]: ...
    def create_service(
        self, spec: Mapping[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]: ...
    def update_service(
        self, service: str, version: int, spec: Mapping[str, Any], headers: Mapping[str, str]
    ) -> None: ...
    def remove_service(self, service: str) -> None: ...
    def tasks(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]: ...
    def inspect_task(self, task: str) -> dict[str, Any]: ...
    def service_logs(self, service: str, **kwargs: Any) -> Iterable[bytes]: ...

    # -- containers of this node (finished jobs, task health) ---------------------------
    def containers(
        self, all: bool = False, filters: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]: ...
    def inspect_container(self, container: str) -> dict[str, Any]: ...
    def remove_container(self, container: str, force: bool = False) -> None: ...

    # -- configs (the lock, release records) --------------------------------------------
    def create_config(
        self, name: str, data: bytes, labels: Mapping[str, str] | None = None
    ) -> dict[str, Any]: ...
    def configs(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]: ...
    def inspect_config(self, config: str) -> dict[str, Any]: ...
    def update_config(self, config: str, version: int, spec: Mapping[str, Any]) -> None: ...
    def remove_config(self, config: str) -> None: ...

    # -- secrets (compose secrets of the app's services) ----------------------------------
    def create_secret(
        self, name: str, data: bytes, labels: Mapping[str, str] | None = None
    ) -> dict[str, Any]: ...
    def secrets(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]: ...
    def remove_secret(self, secret: str) -> None: ...

    # -- networks -----------------------------------------------------------------------
    def networks(
        self, names: list[str] | None = None, filters: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]: ...
    def create_network(self, name: str, **kwargs: Any) -> dict[str, Any]: ...
    def remove_network(self, net_id: str) -> None: ...

    # -- images (digest resolution) -----------------------------------------------------
    def inspect_distribution(
        self, image: str, auth_config: Mapping[str, Any] | None = None
    ) -> dict[str, Any]: ...
    def inspect_image(self, image: str) -> dict[str, Any]: ...

    # -- volumes (the manager's own) ----------------------------------------------------
    def inspect_volume(self, name: str) -> dict[str, Any]: ...


class DockerSwarmEngine:
    """``SwarmEngine`` over the docker SDK's ``APIClient`` of a manager."""

    def __init__(self, api: Any) -> None:
        self.raw = api  # the SDK client, for what the protocol does not cover (day-2 reads)

    def info(self) -> dict[str, Any]:
        return dict(self.raw.info())

    def nodes(self) -> list[dict[str, Any]]:
        return list(self.raw.nodes())

    def services(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return list(self.raw.services(filters=dict(filters) if filters else None))

    def inspect_service(self, service: str) -> dict[str, Any]:
        return dict(self.raw.inspect_service(service))

    def _post(
        self,
        path: str,
        spec: Mapping[str, Any],
        params: Mapping[str, Any],
        headers: Mapping[str, str],
    ) -> Any:
        # The SDK's create_service/update_service rebuild the spec from keyword arguments
        # and would drop what they do not know: the deployer posts the Engine API's JSON.
        resp = self.raw._post_json(
            self.raw._url(path), data=dict(spec), params=dict(params), headers=dict(headers)
        )
        return self.raw._result(resp, json=True)

    def create_service(self, spec: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        return dict(self._post("/services/create", spec, {}, headers))

    def update_service(
        self, service: str, version: int, spec: Mapping[str, Any], headers: Mapping[str, str]
    ) -> None:
        self._post(f"/services/{service}/update", spec, {"version": version}, headers)

    def remove_service(self, service: str) -> None:
        self.raw.remove_service(service)

    def tasks(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return list(self.raw.tasks(filters=dict(filters) if filters else None))

    def inspect_task(self, task: str) -> dict[str, Any]:
        return dict(self.raw.inspect_task(task))

    def service_logs(self, service: str, **kwargs: Any) -> Iterable[bytes]:
        chunks: Iterable[bytes] = self.raw.service_logs(service, **kwargs)
        return chunks

    def containers(
        self, all: bool = False, filters: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        return list(self.raw.containers(all=all, filters=dict(filters) if filters else None))

    def inspect_container(self, container: str) -> dict[str, Any]:
        return dict(self.raw.inspect_container(container))

    def remove_container(self, container: str, force: bool = False) -> None:
        self.raw.remove_container(container, force=force)

    def create_config(
        self, name: str, data: bytes, labels: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        return dict(self.raw.create_config(name, data, labels=dict(labels) if labels else None))

    def configs(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return list(self.raw.configs(filters=dict(filters) if filters else None))

    def inspect_config(self, config: str) -> dict[str, Any]:
        return dict(self.raw.inspect_config(config))

    def update_config(self, config: str, version: int, spec: Mapping[str, Any]) -> None:
        url = self.raw._url("/configs/{0}/update", config)
        self.raw._raise_for_status(
            self.raw._post_json(url, data=dict(spec), params={"version": version})
        )

    def remove_config(self, config: str) -> None:
        self.raw.remove_config(config)

    def create_secret(
        self, name: str, data: bytes, labels: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        return dict(self.raw.create_secret(name, data, labels=dict(labels) if labels else None))

    def secrets(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return list(self.raw.secrets(filters=dict(filters) if filters else None))

    def remove_secret(self, secret: str) -> None:
        self.raw.remove_secret(secret)

    def networks(
        self, names: list[str] | None = None, filters: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        return list(self.raw.networks(names=names, filters=dict(filters) if filters else None))

    def create_network(self, name: str, **kwargs: Any) -> dict[str, Any]:
        return dict(self.raw.create_network(name, **kwargs))

    def remove_network(self, net_id: str) -> None:
        self.raw.remove_network(net_id)

    def inspect_distribution(
        self, image: str, auth_config: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        return dict(
            self.raw.inspect_distribution(
                image, auth_config=dict(auth_config) if auth_config else None
            )
        )

    def inspect_image(self, image: str) -> dict[str, Any]:
        return dict(self.raw.inspect_image(image))

    def inspect_volume(self, name: str) -> dict[str, Any]:
        return dict(self.raw.inspect_volume(name))
