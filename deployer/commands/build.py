"""`deployer build [-f FILE] [--env NAME] [--push] [--services A,B]`.

Builds every service that has a compose ``build:`` section (context, dockerfile, args,
target, labels) through the Docker API of the engine the CI job has (``DOCKER_HOST``,
e.g. a docker:dind service; the local socket otherwise), tagged with the name the deploy
runs (``image:``, else ``$CI_REGISTRY_IMAGE/<service>:$CI_COMMIT_SHA``), and with
``--push`` pushes it with the deploy's registry credentials. Build arguments may be
secrets: they and the registry password are masked in everything printed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from deployer.errors import DeployFailed, InvalidInput
from deployer.manifest.model import Manifest, RegistryAuth, Service
from deployer.report.redact import Redactor, secret_values
from deployer.requests import BuildRequest

DEFAULT_HOST = "unix:///var/run/docker.sock"
BUILD_TIMEOUT = 3600.0


def selected(manifest: Manifest, only: list[str] | None) -> list[Service]:
    with_build = [s for s in manifest.services if s.build is not None]
    if only is not None:
        unknown = [n for n in only if n not in manifest.service_names]
        no_build = [
            n for n in only if n in manifest.service_names and n not in {s.name for s in with_build}
        ]
        if unknown or no_build:
            raise InvalidInput(
                "--services: "
                + "; ".join(
                    ([f"unknown service(s) {', '.join(unknown)}"] if unknown else [])
                    + ([f"no `build:` in {', '.join(no_build)}"] if no_build else [])
                ),
                hint="services with `build:`: " + (", ".join(s.name for s in with_build) or "none"),
            )
        with_build = [s for s in with_build if s.name in only]
    if not with_build:
        raise InvalidInput(
            f"no service of {manifest.path} has a `build:` section",
            hint="add `build:` to the services CI should build",
        )
    return with_build


def push_auth(image: str, manifest: Manifest, environ: Mapping[str, str]) -> RegistryAuth | None:
    """The deploy's credentials for the image's registry; for pushing, the job's own
    registry login comes before a (read-only) deploy token."""
    from deployer.docker.registry import auth_for

    env = dict(environ)
    if env.get("CI_REGISTRY_USER") and env.get("CI_REGISTRY_PASSWORD"):
        env.pop("CI_DEPLOY_USER", None)
        env.pop("CI_DEPLOY_PASSWORD", None)
    return auth_for(image, manifest.registries, env)


def _stream(
    chunks: Iterable[dict[str, Any]], out: TextIO, mask: Redactor, what: str
) -> dict[str, Any]:
    """Print a build or push stream; raise on its first error; return its last aux."""
    aux: dict[str, Any] = {}
    for chunk in chunks:
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("error") or (chunk.get("errorDetail") or {}).get("message")
            raise DeployFailed(f"{what} failed: {mask(str(detail).strip())}")
        if isinstance(chunk.get("aux"), dict):
            aux = chunk["aux"]
        text = chunk.get("stream")
        if isinstance(text, str) and text.strip():
            out.write(mask(text) if text.endswith("\n") else mask(text) + "\n")
        elif chunk.get("status") and chunk.get("id") is None:
            out.write(mask(str(chunk["status"])) + "\n")
    return aux


def run(req: BuildRequest, out: TextIO, environ: Mapping[str, str] | None = None) -> int:
    from deployer.commands.deploy import load
    from deployer.commands.plan import services_arg
    from deployer.docker.connect import connect
    from deployer.docker.containers import wrapped
    from deployer.docker.registry import auth_config, registry_of

    env = dict(os.environ if environ is None else environ)
    manifest = load(req, env)
    services = selected(manifest, services_arg(req.services))
    known = secret_values(manifest, env)
    secrets = set(known)
    for svc in services:
        assert svc.build is not None
        secrets.update(v for _, v in svc.build.args if len(v) >= 6)
    auths = {s.name: push_auth(s.image, manifest, env) for s in services} if req.push else {}
    secrets.update(a.password for a in auths.values() if a is not None)
    mask = Redactor(secrets, known.names)
    for svc in services:
        assert svc.build is not None
        if svc.build.not_built_here:
            keys = ", ".join(f"build.{k}" for k in svc.build.not_built_here)
            raise InvalidInput(
                f"service `{svc.name}`: {keys} cannot be honoured by `deployer build` (it "
                "builds through the engine's classic build API: context, dockerfile, args, "
                "target, labels)",
                hint="build and push this image in CI with `docker compose build` or "
                "`docker buildx build` (the deploy takes it by its `image:` name), or "
                "leave it out with --services",
            )
        if "@" in svc.image:
            raise InvalidInput(
                f"service `{svc.name}`: `image: {svc.image}` is pinned by digest; a build "
                "cannot produce it",
                hint="name a tag in `image:`, or remove `image:` to use the CI convention",
            )
    url = env.get("DOCKER_HOST") or DEFAULT_HOST
    with connect(url, env, timeout=BUILD_TIMEOUT) as conn:
        api = conn.api
        for svc in services:
            b = svc.build
            assert b is not None
            out.write(f"{svc.name}: building {svc.image} from {b.context}\n")
            with wrapped(f"build {svc.name}", conn.name):
                _stream(
                    api.build(
                        path=b.context,
                        dockerfile=b.dockerfile,
                        buildargs=dict(b.args) or None,
                        target=b.target,
                        labels=dict(b.labels) or None,
                        tag=svc.image,
                        rm=True,
                        forcerm=True,
                        decode=True,
                    ),
                    out,
                    mask,
                    f"build of {svc.name}",
                )
                image_id = api.inspect_image(svc.image)["Id"]
            out.write(f"{svc.name}: built {svc.image} ({image_id[:19]})\n")
        if not req.push:
            return 0
        for svc in services:
            repo, _, tag = svc.image.rpartition(":")
            if "/" in tag or not repo:
                repo, tag = svc.image, "latest"
            auth = auths.get(svc.name)
            with wrapped(f"push {svc.name}", conn.name):
                aux = _stream(
                    api.push(
                        repo, tag=tag, stream=True, decode=True, auth_config=auth_config(auth)
                    ),
                    out,
                    mask,
                    f"push of {svc.image} to {registry_of(svc.image)}",
                )
            digest = aux.get("Digest")
            out.write(
                f"{svc.name}: pushed {repo}@{digest}\n" if digest else f"{svc.name}: pushed\n"
            )
    out.flush()
    return 0
