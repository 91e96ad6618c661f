"""A Swarm environment (``engine: swarm``): observe, resolve, apply a plan, status.

The environment's first host (or ``DOCKER_HOST``) is a Swarm manager. Each service of the
manifest becomes the Swarm service ``<app>_<service>``, its image pinned to the digest
resolved for this deploy, updated with Swarm's own rolling update (``update_config``
from the manifest, ``failure_action: rollback``). The deployer then waits, with a
deadline, until Swarm reports the update ``completed``; ``rollback_completed``,
``rollback_paused`` and ``paused`` are failures. When one service fails, every service
this run already changed is put back to its previous spec (created ones are removed),
so the app never ends split between releases.

``tasks:`` run as Swarm jobs (mode ``replicated-job``, one completion) on the app's
network, their output copied to the job log. A Swarm config object named
``<app>_<environment>_deploy-lock`` is the deploy lock: creating it is atomic across
the swarm. CI secrets are passed as environment variables, as in container mode;
Swarm secrets are not used.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import docker
import docker.auth
import docker.errors
import requests.exceptions

from deployer import labels as L
from deployer.context import Context
from deployer.docker import registry
from deployer.engine import Release, keep_renewing
from deployer.errors import (
    Blocked,
    DeployerError,
    DeployFailed,
    InvalidInput,
    RollbackFailed,
    Unreachable,
)
from deployer.manifest.model import Manifest, RegistryAuth, Service, Task, host_form
from deployer.plan import Action, Observed, Plan, Step, make_plan
from deployer.releases import new_release_id
from deployer.report.log import Log
from deployer.result import DeployResult, Outcome, StepRecord, StepStatus
from deployer.swarm import observe as obs
from deployer.swarm import spec as S
from deployer.swarm.engine import DockerSwarmEngine, SwarmEngine

POLL = 0.5
# A rolling update starts within milliseconds of the spec change; when none started after
# this long, the change did not touch the tasks (labels only) and tasks are checked instead.
NO_UPDATE_GRACE = 3.0
_TASK_ID = re.compile(r"\btask ([a-z0-9]{25})\b")
REJECTED_LIMIT = 3  # tasks of the current spec rejected this often: give up early
LOCK_SUFFIX = "deploy-lock"
LOCK_HOLDER = L.PREFIX + "lock-holder"
LOCK_EXPIRES = L.PREFIX + "lock-expires-at"


@dataclass(frozen=True)
class Verdict:
    ok: bool
    state: str  # Swarm's UpdateStatus.State, "converged", or "timeout"
    detail: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class SwarmLease:
    name: str
    config_id: str
    holder: str
    expires_at: float


@dataclass
class _Undo:
    service: str
    service_id: str
    previous: dict[str, Any] | None  # the spec before this run; None: this run created it


def _why(e: BaseException) -> str:
    if isinstance(e, docker.errors.APIError):
        return str(e.explanation or e).splitlines()[0][:300]
    return (str(e) or e.__class__.__name__).splitlines()[0][:300]


class SwarmTarget:
    """One Swarm (through one manager) for one app and environment."""

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
        self._on_close = on_close
        self._sleep = sleep
        self._clock = clock

    # -- connection ---------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        manifest: Manifest,
        environ: Mapping[str, str] | None = None,
        *,
        context: Context | None = None,
    ) -> SwarmTarget:
        """Connect to the environment's Swarm manager: the first of its hosts (else
        DOCKER_HOST) that answers and is a manager; the others are fallbacks."""
        from deployer.docker import connect as C

        environ = os.environ if environ is None else environ
        problems: list[DeployerError] = []
        for url in C.host_urls(manifest.environment.hosts, environ):
            try:
                conn = C.connect(
                    url, environ, allow_insecure_tcp=manifest.environment.allow_insecure_tcp
                )
            except Unreachable as e:
                problems.append(e)
                continue
            target = cls(
                manifest,
                DockerSwarmEngine(conn.client.api),
                conn.name,
                context=context,
                environ=environ,
                on_close=conn.close,
            )
            try:
                target.check_manager()
            except DeployerError as e:
                target.close()
                problems.append(e)
                continue
            except BaseException:
                target.close()
                raise
            return target
        if len(problems) == 1:
            raise problems[0]
        first = problems[0]
        also = "\n".join(f"  also: {p.message}" for p in problems[1:])
        raise type(first)(f"{first.message}\n{also}", hint=first.hint) from first

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def __enter__(self) -> SwarmTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _wrapped(self, what: str) -> Iterator[None]:
        try:
            yield
        except DeployerError:
            raise
        except docker.errors.APIError as e:
            raise Unreachable(
                f"Swarm manager {self.name}: {what}: the engine refused: {_why(e)}",
                hint="check the engine's log on the manager",
            ) from e
        except (requests.exceptions.RequestException, OSError) as e:
            raise Unreachable(
                f"Swarm manager {self.name}: {what}: {_why(e)}",
                hint="check that the manager is up and reachable",
            ) from e
        except docker.errors.DockerException as e:
            raise Unreachable(f"Swarm manager {self.name}: {what}: {_why(e)}") from e

    def _record(self, kind: str, name: str, service: str, **fields: Any) -> StepRecord:
        """A step of this run on the manager, started now."""
        return StepRecord(
            host=self.name, name=name, kind=kind, service=service, started_at=time.time(), **fields
        )

    def check_manager(self) -> None:
        with self._wrapped("reading swarm state"):
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

    def _services(self) -> list[dict[str, Any]]:
        with self._wrapped("listing services"):
            found: list[dict[str, Any]] = self.api.services(
                filters={"label": f"{S.STACK_NAMESPACE}={self.manifest.app}"}
            )
        return found

    def _tasks(self, service_ids: Sequence[str], *, running: bool = True) -> list[dict[str, Any]]:
        if not service_ids:
            return []
        filters: dict[str, Any] = {"service": list(service_ids)}
        if running:
            filters["desired-state"] = "running"
        with self._wrapped("listing tasks"):
            found: list[dict[str, Any]] = self.api.tasks(filters=filters)
        return found

    def _inspect(self, service_id: str) -> dict[str, Any]:
        with self._wrapped(f"inspecting service {service_id}"):
            found: dict[str, Any] = self.api.inspect_service(service_id)
        return found

    def observe(self) -> Observed:
        services = self._services()
        tasks = self._tasks([s["ID"] for s in services])
        m = self.manifest
        return obs.observed(self.name, m.app, m.environment.name, services, tasks)

    def status(self) -> list[obs.ServiceStatus]:
        services = self._services()
        return obs.status_rows(
            self.manifest.app, services, self._tasks([s["ID"] for s in services])
        )

    def render_status(self) -> str:
        m = self.manifest
        return obs.render_status(self.name, m.app, m.environment.name, self.status())

    # -- digests ------------------------------------------------------------------------

    def auth_for(self, image: str) -> RegistryAuth | None:
        """Credentials for the image's registry (manifest, DOCKER_AUTH_CONFIG, CI_*)."""
        return registry.auth_for(image, self.manifest.registries, self.environ)

    def resolve_image(self, service: Service) -> str:
        """The image of ``service`` as ``repo@sha256:...`` (never a tag: Swarm must not
        resolve tags itself, FACTS 14); its local ID for ``pull_policy: never``."""
        if "@sha256:" in service.image:
            return S.pinned(service.image)
        auth = None if service.pull_policy == "never" else self.auth_for(service.image)
        return registry.resolve(
            self.api, self.name, service.image, auth, pull_policy=service.pull_policy
        )

    def resolve(self, only: Sequence[str] | None = None) -> dict[str, str]:
        return {
            s.name: self.resolve_image(s)
            for s in self.manifest.services
            if only is None or s.name in only
        }

    def plan(self, only: Sequence[str] | None = None) -> Plan:
        for service in self.manifest.services:
            S.check_supported(self.manifest, service)  # refuse before anything changes
        return make_plan(self.manifest, [self.observe()], self.resolve(only), only)

    # -- lock ---------------------------------------------------------------------------

    def lock_name(self) -> str:
        return f"{self.manifest.app}_{host_form(self.manifest.environment.name)}_{LOCK_SUFFIX}"

    def acquire_lock(self, holder: str, ttl: float, wait: float = 0.0) -> SwarmLease:
        """Take the app's deploy lock on the swarm, waiting up to ``wait`` seconds."""
        name = self.lock_name()
        give_up = time.monotonic() + wait
        while True:
            expires = time.time() + ttl
            labels = {
                L.MANAGED: "true",
                L.ROLE: L.ROLE_LOCK,
                L.APP: self.manifest.app,
                L.ENVIRONMENT: self.manifest.environment.name,
                LOCK_HOLDER: holder,
                LOCK_EXPIRES: f"{expires:.0f}",
            }
            try:
                created = self.api.create_config(name, holder.encode(), labels=labels)
                return SwarmLease(name, created["ID"], holder, expires)
            except docker.errors.APIError as e:
                if e.status_code != 409:
                    with self._wrapped("taking the deploy lock"):
                        raise
            with self._wrapped("reading the deploy lock"):
                found = self.api.configs(filters={"name": name})
            current = next((c for c in found if c["Spec"]["Name"] == name), None)
            if current is None:
                continue  # released meanwhile
            cur_labels = current["Spec"].get("Labels") or {}
            their_expiry = float(cur_labels.get(LOCK_EXPIRES, "0") or 0)
            if their_expiry < time.time():
                with (
                    self._wrapped("removing an expired deploy lock"),
                    contextlib.suppress(docker.errors.NotFound),
                ):
                    self.api.remove_config(current["ID"])
                continue
            if time.monotonic() >= give_up:
                until = time.strftime("%H:%M:%S UTC", time.gmtime(their_expiry))
                raise Blocked(
                    f"another deploy of {self.manifest.app}/{self.manifest.environment.name} "
                    f"holds the Swarm lock on {self.name}: "
                    f"{cur_labels.get(LOCK_HOLDER, 'unknown')}",
                    hint=f"wait for it (--wait-lock 10m); if it died, the lock expires at {until}",
                )
            self._sleep(min(2.0, max(0.1, give_up - time.monotonic())))

    def renew_lock(self, lease: SwarmLease, ttl: float) -> SwarmLease:
        """Push the lease's expiry to ``ttl`` seconds from now: a Swarm config's labels are
        the one thing an update may change (at its version, so no write is lost)."""
        expires = time.time() + ttl
        with self._wrapped("renewing the deploy lock"):
            try:
                info = self.api.inspect_config(lease.config_id)
            except docker.errors.NotFound:
                info = None
            if info is not None:
                spec = dict(info["Spec"])
                spec["Labels"] = {**(spec.get("Labels") or {}), LOCK_EXPIRES: f"{expires:.0f}"}
                self.api.update_config(lease.config_id, info["Version"]["Index"], spec)
        if info is None:
            raise Blocked(
                f"the Swarm lock {lease.name} on {self.name} expired and was taken away",
                hint="raise rollout.lock_ttl above the longest a deploy may take",
            )
        return SwarmLease(lease.name, lease.config_id, lease.holder, expires)

    def release_lock(self, lease: SwarmLease) -> None:
        with (
            self._wrapped("releasing the deploy lock"),
            contextlib.suppress(docker.errors.NotFound),
        ):
            self.api.remove_config(lease.config_id)

    # -- writing ------------------------------------------------------------------------

    def _auth_header(self, image: str) -> dict[str, str]:
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
        headers = self._auth_header(spec["TaskTemplate"]["ContainerSpec"]["Image"])
        with self._wrapped(f"creating service {spec['Name']}"):
            created = self.api.create_service(spec, headers)
        return str(created["ID"])

    def update_service(self, service_id: str, spec: Mapping[str, Any]) -> None:
        headers = self._auth_header(spec["TaskTemplate"]["ContainerSpec"]["Image"])
        with self._wrapped(f"updating service {spec['Name']}"):
            version = self.api.inspect_service(service_id)["Version"]["Index"]
            self.api.update_service(service_id, version, spec, headers)

    def remove_service(self, service_id: str, deadline: float = 30.0) -> None:
        with (
            self._wrapped(f"removing service {service_id}"),
            contextlib.suppress(docker.errors.NotFound),
        ):
            self.api.remove_service(service_id)
        # Its task containers stop asynchronously; wait (bounded) so its networks can go.
        # Swarm leaves the exited containers of finished job tasks behind: remove those.
        label = f"com.docker.swarm.service.id={service_id}"
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            with self._wrapped("listing the service's containers"):
                left = self.api.containers(all=True, filters={"label": label})
            if all(c.get("State") in ("exited", "dead", "created") for c in left):
                for c in left:
                    with (
                        self._wrapped("removing a finished task's container"),
                        contextlib.suppress(docker.errors.NotFound),
                    ):
                        self.api.remove_container(c["Id"], force=True)
                return
            self._sleep(POLL)

    def ensure_networks(self, log: Log) -> None:
        m = self.manifest
        for name, external in S.app_networks(m):
            with self._wrapped(f"looking up network {name}"):
                found = [n for n in self.api.networks(names=[name]) if n["Name"] == name]
            if found:
                continue
            if external:
                raise InvalidInput(
                    f"{m.path}: networks.{name}: external network {name} does not exist on "
                    f"the swarm of {self.name}",
                    hint=f"create it (docker network create -d overlay --attachable {name})",
                )
            top = next((n for n in m.networks if S.network_name(m, n.name) == name), None)
            with self._wrapped(f"creating network {name}"):
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
            with self._wrapped(f"looking up {fm.label}"):
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
            with self._wrapped(f"creating {fm.label}"):
                create = self.api.create_secret if secret else self.api.create_config
                created = create(name, data, labels=labels)
            refs[name] = created["ID"] if isinstance(created, dict) else str(created)
            log.line(
                f"{service.name}: {fm.label} stored as {'secret' if secret else 'config'} {name}"
            )
        return refs

    def _prune_files(self) -> None:
        """Remove this app's secrets and configs no service spec (current or previous) uses."""
        from deployer.docker.files import ROLE_FILES

        m = self.manifest
        used: set[str] = set()
        for svc in self._services():
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
        with self._wrapped("listing secrets and configs"):
            objs: list[tuple[dict[str, Any], Callable[[str], None]]] = [
                (o, self.api.remove_secret) for o in self.api.secrets(filters=flt)
            ]
            objs += [(o, self.api.remove_config) for o in self.api.configs(filters=flt)]
        for obj, remove in objs:
            if obj["ID"] in used:
                continue
            with contextlib.suppress(docker.errors.APIError):
                remove(obj["ID"])

    # -- convergence --------------------------------------------------------------------

    def wait_converged(
        self, service_id: str, *, rolling: bool, since: str | None, deadline: float
    ) -> Verdict:
        """Poll until Swarm finished with the service: an update's final state, or every
        replica running the current spec. Never longer than ``deadline`` seconds."""
        start = self._clock()
        seen: list[str] = []  # Swarm's update messages, in order (the failure's reason)
        while True:
            elapsed = self._clock() - start
            svc = self._inspect(service_id)
            us = svc.get("UpdateStatus") or {}
            new_update = bool(us) and us.get("StartedAt") != since
            state = str(us.get("State", "")) if new_update else ""
            message = str(us.get("Message", "")) if new_update else ""
            if message and message not in seen:
                seen.append(message)
            if state in obs.FAILED_UPDATE_STATES:
                return Verdict(False, state, self._why_failed(svc, seen), elapsed)
            tasks = self._tasks([service_id])
            running = len(obs.running_slots(svc, tasks))
            converged = running >= obs.replicas_of(svc)
            if converged and (
                state == "completed"
                or (not new_update and (not rolling or elapsed >= NO_UPDATE_GRACE))
            ):
                return Verdict(True, state or "converged", "", elapsed)
            if not rolling and not new_update and not converged:
                # A create or scale has no update to fail: tasks Swarm keeps rejecting
                # (an image it cannot pull, a mount it cannot make) will not get better.
                history = self._tasks([service_id], running=False)
                rejected = [
                    t
                    for t in history
                    if t.get("Status", {}).get("State") == "rejected" and obs.is_current(t, svc)
                ]
                if len(rejected) >= REJECTED_LIMIT:
                    return Verdict(False, "rejected", self._why_failed(svc, seen), elapsed)
            if elapsed >= deadline:
                why = self._why_failed(svc, seen)
                return Verdict(
                    False,
                    "timeout",
                    f"not converged after {deadline:.0f} s (update state {state or 'none'}, "
                    f"{running}/{obs.replicas_of(svc)} running)" + (f": {why}" if why else ""),
                    elapsed,
                )
            self._sleep(POLL)

    def _why_failed(self, svc: Mapping[str, Any], messages: Sequence[str]) -> str:
        """Swarm's update messages and the errors of the tasks they name (or of the
        service's latest failed tasks)."""
        parts = list(messages)
        named = {m.group(1) for msg in messages for m in _TASK_ID.finditer(msg)}
        tasks: list[dict[str, Any]] = []
        for task_id in sorted(named):
            with contextlib.suppress(docker.errors.APIError):
                tasks.append(self.api.inspect_task(task_id))
        if not tasks:
            tasks = [
                t
                for t in self._tasks([svc["ID"]], running=False)
                if t.get("Status", {}).get("State") in ("failed", "rejected")
            ]
            tasks.sort(key=lambda t: str(t.get("UpdatedAt", "")), reverse=True)
        for t in tasks[:3]:
            st = t.get("Status", {})
            code = (st.get("ContainerStatus") or {}).get("ExitCode")
            err = st.get("Err") or st.get("Message") or st.get("State")
            health = self._container_health((st.get("ContainerStatus") or {}).get("ContainerID"))
            parts.append(
                f"task {svc['Spec']['Name']}.{t.get('Slot', '?')} ({str(t['ID'])[:12]}): "
                f"{st.get('State')}: {err}"
                + (f" (exit {code})" if code else "")
                + (f"; {health}" if health else "")
            )
        return "; ".join(parts)

    def _container_health(self, container_id: str | None) -> str:
        """The health of a task's container when it is on this node: why Swarm killed it."""
        if not container_id:
            return ""
        try:
            state = self.api.inspect_container(container_id).get("State") or {}
        except (docker.errors.APIError, requests.exceptions.RequestException):
            return ""
        health = state.get("Health") or {}
        if not health:
            return ""
        log = health.get("Log") or []
        last = str(log[-1].get("Output", "")).strip()[:200] if log else ""
        out = f"container health: {health.get('Status')}"
        if log:
            out += f" (last check exit {log[-1].get('ExitCode')}" + (f": {last})" if last else ")")
        return out

    # -- tasks --------------------------------------------------------------------------

    def run_task(self, task: Task, digest: str, log: Log, extra: Mapping[str, str]) -> StepRecord:
        m = self.manifest
        service = m.service(task.service)
        name = f"{m.app}_task-{task.name}-{secrets.token_hex(3)}"[:63]
        spec = S.job_spec(m, service, digest, name, task.command, extra)
        step = self._record("task", f"task {task.name}", task.service)
        start = self._clock()
        sid = self.create_service(spec)
        try:
            state, code, err = "", None, ""
            while True:
                tasks = self._tasks([sid], running=False)
                done = [
                    t
                    for t in tasks
                    if t.get("Status", {}).get("State")
                    in ("complete", "failed", "rejected", "shutdown", "orphaned")
                ]
                if done:
                    st = done[0]["Status"]
                    state = st["State"]
                    code = (st.get("ContainerStatus") or {}).get("ExitCode")
                    err = st.get("Err", "")
                    break
                if self._clock() - start > task.timeout:
                    state = "timeout"
                    break
                self._sleep(POLL)
            output = self._job_output(sid)
        finally:
            self.remove_service(sid)
        step.seconds = self._clock() - start
        for line in output.splitlines():
            log.line(f"  {task.name} | {line}")
        step.log_excerpt = "\n".join(output.splitlines()[-20:])
        if state == "complete":
            step.detail = f"exit 0 in {step.seconds:.1f} s"
            return step
        step.status = StepStatus.FAILED
        if state == "timeout":
            step.detail = f"did not finish within {task.timeout:.0f} s"
        else:
            step.detail = (
                f"{state}"
                + (f", exit {code}" if code is not None else "")
                + (f": {err}" if err else "")
            )
        return step

    def _job_output(self, service_id: str) -> str:
        with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
            chunks = self.api.service_logs(
                service_id, stdout=True, stderr=True, follow=False, timestamps=False
            )
            return b"".join(chunks).decode(errors="replace")
        return ""

    # -- apply --------------------------------------------------------------------------

    def release_labels(self, release: str) -> dict[str, str]:
        c = self.context
        out = {L.RELEASE: release, L.TIME: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        for key, value in (
            (L.COMMIT, c.commit_sha),
            (L.PIPELINE, c.pipeline_url),
            (L.JOB, c.job_url),
            (L.USER, c.user),
            (L.PROJECT, c.project_path),
            (L.MR, f"!{c.merge_request.iid} {c.merge_request.title}" if c.merge_request else ""),
        ):
            if value:
                out[key] = value
        return out

    # -- release records (Swarm configs: readable from any manager) ---------------------

    def _release_prefix(self) -> str:
        return f"{self.manifest.app}_{host_form(self.manifest.environment.name)}_release-"

    def record_release(self, result: DeployResult) -> None:
        m = self.manifest
        assert result.release is not None
        c = self.context
        data = {
            "id": result.release,
            "digests": dict(result.digests),
            "config_hashes": {s.name: s.config_hash() for s in m.services},
            "replicas": {s.name: s.replicas for s in m.services},
            "commit": c.commit_sha,
            "pipeline_url": c.pipeline_url,
            "job_url": c.job_url,
            "merge_request": (
                f"!{c.merge_request.iid} {c.merge_request.title}" if c.merge_request else ""
            ),
            "user": c.user,
            "created_at": time.time(),
        }
        labels = {
            L.MANAGED: "true",
            L.ROLE: L.ROLE_RELEASE,
            L.APP: m.app,
            L.ENVIRONMENT: m.environment.name,
            L.RELEASE: result.release,
            S.STACK_NAMESPACE: m.app,
        }
        name = (self._release_prefix() + result.release)[:64]
        with self._wrapped(f"recording release {result.release}"):
            self.api.create_config(name, json.dumps(data).encode(), labels=labels)
        self._prune_releases()
        if any(s.files for s in self.manifest.services):
            with contextlib.suppress(DeployerError):
                self._prune_files()

    def releases(self) -> list[Release]:
        """The recorded releases of the app and environment, oldest first."""
        m = self.manifest
        with self._wrapped("listing releases"):
            found = self.api.configs(
                filters={"label": [f"{L.ROLE}={L.ROLE_RELEASE}", f"{L.APP}={m.app}"]}
            )
        out = []
        for cfg in found:
            if (cfg["Spec"].get("Labels") or {}).get(L.ENVIRONMENT) != m.environment.name:
                continue
            try:
                raw = json.loads(base64.b64decode(cfg["Spec"].get("Data", "")))
            except ValueError:
                continue
            out.append(
                Release(
                    id=str(raw["id"]),
                    app=m.app,
                    environment=m.environment.name,
                    digests=dict(raw.get("digests") or {}),
                    config_hashes=dict(raw.get("config_hashes") or {}),
                    replicas=dict(raw.get("replicas") or {}),
                    commit=str(raw.get("commit", "")),
                    pipeline_url=str(raw.get("pipeline_url", "")),
                    job_url=str(raw.get("job_url", "")),
                    merge_request=str(raw.get("merge_request", "")),
                    user=str(raw.get("user", "")),
                    created_at=float(raw.get("created_at", 0.0)),
                )
            )
        return sorted(out, key=lambda r: r.id)

    def _prune_releases(self) -> None:
        keep = max(1, self.manifest.rollout.keep_releases) + 1  # the current one, and N back
        prefix = self._release_prefix()
        with self._wrapped("listing releases"):
            found = [
                c
                for c in self.api.configs(filters={"name": prefix})
                if c["Spec"]["Name"].startswith(prefix)
            ]
        found.sort(key=lambda c: c["Spec"]["Name"])
        for cfg in found[:-keep]:
            with self._wrapped("pruning old releases"), contextlib.suppress(docker.errors.NotFound):
                self.api.remove_config(cfg["ID"])

    def apply(
        self,
        plan: Plan,
        log: Log,
        *,
        lock_wait: float = 0.0,
        release: str | None = None,
        run_tasks: bool = True,
        record: bool = True,
    ) -> DeployResult:
        """Apply ``plan`` (made by ``self.plan()``), locked, and report what happened.

        The result's outcome says how it ended: DEPLOYED, NOTHING_TO_DO, ROLLED_BACK (the
        failed service rolled back by Swarm, every other change of this run undone) or
        ROLLBACK_FAILED. ``raise_for_outcome`` turns the last two into exit 1 / exit 5.
        """
        m = self.manifest
        result = DeployResult(
            app=m.app,
            environment=m.environment.name,
            outcome=Outcome.NOTHING_TO_DO,
            plan=plan,
            release=release or new_release_id(self.context),
            digests=dict(plan.digests),
            started_at=time.time(),
            url=m.environment.url,
        )
        start = time.monotonic()
        if len(plan.hosts) != 1:
            raise InvalidInput(
                f"a Swarm plan has one host (the manager), this one has {len(plan.hosts)}",
            )
        host_plan = plan.hosts[0]
        if not host_plan.changes:
            log.line("nothing to do: every service runs its planned image and configuration")
            result.hosts[self.name] = Outcome.NOTHING_TO_DO.value
            result.seconds = time.monotonic() - start
            return result
        lease = self.acquire_lock(self.context.holder, m.rollout.lock_ttl, lock_wait)
        held = [lease]

        def renew() -> None:
            try:
                held[0] = self.renew_lock(held[0], m.rollout.lock_ttl)
            except DeployerError as e:
                log.line(f"could not renew the deploy lock: {e.message}")

        stop_renewing = keep_renewing(renew, m.rollout.lock_ttl)
        try:
            self._apply_locked(plan, result, log, run_tasks=run_tasks)
            if result.outcome is Outcome.DEPLOYED and record:  # a restart records none
                self.record_release(result)
        finally:
            stop_renewing()
            self.release_lock(lease)
        result.seconds = time.monotonic() - start
        result.hosts[self.name] = result.outcome.value
        return result

    def _apply_locked(
        self, plan: Plan, result: DeployResult, log: Log, *, run_tasks: bool = True
    ) -> None:
        m = self.manifest
        tasks = m.tasks if run_tasks else ()
        assert result.release is not None
        extra = self.release_labels(result.release)
        host_plan = plan.hosts[0]
        services = {s["Spec"]["Name"]: s for s in self._services()}
        recorded = self.releases()
        result.previous_release = recorded[-1].id if recorded else None
        self.ensure_networks(log)

        def task_failed(rec: StepRecord) -> bool:
            result.steps.append(rec)
            return rec.status is StepStatus.FAILED

        for task in tasks:
            if task.when == "before-deploy" and task.service in plan.digests:
                log.line(f"task {task.name} (before deploy, from {task.service}'s new image)")
                rec = self.run_task(task, plan.digests[task.service], log, extra)
                if task_failed(rec):
                    result.outcome = Outcome.ROLLED_BACK
                    result.error = f"task {task.name} failed ({rec.detail}); nothing was changed"
                    return

        undo: list[_Undo] = []
        removals: list[Step] = []
        for wave in plan.waves:
            for name in wave:
                step = host_plan.step(name)
                if step.action is Action.UNCHANGED:
                    continue
                try:
                    rec, ok = self._roll(step, plan.digests[name], services, extra, undo, log)
                except DeployerError as e:
                    # The engine refused the change (or went away): undo what this run did.
                    rec, ok = (
                        self._record(
                            "rollout",
                            f"rollout {name}",
                            name,
                            status=StepStatus.FAILED,
                            detail=e.message,
                        ),
                        False,
                    )
                    log.line(f"{name}: FAILED: {e.message}")
                result.steps.append(rec)
                if not ok:
                    self._fail(result, f"{name}: {rec.detail}", undo, log)
                    return
        removals = [s for s in host_plan.steps if s.action is Action.REMOVE]

        for task in tasks:
            if task.when == "after-deploy" and task.service in plan.digests:
                log.line(f"task {task.name} (after deploy)")
                rec = self.run_task(task, plan.digests[task.service], log, extra)
                if task_failed(rec):
                    self._fail(result, f"task {task.name} failed ({rec.detail})", undo, log)
                    return

        for step in removals:
            t0 = time.monotonic()
            swarm_name = S.service_name(m.app, step.service)
            svc = services.get(swarm_name)
            if svc is not None:
                self.remove_service(svc["ID"])
            log.line(f"{step.service}: removed (no longer in the manifest)")
            result.steps.append(
                self._record(
                    "prune",
                    f"remove {step.service}",
                    step.service,
                    seconds=time.monotonic() - t0,
                    detail="no longer in the manifest",
                )
            )
        result.outcome = Outcome.DEPLOYED

    def _roll(
        self,
        step: Step,
        digest: str,
        services: Mapping[str, dict[str, Any]],
        extra: Mapping[str, str],
        undo: list[_Undo],
        log: Log,
    ) -> tuple[StepRecord, bool]:
        m = self.manifest
        service = m.service(step.service)
        swarm_name = S.service_name(m.app, step.service)
        rec = self._record("rollout", f"rollout {step.service}", step.service)
        t0 = time.monotonic()
        deadline = S.convergence_deadline(m, service, max(step.replicas_after, 1))
        current = services.get(swarm_name)
        refs = self.ensure_files(service, log) if service.files else {}
        if current is None:
            spec = S.service_spec(m, service, digest, extra, refs=refs)
            log.line(f"{step.service}: create {swarm_name} ({step.replicas_after} x {digest})")
            sid = self.create_service(spec)
            undo.append(_Undo(step.service, sid, None))
            verdict = self.wait_converged(sid, rolling=False, since=None, deadline=deadline)
        else:
            sid = current["ID"]
            prev = current["Spec"]
            prev_force = int(prev["TaskTemplate"].get("ForceUpdate", 0) or 0)
            spec = S.service_spec(m, service, digest, extra, force_update=prev_force, refs=refs)
            restart = step.reasons == ("restart",)  # `deployer restart`: always new tasks
            if step.action is Action.REPLACE and (restart or _same_tasks(prev, spec)):
                # Nothing in the task spec changed (stopped tasks, adopted service): force.
                spec = S.service_spec(
                    m, service, digest, extra, force_update=prev_force + 1, refs=refs
                )
            rolling = not _same_tasks(prev, spec)
            since = (current.get("UpdateStatus") or {}).get("StartedAt")
            log.line(
                f"{step.service}: {step.action.value} ({'; '.join(step.reasons)}) "
                f"{step.strategy}, parallelism {service.update_config.parallelism}"
            )
            self.update_service(sid, spec)
            undo.append(_Undo(step.service, sid, prev))
            verdict = self.wait_converged(sid, rolling=rolling, since=since, deadline=deadline)
        rec.seconds = time.monotonic() - t0
        if verdict.ok:
            rec.detail = f"{verdict.state} in {rec.seconds:.1f} s ({step.replicas_after} running)"
            log.line(f"{step.service}: {rec.detail}")
            return rec, True
        rec.status = StepStatus.FAILED
        rec.detail = f"{verdict.state}: {verdict.detail}" if verdict.detail else verdict.state
        rec.log_excerpt = self._service_logs(sid)
        log.line(f"{step.service}: FAILED: {rec.detail}")
        return rec, False

    def _service_logs(self, service_id: str, tail: int = 20) -> str:
        with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
            chunks = self.api.service_logs(
                service_id, stdout=True, stderr=True, follow=False, tail=tail
            )
            return b"".join(chunks).decode(errors="replace")[-4000:]
        return ""

    def _fail(self, result: DeployResult, why: str, undo: list[_Undo], log: Log) -> None:
        """Put every service this run changed back to its previous spec, last first."""
        result.error = why
        problems = []
        for item in reversed(undo):
            t0 = time.monotonic()
            rec = self._record(
                "rollback", f"rollback {item.service}", item.service, status=StepStatus.ROLLED_BACK
            )
            try:
                verdict = self._restore(item)
            except DeployerError as e:
                verdict = Verdict(False, "error", e.message)
            rec.seconds = time.monotonic() - t0
            if verdict.ok:
                rec.detail = (
                    "removed (created by this run)"
                    if item.previous is None
                    else f"previous spec restored ({verdict.state})"
                )
            else:
                rec.status = StepStatus.FAILED
                rec.detail = f"restoring failed: {verdict.state}: {verdict.detail}"
                problems.append(f"{item.service}: {rec.detail}")
            log.line(f"{item.service}: rollback: {rec.detail}")
            result.steps.append(rec)
        for rec in result.steps:
            if rec.kind == "rollout" and rec.status is StepStatus.OK:
                rec.status = StepStatus.ROLLED_BACK
        if problems:
            result.outcome = Outcome.ROLLBACK_FAILED
            result.error = f"{why}; and rolling back failed: {'; '.join(problems)}"
        else:
            result.outcome = Outcome.ROLLED_BACK

    def _restore(self, item: _Undo) -> Verdict:
        if item.previous is None:
            self.remove_service(item.service_id)
            return Verdict(True, "removed")
        current = self._inspect(item.service_id)
        service = self.manifest.service(item.service)
        deadline = S.convergence_deadline(self.manifest, service, obs.replicas_of(current))
        if _same_spec(current["Spec"], item.previous):
            # Swarm already rolled it back (failure_action rollback): check it runs.
            return self.wait_converged(
                item.service_id,
                rolling=False,
                since=(current.get("UpdateStatus") or {}).get("StartedAt"),
                deadline=deadline,
            )
        since = (current.get("UpdateStatus") or {}).get("StartedAt")
        self.update_service(item.service_id, item.previous)
        return self.wait_converged(
            item.service_id,
            rolling=not _same_tasks(current["Spec"], item.previous),
            since=since,
            deadline=deadline,
        )

    def remove_app(self) -> None:
        """Remove every service, job and network of the app (tests and teardown)."""
        for svc in self._services():
            self.remove_service(svc["ID"])
        with self._wrapped("listing networks"):
            nets = self.api.networks(filters={"label": f"{S.STACK_NAMESPACE}={self.manifest.app}"})
        for net in nets:
            with self._wrapped("removing network"), contextlib.suppress(docker.errors.NotFound):
                self.api.remove_network(net["Id"])


def raise_for_outcome(result: DeployResult) -> None:
    """Exit 1 for a deploy that failed and was rolled back, 5 when undoing failed too."""
    if result.outcome is Outcome.ROLLED_BACK:
        raise DeployFailed(
            f"deploy of {result.app}/{result.environment} failed and was rolled back: "
            f"{result.error}",
            hint="see the failed step's log above; the previous release still runs",
        )
    if result.outcome is Outcome.ROLLBACK_FAILED:
        raise RollbackFailed(
            f"deploy of {result.app}/{result.environment} failed and rolling back failed: "
            f"{result.error}",
            hint="inspect `docker service ps` on the manager and fix by hand",
        )


def _same_tasks(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two specs give the same tasks (so Swarm would start no rolling update)."""
    ta, tb = a.get("TaskTemplate") or {}, b.get("TaskTemplate") or {}
    ca, cb = ta.get("ContainerSpec") or {}, tb.get("ContainerSpec") or {}
    keys = ("Image", "Env", "Args", "Command", "Healthcheck", "Mounts", "User", "Labels")
    return bool(
        all(_norm(ca.get(k)) == _norm(cb.get(k)) for k in keys)
        and ta.get("ForceUpdate", 0) == tb.get("ForceUpdate", 0)
        and _norm((a.get("EndpointSpec") or {}).get("Ports"))
        == _norm((b.get("EndpointSpec") or {}).get("Ports"))
    )


def _same_spec(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return bool(
        _same_tasks(a, b)
        and _norm(a.get("Labels")) == _norm(b.get("Labels"))
        and _norm(a.get("Mode")) == _norm(b.get("Mode"))
    )


def _norm(value: object) -> str:
    return json.dumps(value or None, sort_keys=True)
