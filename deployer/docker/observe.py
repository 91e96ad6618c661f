"""What runs on a host for an app and environment, read from container labels.

The deployer's containers carry ``io.deployer.*`` labels (deployer/labels.py). Labels
are immutable, so a container's role is read from its name (deployer/engine.py):
``<app>-<env>-<service>-<replica>`` is the current one, ``<that>--<release>`` a previous
release kept stopped for rollback, ``<that>--next-<release>`` a replacement that was
starting when a deploy stopped. Locks, release records and task containers are not
service containers.

Containers that docker compose created for the manifest's ``compose_project`` are
adopted: they count as the current containers of their service, with the digest taken
from their image's ``RepoDigests`` entry for the service's repository (FACTS 7), and
config parts from comparing their inspect with the service (deployer/docker/adopt.py),
so an unchanged service stays as compose left it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import docker
import docker.errors

from deployer import labels as L
from deployer.docker import adopt, namespaces
from deployer.docker.transport import wrapped_errors
from deployer.engine import KEPT_SEP, NEXT_MARK, canonical_name
from deployer.manifest.model import Service
from deployer.plan import Leftover, Observed, ObservedContainer

_NOT_SERVICE_ROLES = (L.ROLE_LOCK, L.ROLE_RELEASE, L.ROLE_TASK)


def repository(image: str) -> str:
    """``registry/path/name`` of an image reference, without tag or digest."""
    ref = image.split("@", 1)[0]
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        ref = ref[:colon]
    return ref


def _health(summary: Mapping[str, Any]) -> str:
    status = str(summary.get("Status", ""))
    for word in ("unhealthy", "healthy", "health: starting"):
        if f"({word})" in status:
            return "starting" if word == "health: starting" else word
    return "none"


def _name(summary: Mapping[str, Any]) -> str:
    names = summary.get("Names") or [""]
    return str(names[0]).lstrip("/")


def _parts(labels: Mapping[str, str]) -> dict[str, str] | None:
    """The per-key parts label; None when there is none or it cannot be read."""
    raw = labels.get(L.CONFIG_PARTS)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None


def _int(value: str | None) -> int:
    try:
        return int(value or "0")
    except ValueError:
        return 0


_EXITED = re.compile(r"^Exited \((-?\d+)\)")


def exit_code(summary: Mapping[str, Any]) -> int | None:
    """The exit code of an exited container, from the listing's status ("Exited (0) 5
    minutes ago"); None for one that has not exited."""
    if summary.get("State") != "exited":
        return None
    m = _EXITED.match(str(summary.get("Status") or ""))
    return int(m.group(1)) if m else None


def _ours(summary: Mapping[str, Any]) -> ObservedContainer:
    labels: dict[str, str] = summary.get("Labels") or {}
    return ObservedContainer(
        id=str(summary["Id"]),
        name=_name(summary),
        service=labels.get(L.SERVICE, ""),
        replica=_int(labels.get(L.REPLICA)),
        running=summary.get("State") == "running",
        exit_code=exit_code(summary),
        image_digest=labels.get(L.DIGEST) or None,
        config_hash=labels.get(L.CONFIG_HASH) or None,
        config_parts=_parts(labels),
        release=labels.get(L.RELEASE) or None,
        health=_health(summary),
        adopted_from=None,
        created=str(summary.get("Created", "")),
        joined=joined(summary),
        project=labels.get(L.PROJECT, ""),
    )


def joined(summary: Mapping[str, Any]) -> str | None:
    """The id of the container whose network namespace this one joined (``NetworkMode``
    ``container:<id>`` in the listing), None when it has a network of its own."""
    mode = str((summary.get("HostConfig") or {}).get("NetworkMode") or "")
    kind, _, cid = mode.partition(":")
    return cid if kind == "container" and cid else None


def list_app(api: docker.APIClient, host: str, app: str, environment: str) -> list[dict[str, Any]]:
    """Every container labelled for this app and environment (one API call)."""
    with wrapped_errors(host, f"listing the containers of {app}/{environment}"):
        found: list[dict[str, Any]] = api.containers(
            all=True, filters={"label": [f"{L.APP}={app}", f"{L.ENVIRONMENT}={environment}"]}
        )
    return L.not_swarm_tasks(found)


