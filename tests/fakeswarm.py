"""A recording, in-memory Swarm manager that satisfies ``deployer.swarm.engine.SwarmEngine``.

It answers with the Engine API's JSON shapes (services with Spec/Version/UpdateStatus,
tasks with Slot/DesiredState/Status, configs with base64 Data) and converges at once:

- a create or update with a good image leaves every slot running the new spec, and an
  update that changes the tasks reports ``UpdateStatus.State == "completed"``;
- an update to an image in ``failing`` behaves as Swarm's ``failure_action: rollback``:
  the spec goes back to the previous one and the state is ``rollback_completed`` with
  Swarm's message naming the failed task;
- a create with a failing image leaves rejected tasks and nothing running;
- a job (``ReplicatedJob``) completes with exit 0, or fails with exit 1 when its image
  is failing;
- ``refuse`` makes a named call fail with the SDK's ``APIError`` (an engine that refuses a
  change midway).

Every call is recorded in ``calls`` as ``(method, first argument)``. Unit tests only: the
real-engine tests in tests/swarm stand behind the real ``DockerSwarmEngine``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import time
from collections.abc import Iterable, Mapping
from typing import Any

import docker.errors

_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}{next(_ids):023d}"[:25]


def _stamp() -> str:
    return f"2026-01-01T00:00:{next(_ids):06d}Z"


def _digest(image: str) -> str:
    """The digest the fake registry gives ``image``: stable, distinct per reference."""
    return "sha256:" + hashlib.sha256(image.encode()).hexdigest()


def _label_match(labels: Mapping[str, str], wanted: str | list[str]) -> bool:
    for item in [wanted] if isinstance(wanted, str) else wanted:
        key, _, value = item.partition("=")
        if key not in labels or (value and labels[key] != value):
            return False
    return True


class FakeSwarm:
    def __init__(self, *, failing: Iterable[str] = (), manager: bool = True) -> None:
        self.failing: set[str] = set(failing)  # images whose tasks fail
        self.manager = manager
        self.refuse: dict[str, str] = {}  # method -> service/config name it refuses
        self.calls: list[tuple[str, str]] = []
        self._services: dict[str, dict[str, Any]] = {}
        self._tasks: list[dict[str, Any]] = []
        self._configs: dict[str, dict[str, Any]] = {}
        self._networks: dict[str, dict[str, Any]] = {}
        self.volumes: dict[str, dict[str, Any]] = {}  # the manager's, by name (tests set them)

    # -- helpers ------------------------------------------------------------------------
    def _call(self, method: str, arg: str) -> None:
        self.calls.append((method, arg))
        if self.refuse.get(method) == arg:
            raise docker.errors.APIError(f"{method} {arg}: refused by the test")

    def _service(self, ref: str) -> dict[str, Any]:
        for s in self._services.values():
            if ref in (s["ID"], s["Spec"]["Name"]):
                return s
        raise docker.errors.NotFound(f"service {ref} not found")

    @staticmethod
    def _image(spec: Mapping[str, Any]) -> str:
        return str(spec["TaskTemplate"]["ContainerSpec"]["Image"])

    def _bad(self, spec: Mapping[str, Any]) -> bool:
        """Whether the spec's image is failing: by tag, or pinned to a failing tag's digest."""
        image = self._image(spec)
        digest = image.rpartition("@")[2]
        return any(image == f or digest == _digest(f) for f in self.failing)

    def _schedule(self, svc: dict[str, Any]) -> None:
        """Converge ``svc`` at once: shut old tasks down, start (or fail) new ones."""
        spec = svc["Spec"]
        for t in self._tasks:
            if t["ServiceID"] == svc["ID"] and t["DesiredState"] == "running":
                t["DesiredState"] = "shutdown"
                t["Status"] = {**t["Status"], "State": "shutdown"}
        mode = spec.get("Mode") or {}
        if "ReplicatedJob" in mode:
            bad = self._bad(spec)
            self._tasks.append(self._task(svc, 1, "failed" if bad else "complete", 1 if bad else 0))
            return
        replicas = int((mode.get("Replicated") or {}).get("Replicas", 1))
        bad = self._bad(spec)
        for slot in range(1, replicas + 1):
            if bad:
                for _ in range(3):
                    t = self._task(svc, slot, "rejected", None)
                    t["DesiredState"] = "shutdown"
                    self._tasks.append(t)
            else:
                self._tasks.append(self._task(svc, slot, "running", None))

    def _task(
        self, svc: Mapping[str, Any], slot: int, state: str, code: int | None
    ) -> dict[str, Any]:
        status: dict[str, Any] = {"State": state, "Message": state}
        if state in ("failed", "rejected"):
            status["Err"] = "task: non-zero exit (1)" if state == "failed" else "No such image"
        if code is not None:
            status["ContainerStatus"] = {"ExitCode": code, "ContainerID": _id("c")}
        return {
            "ID": _id("t"),
            "ServiceID": svc["ID"],
            "Slot": slot,
            "DesiredState": "running",
            "Status": status,
            "Spec": copy.deepcopy(svc["Spec"]["TaskTemplate"]),
            "UpdatedAt": _stamp(),
        }

    @staticmethod
    def _same_tasks(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
        return bool(a["TaskTemplate"] == b["TaskTemplate"] and a.get("Mode") == b.get("Mode"))

    # -- the node -----------------------------------------------------------------------
    def nodes(self) -> list[dict[str, Any]]:
        """One ready manager with the engine's built-in drivers."""
        self._call("nodes", "")
        builtin = {"Log": ["json-file", "local", "syslog"], "Volume": ["local"]}
        builtin["Network"] = ["bridge", "host", "null", "overlay"]
        plugins = [{"Type": t, "Name": n} for t, names in builtin.items() for n in names]
        return [
            {
                "Status": {"State": "ready"},
                "Spec": {"Availability": "active", "Role": "manager"},
                "Description": {"Engine": {"Plugins": plugins}},
            }
        ]

    def info(self) -> dict[str, Any]:
        self._call("info", "")
        return {
            "SystemTime": _now(),
            "Swarm": {
                "LocalNodeState": "active",
                "ControlAvailable": self.manager,
            },
        }

    # -- services and tasks -------------------------------------------------------------
    def services(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        self._call("services", str(filters or ""))
        out = []
        for s in self._services.values():
            labels = s["Spec"].get("Labels") or {}
            if filters and "label" in filters and not _label_match(labels, filters["label"]):
                continue
            out.append(copy.deepcopy(s))
        return out

    def inspect_service(self, service: str) -> dict[str, Any]:
        return copy.deepcopy(self._service(service))

    def create_service(self, spec: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        self._call("create_service", str(spec["Name"]))
        if any(s["Spec"]["Name"] == spec["Name"] for s in self._services.values()):
            raise docker.errors.APIError(f"service {spec['Name']} already exists")
        svc = {
            "ID": _id("s"),
            "Version": {"Index": next(_ids)},
            "Spec": copy.deepcopy(dict(spec)),
            "CreatedAt": _stamp(),
        }
        self._services[svc["ID"]] = svc
        self._schedule(svc)
        return {"ID": svc["ID"]}

    def update_service(
        self, service: str, version: int, spec: Mapping[str, Any], headers: Mapping[str, str]
    ) -> None:
        svc = self._service(service)
        self._call("update_service", str(svc["Spec"]["Name"]))
        if version != svc["Version"]["Index"]:
            raise docker.errors.APIError(f"update out of sequence (version {version})")
        previous = svc["Spec"]
        svc["PreviousSpec"] = previous
        svc["Spec"] = copy.deepcopy(dict(spec))
        svc["Version"] = {"Index": next(_ids)}
        if self._same_tasks(previous, svc["Spec"]):
            return  # labels only: Swarm starts no rolling update
        started = _stamp()
        if self._bad(svc["Spec"]):
            failed = self._task(svc, 1, "failed", 1)
            failed["DesiredState"] = "shutdown"
            self._tasks.append(failed)
            svc["Spec"] = copy.deepcopy(previous)  # failure_action: rollback
            svc["UpdateStatus"] = {
                "State": "rollback_completed",
                "StartedAt": started,
                "Message": f"update rolled back due to failure or early termination of task "
                f"{failed['ID']}",
            }
            return
        self._schedule(svc)
        svc["UpdateStatus"] = {"State": "completed", "StartedAt": started, "Message": "done"}

    def remove_service(self, service: str) -> None:
        svc = self._service(service)
        self._call("remove_service", str(svc["Spec"]["Name"]))
        del self._services[svc["ID"]]
        self._tasks = [t for t in self._tasks if t["ServiceID"] != svc["ID"]]

    def tasks(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        filters = filters or {}
        wanted = filters.get("service")
        refs = [wanted] if isinstance(wanted, str) else list(wanted or [])
        ids = {self._service(s)["ID"] for s in refs}
        out = []
        for t in self._tasks:
            if ids and t["ServiceID"] not in ids:
                continue
            if filters.get("desired-state") and t["DesiredState"] != filters["desired-state"]:
                continue
            out.append(copy.deepcopy(t))
        return out

    def inspect_task(self, task: str) -> dict[str, Any]:
        for t in self._tasks:
            if t["ID"] == task:
                return copy.deepcopy(t)
        raise docker.errors.NotFound(f"task {task} not found")

    def service_logs(self, service: str, **kwargs: Any) -> Iterable[bytes]:
        self._service(service)
        return [b"fake output\n"]

    # -- containers of this node --------------------------------------------------------
    def containers(
        self, all: bool = False, filters: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        return []

    def inspect_container(self, container: str) -> dict[str, Any]:
        raise docker.errors.NotFound(f"container {container} is on another node")

    def remove_container(self, container: str, force: bool = False) -> None:
        raise docker.errors.NotFound(f"container {container} not found")

    # -- configs ------------------------------------------------------------------------
    def create_config(
        self, name: str, data: bytes, labels: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        self._call("create_config", name)
        if any(c["Spec"]["Name"] == name for c in self._configs.values()):
            raise docker.errors.APIError(
                f"config {name} already exists",
                response=_Response(409),  # type: ignore[arg-type]
            )
        cfg = {
            "ID": _id("g"),
            "Version": {"Index": next(_ids)},
            "CreatedAt": _now(),
            "UpdatedAt": _now(),
            "Spec": {
                "Name": name,
                "Labels": dict(labels or {}),
                "Data": base64.b64encode(data).decode(),
            },
        }
        self._configs[cfg["ID"]] = cfg
        return {"ID": cfg["ID"]}

    def configs(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        out = []
        for c in self._configs.values():
            if filters and "name" in filters and not c["Spec"]["Name"].startswith(filters["name"]):
                continue
            labels = c["Spec"].get("Labels") or {}
            if filters and "label" in filters and not _label_match(labels, filters["label"]):
                continue
            out.append(copy.deepcopy(c))
        return out

    def inspect_config(self, config: str) -> dict[str, Any]:
        if config not in self._configs:
            raise docker.errors.NotFound(f"config {config} not found")
        return copy.deepcopy(self._configs[config])

    def update_config(self, config: str, version: int, spec: Mapping[str, Any]) -> None:
        self._call("update_config", config)
        cfg = self._configs.get(config)
        if cfg is None:
            raise docker.errors.NotFound(f"config {config} not found")
        if version != cfg["Version"]["Index"]:
            raise docker.errors.APIError(f"update out of sequence (version {version})")
        cfg["Spec"] = {**cfg["Spec"], "Labels": dict(spec.get("Labels") or {})}
        cfg["Version"] = {"Index": next(_ids)}
        cfg["UpdatedAt"] = _now()

    def remove_config(self, config: str) -> None:
        self._call("remove_config", config)
        if self._configs.pop(config, None) is None:
            raise docker.errors.NotFound(f"config {config} not found")

    # -- secrets ------------------------------------------------------------------------
    def create_secret(
        self, name: str, data: bytes, labels: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        self._call("create_secret", name)
        store: dict[str, dict[str, Any]] = self.__dict__.setdefault("_secrets", {})
        sid = _id("s")
        store[sid] = {"ID": sid, "Spec": {"Name": name, "Labels": dict(labels or {})}}
        return {"ID": sid}

    def secrets(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        store: dict[str, dict[str, Any]] = self.__dict__.setdefault("_secrets", {})
        return [
            copy.deepcopy(v)
            for v in store.values()
            if not (filters and "name" in filters) or v["Spec"]["Name"].startswith(filters["name"])
        ]

    def remove_secret(self, secret: str) -> None:
        self.__dict__.setdefault("_secrets", {}).pop(secret, None)

    # -- networks -----------------------------------------------------------------------
    def networks(
        self, names: list[str] | None = None, filters: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        out = []
        for n in self._networks.values():
            if names and n["Name"] not in names:
                continue
            if filters and "label" in filters and not _label_match(n["Labels"], filters["label"]):
                continue
            out.append(copy.deepcopy(n))
        return out

    def create_network(self, name: str, **kwargs: Any) -> dict[str, Any]:
        self._call("create_network", name)
        net = {"Id": _id("n"), "Name": name, "Labels": dict(kwargs.get("labels") or {})}
        self._networks[net["Id"]] = net
        return {"Id": net["Id"]}

    def remove_network(self, net_id: str) -> None:
        self._call("remove_network", net_id)
        self._networks.pop(net_id, None)

    # -- images -------------------------------------------------------------------------
    def inspect_distribution(
        self, image: str, auth_config: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        self._call("inspect_distribution", image)
        return {"Descriptor": {"digest": _digest(image)}}

    def inspect_image(self, image: str) -> dict[str, Any]:
        return {"Id": _digest(image)}

    def inspect_volume(self, name: str) -> dict[str, Any]:
        self._call("inspect_volume", name)
        if name not in self.volumes:
            raise docker.errors.NotFound(f"volume {name} not found")
        return copy.deepcopy(self.volumes[name])

    # -- what tests look at -------------------------------------------------------------
    def running_images(self, name: str) -> list[str]:
        """The images of the running tasks of service ``name``."""
        svc = self._service(name)
        return sorted(
            t["Spec"]["ContainerSpec"]["Image"]
            for t in self._tasks
            if t["ServiceID"] == svc["ID"]
            and t["DesiredState"] == "running"
            and t["Status"]["State"] == "running"
        )

    def service_names(self) -> list[str]:
        return sorted(s["Spec"]["Name"] for s in self._services.values())


class _Response:
    """Just enough of a ``requests.Response`` for ``APIError.status_code``."""

    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.reason = "Conflict"
        self.url = "fake"

    def json(self) -> dict[str, str]:
        return {"message": "conflict"}


def _now() -> str:
    """The engine's clock, as the Docker API writes it (RFC 3339, nanoseconds)."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"
