"""What a host's engine must have for the manifest, checked before anything changes: the
logging, volume and network drivers (built in, or plugins such as Loki's logging driver)
and the container runtimes (``runtime: nvidia``) the services name.

Without it a missing plugin was found by the engine when the container was created, in
the middle of a rollout ("error looking up logging plugin loki"): the deploy rolled back
what it had changed, and `plan` had shown a plan that could not run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import docker

from deployer.docker.infra import networks_used, volumes_used
from deployer.docker.symlinks import Key, _where
from deployer.docker.transport import wrapped
from deployer.errors import InvalidInput
from deployer.manifest.model import Manifest

# drivers the engine has without listing them among its plugins
_BUILT_IN = {"Log": {"none"}, "Volume": {"local"}, "Network": {"none", "null"}}
_WHAT = {"Log": "logging", "Volume": "volume", "Network": "network"}


def wanted(manifest: Manifest) -> list[tuple[Key, str, str]]:
    """(key path, kind, name) of each driver and runtime the manifest names: kind is the
    section of the engine's ``Plugins`` (Log, Volume, Network), or Runtime."""
    out: list[tuple[Key, str, str]] = []
    for svc in manifest.services:
        if svc.logging and svc.logging.driver:
            out.append((("services", svc.name, "logging", "driver"), "Log", svc.logging.driver))
        if svc.runtime:
            out.append((("services", svc.name, "runtime"), "Runtime", svc.runtime))
    # only what a service uses is created, so only that needs its driver
    for name, v in volumes_used(manifest).values():
        if v is not None and v.driver and not v.external:
            out.append((("volumes", name, "driver"), "Volume", v.driver))
    for n in networks_used(manifest).values():
        if n.driver and not n.external:
            out.append((("networks", n.name, "driver"), "Network", n.driver))
    return out


def _has(available: Iterable[str], name: str) -> bool:
    """The engine finds a plugin by its name, or its name with the ``latest`` tag."""
    names = set(available)
    return name in names or (":" not in name and f"{name}:latest" in names)


def missing(
    manifest: Manifest,
    plugins: Mapping[str, Iterable[str]],
    runtimes: Iterable[str] | None,
    where: str,
) -> list[str]:
    """One line per driver (and runtime, unless ``runtimes`` is None: a Swarm runs the
    default one) the manifest names that ``plugins`` (kind -> names) lacks."""
    have_runtimes = sorted(runtimes or ())
    out = []
    for key, kind, name in wanted(manifest):
        if kind == "Runtime":
            if runtimes is not None and name not in have_runtimes:
                out.append(
                    f'{_where(manifest, key)} on {where}, the engine has no runtime "{name}" '
                    f"(it has: {', '.join(have_runtimes) or 'none'})"
                )
            continue
        available = [*(plugins.get(kind) or []), *_BUILT_IN[kind]]
        if not _has(available, name):
            have = ", ".join(sorted(set(available)))
            out.append(
                f'{_where(manifest, key)} on {where}, the engine has no {_WHAT[kind]} driver "'
                f'{name}" (it has: {have})'
            )
    return out


def refuse(problems: list[str]) -> InvalidInput:
    return InvalidInput(
        "\n".join(problems),
        hint="install the plugin on the host (`docker plugin install ...`, the plugin's "
        "guide says which) or configure the runtime in the engine's daemon.json, then "
        "deploy again; or drop the setting to use the engine's default",
    )


def check_support(manifest: Manifest, client: docker.DockerClient, host: str) -> None:
    """Refuse (InvalidInput, exit 2) a driver or runtime the host's engine lacks, every one
    at once, before anything of the app changes. Reads only."""
    if not wanted(manifest):
        return
    with wrapped("look at the engine's plugins and runtimes", host):
        info = client.api.info()
    problems = missing(manifest, info.get("Plugins") or {}, info.get("Runtimes") or {}, host)
    if problems:
        raise refuse(problems)