def split(
    summaries: Sequence[Mapping[str, Any]], app: str, environment: str
) -> tuple[list[ObservedContainer], list[ObservedContainer]]:
    """(current, kept) service containers among the app's labelled containers."""
    current: list[ObservedContainer] = []
    kept: list[ObservedContainer] = []
    for s in summaries:
        labels = s.get("Labels") or {}
        if labels.get(L.ROLE) in _NOT_SERVICE_ROLES or not labels.get(L.SERVICE):
            continue
        c = _ours(s)
        if c.name == canonical_name(app, environment, c.service, c.replica):
            current.append(c)
        elif NEXT_MARK in c.name:
            continue  # a replacement left over by an interrupted deploy: not serving
        elif KEPT_SEP in c.name:
            kept.append(c)
        else:
            current.append(c)  # renamed by hand: still ours and maybe serving
    return current, kept


def leftovers(summaries: Sequence[Mapping[str, Any]], app: str, environment: str) -> list[Leftover]:
    """Containers of the app that no release accounts for: a ``--next-`` replacement
    (running or not) of a deploy that stopped before its switch (or, while a deploy holds
    the lock, of that deploy, said so), a kept container that
    runs again (an engine restart with ``restart: always``), a task container left
    stopped. A running task container is left alone (it may be a one-off still at work).
    """
    from deployer.docker.lock import HOLDER, LEASE

    # A deploy that holds the lock now (running, or killed before its lock expires) has
    # its `--next-` replacements beside the current containers while it rolls out.
    holders = sorted(
        {
            str((s.get("Labels") or {}).get(HOLDER) or "?")
            for s in summaries
            if (s.get("Labels") or {}).get(L.ROLE) == L.ROLE_LOCK
            and LEASE not in (s.get("Labels") or {})
        }
    )
    out: list[Leftover] = []
    for s in summaries:
        labels = s.get("Labels") or {}
        role = labels.get(L.ROLE)
        name = _name(s)
        running = s.get("State") == "running"
        service = labels.get(L.SERVICE, "")
        if role in (L.ROLE_LOCK, L.ROLE_RELEASE):
            continue
        if role == L.ROLE_TASK:
            if not running:
                out.append(Leftover(str(s["Id"]), name, service, False, "task container left"))
            continue
        if not service:
            continue
        if NEXT_MARK in name and holders:
            why = (
                f"replacement of the deploy that holds the lock ({', '.join(holders)}): "
                "in progress, unless it was killed"
            )
            out.append(Leftover(str(s["Id"]), name, service, running, why))
        elif NEXT_MARK in name:
            why = "replacement started by an interrupted deploy"
            out.append(Leftover(str(s["Id"]), name, service, running, why))
        elif KEPT_SEP in name and running:
            why = "kept container of an older release running again"
            out.append(Leftover(str(s["Id"]), name, service, running, why, keep=True))
    out.sort(key=lambda c: c.name)
    return out


