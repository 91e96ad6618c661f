"""Registry credentials per image, and image references resolved to digests without pulling.

Credentials, first match wins, for the image's registry:
1. the manifest's ``registries`` entries (server matched exactly);
2. ``DOCKER_AUTH_CONFIG`` (GitLab's JSON:
   ``{"auths": {server: {"auth": b64} or {"username": .., "password": ..}}}``);
3. ``CI_DEPLOY_USER`` / ``CI_DEPLOY_PASSWORD`` for ``CI_REGISTRY`` (a deploy token, which
   outlives the job; FACTS 8);
4. ``CI_REGISTRY_USER`` / ``CI_REGISTRY_PASSWORD`` for ``CI_REGISTRY`` (the job token).
They are passed on every call, never stored on the engine (no ``docker login``).

``resolve`` asks the host's engine (``/distribution/{name}/json``: the engine asks the
registry, nothing is pulled) for the digest behind a tag: ``repo@sha256:...``. With
``pull_policy: never`` the image must be on the host and its local ID (``sha256:...``)
identifies it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence

import docker
import docker.errors

from deployer.docker.observe import repository
from deployer.docker.transport import wrapped_errors
from deployer.errors import InvalidInput, Unreachable
from deployer.manifest.model import Manifest, RegistryAuth

DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


def registry_of(image: str) -> str:
    """The registry host of an image reference (``docker.io`` for Docker Hub)."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return DOCKER_HUB


def _norm_server(server: str) -> str:
    s = server.strip()
    for prefix in ("https://", "http://"):
        s = s.removeprefix(prefix)
    s = s.split("/", 1)[0]
    return DOCKER_HUB if s in _HUB_ALIASES else s


def _from_docker_auth_config(text: str, server: str) -> RegistryAuth | None:
    try:
        data = json.loads(text)
    except ValueError as e:
        raise InvalidInput(
            f"DOCKER_AUTH_CONFIG is not valid JSON: {e}",
            hint='it must look like {"auths": {"registry.example.com": {"auth": "<base64 '
            'user:password>"}}}',
        ) from e
    auths = data.get("auths") if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        return None
    for key, entry in auths.items():
        if _norm_server(str(key)) != server or not isinstance(entry, dict):
            continue
        if entry.get("username") and entry.get("password"):
            return RegistryAuth(server, str(entry["username"]), str(entry["password"]))
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(str(entry["auth"])).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError) as e:
                raise InvalidInput(
                    f"DOCKER_AUTH_CONFIG: the auth of {key} is not base64 of user:password"
                ) from e
            return RegistryAuth(server, user, password)
    return None


def auth_for(
    image: str, registries: Sequence[RegistryAuth], environ: Mapping[str, str]
) -> RegistryAuth | None:
    """The credentials for ``image``'s registry, or None (anonymous)."""
    server = registry_of(image)
    for reg in registries:
        if _norm_server(reg.server) == server:
            return reg
    if environ.get("DOCKER_AUTH_CONFIG", "").strip():
        found = _from_docker_auth_config(environ["DOCKER_AUTH_CONFIG"], server)
        if found:
            return found
    ci_registry = _norm_server(environ.get("CI_REGISTRY", ""))
    if ci_registry and ci_registry == server:
        for user_var, pass_var in (
            ("CI_DEPLOY_USER", "CI_DEPLOY_PASSWORD"),
            ("CI_REGISTRY_USER", "CI_REGISTRY_PASSWORD"),
        ):
            if environ.get(user_var) and environ.get(pass_var):
                return RegistryAuth(server, environ[user_var], environ[pass_var])
    return None


def auth_config(auth: RegistryAuth | None) -> dict[str, str] | None:
    if auth is None:
        return None
    return {"username": auth.username, "password": auth.password}


def resolve(
    api: docker.APIClient,
    host: str,
    image: str,
    auth: RegistryAuth | None,
    *,
    pull_policy: str = "always",
) -> str:
    """``repo@sha256:...`` for ``image`` from its registry, through the host's engine."""
    if pull_policy == "never":
        return local_id(api, host, image)
    registry = registry_of(image)
    with wrapped_errors(host, f"asking registry {registry} for {image}"):
        try:
            data = api.inspect_distribution(image, auth_config=auth_config(auth))
        except docker.errors.APIError as e:
            raise _registry_error(host, registry, image, auth, e) from e
    digest = str((data.get("Descriptor") or {}).get("digest", ""))
    if not digest.startswith("sha256:"):
        raise Unreachable(
            f"registry {registry} (via {host}) gave no digest for {image}",
            hint="check that the registry speaks the Docker registry API v2",
        )
    return f"{repository(image)}@{digest}"


def local_id(api: docker.APIClient, host: str, image: str) -> str:
    with wrapped_errors(host, f"looking up the local image {image}"):
        try:
            return str(api.inspect_image(image)["Id"])
        except docker.errors.ImageNotFound as e:
            raise Unreachable(
                f"host {host}: image {image} is not on the host (pull_policy: never)",
                hint="build or load the image on that host before deploying, or remove "
                "pull_policy: never so it is pulled from its registry",
            ) from e


def _registry_error(
    host: str,
    registry: str,
    image: str,
    auth: RegistryAuth | None,
    e: docker.errors.APIError,
) -> Unreachable:
    text = str(e.explanation or e)
    low = text.lower()
    who = f"as {auth.username}" if auth else "anonymously"
    if any(w in low for w in ("unauthorized", "authentication required", "no basic auth",
                              "denied", "incorrect username or password")):
        # Registries answer "denied"/"unauthorized" both for bad credentials and for
        # repositories the user may not read (or that do not exist, to hide them).
        return Unreachable(
            f"registry {registry} refused {image} {who} (via {host}): {text}",
            hint="check the credentials (manifest registries, CI_DEPLOY_USER/CI_DEPLOY_PASSWORD, "
            "CI_REGISTRY_USER/CI_REGISTRY_PASSWORD or DOCKER_AUTH_CONFIG) and that they may "
            "read this repository",
        )
    if e.status_code == 404 or "manifest unknown" in low or "not found" in low:
        return Unreachable(
            f"registry {registry} has no image {image} (via {host}): {text}",
            hint="check the image name and tag; was it pushed by an earlier pipeline job?",
        )
    return Unreachable(
        f"registry {registry} could not be asked for {image} (via {host}): {text}",
        hint=f"check that {registry} is up and reachable from the Docker host {host}",
    )


def auth_lookup(
    manifest: Manifest, environ: Mapping[str, str]
) -> Callable[[str], RegistryAuth | None]:
    def lookup(image: str) -> RegistryAuth | None:
        return auth_for(image, manifest.registries, environ)

    return lookup
