"""``Operations`` on Swarm environments, through one manager (``SwarmTarget``).

Logs are read from the task containers on the manager's own node (the engine API of one
node reaches only its own containers); a task on another node is named, not read.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import docker
import docker.errors

from deployer import labels as L
from deployer.docker.execute import ExecIO, exec_in
from deployer.docker.networks import KeptNetwork, left_behind, remove_network
from deployer.errors import Blocked, DeployerError
from deployer.manifest.model import Manifest, Task
from deployer.ops import (
    Event,
    LockState,
    Replica,
    ReplicaLog,
    RestartApply,
    StatRow,
    engine_events,
    release_digest,
    restart_plan,
    stat_row,
)
from deployer.ops.containers import READERS, container_logs, remove_in_use
from deployer.ops.history import task_events
from deployer.ownership import Owner
from deployer.report.log import PrintLog
from deployer.requests import Request
from deployer.swarm import spec as S
from deployer.swarm.target import LOCK_EXPIRES, LOCK_HOLDER, SwarmTarget
from deployer.targets import each

TASKS_LEAVE = 30.0  # seconds the tasks of removed services have to leave their networks


class SwarmOperations:
    def __init__(self, target: SwarmTarget) -> None:
        self.unreachable: Sequence[DeployerError] = ()  # one manager: it answers, or nothing
        self.target = target
        self.swarm = target.swarm  # the raw Swarm calls
        self.manifest = target.manifest
        self.api: Any = target.swarm.api
        # The SDK client under the Swarm calls, for what they do not cover (logs, exec,
        # stats, volumes of the manager's node).
        self.raw: Any = getattr(self.api, "raw", self.api)

    @classmethod
    def open(cls, manifest: Manifest, environ: Mapping[str, str]) -> SwarmOperations:
        return cls(SwarmTarget.connect(manifest, environ))

    @property
    def where(self) -> str:
        return f"Swarm manager {self.target.name}"

    def services(self) -> Sequence[str]:
        return self.manifest.service_names

    def close(self) -> None:
        self.target.close()

    def owners(self) -> list[Owner]:
        from deployer.ownership import owner_of

        t = self.target
        return [owner_of(t.name, t.releases(), t.observe().containers)]

    # -- lock ---------------------------------------------------------------------------

    def _lock_config(self) -> dict[str, Any] | None:
        name = self.target.lock_name()
        with self.swarm.wrapped("reading the deploy lock"):
            found = self.api.configs(filters={"name": name})
        return next((c for c in found if c["Spec"]["Name"] == name), None)

    def lock_states(self) -> Sequence[LockState]:
        cfg = self._lock_config()
        if cfg is None:
            return []
        labels = cfg["Spec"].get("Labels") or {}
        since = 0.0
        with contextlib.suppress(ValueError, TypeError):
            since = _parse_time(str(cfg.get("CreatedAt") or ""))
        return [
            LockState(
                self.where,
                labels.get(LOCK_HOLDER) or base64.b64decode(cfg["Spec"].get("Data", "")).decode(),
                since,
                float(labels.get(LOCK_EXPIRES) or 0),
                (cfg["ID"],),
            )
        ]

    def break_lock(self, states: Sequence[LockState]) -> list[str]:
        removed = []
        for state in states:
            for config_id in state.ids:
                with (
                    self.swarm.wrapped("removing the deploy lock"),
                    contextlib.suppress(docker.errors.NotFound),
                ):
                    self.api.remove_config(config_id)
            removed.append(f"{self.where}: deploy lock {self.target.lock_name()}")
        return removed

    # -- down ---------------------------------------------------------------------------

    def _env_services(self) -> list[dict[str, Any]]:
        env = self.manifest.environment.name
        return [
            s
            for s in self.swarm.app_services()
            if ((s.get("Spec") or {}).get("Labels") or {}).get(L.ENVIRONMENT, env) == env
        ]

    def down(
        self, *, holder: str, ttl: float, volumes: bool, say: Callable[[str], None]
    ) -> list[str]:
        t = self.target
        m = self.manifest
        removed: list[str] = []
        kept: list[KeptNetwork] = []

        def gone(what: str) -> None:
            removed.append(f"{self.where}: {what}")
            say(f"{self.where}: removed {what}")

        lease = t.acquire_lock(holder, ttl, 0.0)
        try:
            for svc in self._env_services():
                t.swarm.remove_service(svc["ID"])
                gone(f"service {svc['Spec']['Name']}")
            kept = self._down_networks(gone)
            with t.swarm.wrapped("listing releases"):
                configs = self.api.configs(
                    filters={"label": [f"{L.ROLE}={L.ROLE_RELEASE}", f"{L.APP}={m.app}"]}
                )
            for cfg in configs:
                labels = cfg["Spec"].get("Labels") or {}
                if labels.get(L.ENVIRONMENT) != m.environment.name:
                    continue
                with (
                    t.swarm.wrapped("removing a release"),
                    contextlib.suppress(docker.errors.NotFound),
                ):
                    self.api.remove_config(cfg["ID"])
                    gone(f"release {labels.get(L.RELEASE, cfg['Spec']['Name'])}")
            if any(s.files for s in m.services):  # no service uses them any more
                with contextlib.suppress(DeployerError):
                    t.swarm.prune_files()
                    gone("the secrets and configs of the app's files")
            with t.swarm.wrapped("listing volumes"):
                vols = (
                    self.raw.volumes(filters={"label": f"{S.STACK_NAMESPACE}={m.app}"}).get(
                        "Volumes"
                    )
                    or []
                )
            if volumes:
                for vol in vols:
                    with t.swarm.wrapped(f"removing volume {vol['Name']}"):
                        if remove_in_use(self.raw.remove_volume, vol["Name"]):
                            gone(f"volume {vol['Name']}")
            elif vols:
                say(
                    f"{self.where}: kept volume(s) {', '.join(v['Name'] for v in vols)} "
                    "(remove with --volumes)"
                )
        finally:
            with contextlib.suppress(Blocked):
                t.release_lock(lease)
        if kept:
            raise left_behind(f"{m.app}/{m.environment.name}", removed, kept)
        return removed

    def _down_networks(self, gone: Callable[[str], None]) -> list[KeptNetwork]:
        """Remove the app's networks; those the engine keeps (after the wait for the
        tasks of the removed services to leave, as they stop) are returned, named."""
        t = self.target
        stack = f"{S.STACK_NAMESPACE}={self.manifest.app}"
        kept: list[KeptNetwork] = []
        with t.swarm.wrapped("listing networks"):
            nets = self.api.networks(filters={"label": stack})
        for net in nets:
            # Its tasks leave it as they stop (their grace period): waited for. Nothing
            # of the app's is disconnected; another container on it is named (exit 6).
            with t.swarm.wrapped(f"removing network {net['Name']}"):
                done = remove_network(
                    self.raw,
                    self.where,
                    net,
                    lambda _: False,
                    lambda _: None,
                    settle=TASKS_LEAVE,
                    leaving=lambda labels: (
                        labels.get(S.STACK_NAMESPACE) == self.manifest.app
                        and L.SWARM_TASK_ID in labels
                    ),
                )
            if isinstance(done, KeptNetwork):
                if not done.users:  # nothing on it here: the tasks of other nodes
                    done = dataclasses.replace(
                        done,
                        reason="the engine still refuses to remove it (tasks on other nodes "
                        "may not have stopped yet)",
                        commands=(
                            f"docker network inspect -v {done.network}",
                            f"docker network rm {done.network}",
                        ),
                    )
                kept.append(done)
            elif done:
                gone(f"network {net['Name']}")
        # The manager frees a removed network a moment later (seconds under load):
        # wait until it is gone, removing again what is still there (bounded).
        give_up = time.monotonic() + 60
        while time.monotonic() < give_up:
            with t.swarm.wrapped("listing networks"):
                left = self.api.networks(filters={"label": stack})
            left = [n for n in left if n["Name"] not in {k.network for k in kept}]
            if not left:
                break
            for net in left:
                with contextlib.suppress(docker.errors.APIError):
                    self.api.remove_network(net["Id"])
            time.sleep(0.5)
        return kept

    # -- logs ---------------------------------------------------------------------------

    def replicas(self, services: Sequence[str] = ()) -> list[Replica]:
        """The running tasks of ``services``; a task on another node is refused (the
        manager's engine API reaches only its own node's containers)."""
        t = self.target
        with t.swarm.wrapped("reading the manager's node"):
            node = (self.api.info().get("Swarm") or {}).get("NodeID", "")
        svcs = {
            s["ID"]: (s["Spec"].get("Labels") or {}).get(L.SERVICE, "")
            for s in self._env_services()
        }
        out = []
        for task in t.swarm.tasks_of(list(svcs)):
            service = svcs.get(task.get("ServiceID", ""), "")
            if services and service not in services:
                continue
            status = task.get("Status") or {}
            cid = (status.get("ContainerStatus") or {}).get("ContainerID")
            if not cid or status.get("State") != "running":
                continue
            if task.get("NodeID") != node:
                raise Blocked(
                    f"{service}.{task.get('Slot', 0)} runs on another node of the swarm; "
                    f"{self.where} reaches only its own node's containers",
                    hint="run it on a manager of that node, or with `docker service logs`",
                )
            out.append(Replica(t.name, service, int(task.get("Slot") or 0), cid))
        return sorted(out, key=lambda r: (r.service, r.replica))

    def exec(self, replica: Replica, command: Sequence[str], io: ExecIO) -> int:
        return exec_in(self.raw, self.target.name, replica.container_id, command, io)

    def stats(self) -> list[StatRow]:
        rows = []
        for r in self.replicas():
            with self.swarm.wrapped(f"reading the stats of {r.service}.{r.replica}"):
                try:
                    sample = self.raw.stats(r.container_id, stream=False)
                    info = self.api.inspect_container(r.container_id)
                except docker.errors.NotFound:
                    continue
            rows.append(stat_row(r, sample, info))
        return rows

    def restart(
        self,
        services: Sequence[str],
        *,
        hard: bool,
        context: Any,
        log: Any,
        request: Request,
        apply: RestartApply,
    ) -> int:
        """A forced update of each service (new tasks, the same spec) through the
        deploy's Swarm rollout: Swarm's update order and rollback; no release recorded."""
        from deployer.commands.finish import report
        from deployer.plan import Action, make_plan
        from deployer.swarm.target import raise_for_outcome

        t = self.target
        t.swarm.context = context
        digests = {s: release_digest(t.releases(), s, self.where) for s in services}
        plan = make_plan(self.manifest, [t.observe()], digests, list(services))
        plan = restart_plan(
            plan,
            services,
            self.manifest.path,
            lambda _hp, step: dataclasses.replace(
                step, action=Action.REPLACE, reasons=("restart",)
            ),
        )
        log.line(f"restarting {', '.join(services)} on {self.where}, by {context.holder}")
        result = t.apply(plan, log, run_tasks=False, record=False)
        report(result, context, self.manifest, t.environ, request, log)
        raise_for_outcome(result)
        log.line("restarted; no release recorded")
        return 0

    def events(self, since: float, until: float) -> list[Event]:
        """The manager node's events of the app's task containers, and the history of
        the app's tasks the manager keeps (every node's, however long ago)."""
        filters = {
            "type": "container",
            "label": [f"{S.STACK_NAMESPACE}={self.manifest.app}"],
        }
        with self.swarm.wrapped("reading the engine's events"):
            found = engine_events(
                self.raw,
                self.target.name,
                filters,
                since,
                until,
                "com.docker.swarm.service.name",
                "com.docker.swarm.task.name",
            )
        lo, hi = since * 1e9, until * 1e9
        prefix = f"{self.manifest.app}_"
        names = {str(s["ID"]): str(s["Spec"]["Name"]) for s in self.swarm.app_services()}
        history = [
            e
            for t in self.swarm.tasks_of(list(names), running=False)
            for e in task_events(t, _service(names, t, prefix), self.target.name)
            if lo <= e.time_ns <= hi
        ]
        engine = [_task_event(e, self.manifest.app) for e in found]
        return sorted([*engine, *history], key=lambda e: e.time_ns)

    def run(self, task: Task, say: Callable[[str], None]) -> int:
        digest = release_digest(self.target.releases(), task.service, self.where)
        say(f"{self.where}: running {task.name} from {digest}")
        step = self.target.run_task(task, digest, PrintLog(say), {L.ROLE: L.ROLE_TASK})
        if step.status.value == "ok":
            return 0
        found = re.search(r"exit (\d+)", step.detail or "")
        say(f"{task.name}: {step.detail}")
        return int(found.group(1)) if found else 1

    def logs(
        self,
        services: Sequence[str],
        *,
        since: float | None,
        until: float | None,
        tail: int | None,
    ) -> list[ReplicaLog]:
        def read(r: Replica) -> ReplicaLog:
            with self.swarm.wrapped("reading logs"):
                return container_logs(
                    self.raw,
                    self.target.name,
                    r.container_id,
                    r.service,
                    r.replica,
                    since=since,
                    until=until,
                    tail=tail,
                )

        return each(read, self.replicas(services), limit=READERS)


def _service(names: dict[str, str], task: dict[str, Any], prefix: str) -> str:
    """The app's name of the service a task belongs to (``<app>_api``: ``api``)."""
    return names.get(str(task.get("ServiceID")), "?").removeprefix(prefix)


def _task_event(event: Event, app: str) -> Event:
    """The service and replica of a task container as the app names them: the Swarm
    service ``<app>_api`` and task ``<app>_api.2.<task id>`` are ``api`` and ``2``."""
    service = event.service.removeprefix(f"{app}_")
    slot = event.replica.removeprefix(f"{event.service}.").split(".", 1)[0]
    return dataclasses.replace(event, service=service, replica=slot)


def _parse_time(raw: str) -> float:
    from deployer.ops import parse_stamped

    ns, _, _ = parse_stamped(raw + " ")
    return ns / 1e9