def _compose(
    api: docker.APIClient,
    host: str,
    project: str,
    services: Mapping[str, Service],
    taken: set[str],
    engine_names: Mapping[str, str],
) -> list[ObservedContainer]:
    with wrapped_errors(host, f"listing the containers of compose project {project}"):
        summaries: list[dict[str, Any]] = L.not_swarm_tasks(
            api.containers(all=True, filters={"label": [f"{L.COMPOSE_PROJECT}={project}"]})
        )
    out: list[ObservedContainer] = []
    images: dict[str, dict[str, Any]] = {}
    engine: list[dict[str, Any]] = []  # docker info, read once
    by_id = {
        str(s["Id"]): str((s.get("Labels") or {}).get(L.COMPOSE_SERVICE, "")) for s in summaries
    }
    # the containers' own names (a container a legacy link names has its alias as a name
    # too: "/linking/alias")
    project_names = {
        str(n).lstrip("/") for s in summaries for n in s.get("Names") or [] if "/" not in n[1:]
    }
    for s in summaries:
        labels = s.get("Labels") or {}
        if labels.get(L.APP) or labels.get(L.COMPOSE_ONEOFF, "False").lower() == "true":
            continue  # ours already (they carry compose's labels too), or `compose run`
        service = labels.get(L.COMPOSE_SERVICE, "")
        if not service or service in taken:
            continue
        image_id = str(s.get("ImageID", ""))
        svc = services.get(service)
        if image_id not in images:
            with wrapped_errors(host, f"inspecting image {image_id[:19]}"):
                try:
                    images[image_id] = api.inspect_image(image_id)
                except docker.errors.ImageNotFound:
                    images[image_id] = {}
        digest: str | None
        known: list[str] = []
        if svc is not None and svc.pull_policy == "never":
            digest = image_id or None
        else:
            repo = repository(svc.image if svc else str(s.get("Image", "")))
            known = _repo_digests(images[image_id].get("RepoDigests") or [], repo)
            digest = known[0] if known else None
        parts: dict[str, str] = {}
        config_hash: str | None = None  # not in the manifest: nothing to compare with
        joined_ns: tuple[tuple[str, str], ...] = ()
        if svc is not None:
            if not engine:
                with wrapped_errors(host, "reading the engine's defaults (docker info)"):
                    engine.append(dict(api.info()))
            with wrapped_errors(host, f"inspecting container {_name(s)}"):
                try:
                    inspect = api.inspect_container(s["Id"])
                except docker.errors.NotFound:
                    continue  # removed meanwhile
            parts = adopt.config_parts(
                svc,
                inspect,
                images[image_id],
                project,
                str(engine[0].get("LoggingDriver") or "") or None,
                engine_names,
                adopt.default_cgroupns(engine[0]),
                by_id,
                project_names,
            )
            config_hash = adopt.config_hash(parts, svc)
            joined_ns = namespaces.joined_namespaces(inspect.get("HostConfig") or {})
        out.append(
            ObservedContainer(
                id=str(s["Id"]),
                name=_name(s),
                service=service,
                replica=_int(labels.get(L.COMPOSE_NUMBER)) or 1,
                running=s.get("State") == "running",
                exit_code=exit_code(s),
                image_digest=digest,
                image_digests=tuple(known),
                config_hash=config_hash,
                config_parts=parts,
                health=_health(s),
                adopted_from="compose",
                created=str(s.get("Created", "")),
                joined=joined(s),
                joined_ns=joined_ns,
            )
        )
    return out


def _repo_digests(repo_digests: Sequence[str], repo: str) -> list[str]:
    """The entries of the (unordered) RepoDigests list for ``repo`` (FACTS 7), sorted.

    An image pushed or pulled more than once lists several for one repository.
    """
    found = sorted(e for e in repo_digests if e.split("@", 1)[0] == repo)
    if found:
        return found
    # Docker Hub official images are listed with or without the "docker.io/library/" prefix.
    short = repo.removeprefix("docker.io/").removeprefix("library/")
    return sorted(
        e
        for e in repo_digests
        if e.split("@", 1)[0].removeprefix("docker.io/").removeprefix("library/") == short
    )


def observe(
    api: docker.APIClient,
    host: str,
    app: str,
    environment: str,
    *,
    compose_project: str | None = None,
    services: Sequence[Service] = (),
    engine_names: Mapping[str, str] | None = None,
) -> Observed:
    """The current service containers of the app on this host (ours, then adopted ones)."""
    summaries = list_app(api, host, app, environment)
    current, _ = split(summaries, app, environment)
    current = namespaces.read(api, host, current, services)
    if compose_project:
        taken = {c.service for c in current}
        by_name = {s.name: s for s in services}
        current += _compose(api, host, compose_project, by_name, taken, engine_names or {})
    current.sort(key=lambda c: (c.service, c.replica, c.name))
    left = tuple(leftovers(summaries, app, environment))
    return Observed(host=host, containers=tuple(current), leftovers=left)


def kept(api: docker.APIClient, host: str, app: str, environment: str) -> list[ObservedContainer]:
    """Containers of previous releases kept (stopped) for rollback."""
    _, old = split(list_app(api, host, app, environment), app, environment)
    old.sort(key=lambda c: (c.service, c.replica, c.created))
    return old
