"""The real test peers started by ``scripts/testenv.sh up``, as data, plus helpers.

``TestEnv.load()`` reads ``.testenv/env``; the fixtures in ``tests/conftest.py`` expose it.
Helpers here create "already deployed" state directly through the Docker SDK (labelled
containers, as the deployer or docker compose would have left them) and remove everything
a test made, by label, on both engines.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import secrets
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from deployer import labels as L

ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = ROOT / ".testenv" / "env"


@contextlib.contextmanager
def exclusive(name: str) -> Iterator[None]:
    """Holds the lock ``name`` of the test environment: one process at a time (the workers
    of a parallel run, and any other run on the same peers) runs the block."""
    locks = ROOT / ".testenv" / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class TestEnvNotUp(RuntimeError):
    __test__ = False  # not a test class


@dataclass(frozen=True)
class TestEnv:
    """Addresses and paths of the test peers (see tests/testenv/README.md)."""

    __test__ = False  # not a test class

    root: Path
    engine_host: str  # unix:///var/run/docker.sock: the main engine
    engine2_host: str  # unix://...: the second engine (also the TLS host)
    registry: str  # 127.0.0.1:5000, no auth
    auth_registry: str  # 127.0.0.1:5001, htpasswd auth
    auth_user: str
    auth_password: str
    ssh_host: str  # ssh://root@127.0.0.1:2222 -> the main engine
    ssh_key: Path  # private key (OpenSSH format) sshd accepts
    ssh_known_hosts: Path  # known_hosts line for the sshd's host key
    sshd_log: Path  # sshd -E log: one "Accepted publickey" line per connection
    tls_host: str  # tcp://127.0.0.1:2376 -> the second engine, --tlsverify
    tls_cert_path: Path  # DOCKER_CERT_PATH layout: ca.pem, cert.pem, key.pem
    tls_wrong_ca: Path  # a CA that did not sign the server's certificate
    image_base: str
    image_v1: str
    image_v2: str
    image_unhealthy: str
    image_crash: str
    image_task: str
    raw: Mapping[str, str]

    @classmethod
    def load(cls, path: Path = ENV_FILE) -> TestEnv:
        if not path.is_file():
            raise TestEnvNotUp(
                f"the test environment is not up ({path} is missing): run scripts/testenv.sh up"
            )
        raw: dict[str, str] = {}
        for raw_line in path.read_text().splitlines():
            line = raw_line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                raw[key.strip()] = value.strip()

        def get(key: str) -> str:
            try:
                return raw["DEPLOYER_TEST_" + key]
            except KeyError:
                raise TestEnvNotUp(
                    f"{path} has no DEPLOYER_TEST_{key}: run scripts/testenv.sh up again"
                ) from None

        return cls(
            root=Path(get("ROOT")),
            engine_host=get("ENGINE_HOST"),
            engine2_host=get("ENGINE2_HOST"),
            registry=get("REGISTRY"),
            auth_registry=get("AUTH_REGISTRY"),
            auth_user=get("AUTH_REGISTRY_USER"),
            auth_password=get("AUTH_REGISTRY_PASSWORD"),
            ssh_host=get("SSH_HOST"),
            ssh_key=Path(get("SSH_KEY")),
            ssh_known_hosts=Path(get("SSH_KNOWN_HOSTS")),
            sshd_log=Path(get("SSHD_LOG")),
            tls_host=get("TLS_HOST"),
            tls_cert_path=Path(get("TLS_CERT_PATH")),
            tls_wrong_ca=Path(get("TLS_WRONG_CA")),
            image_base=get("IMAGE_BASE"),
            image_v1=get("IMAGE_V1"),
            image_v2=get("IMAGE_V2"),
            image_unhealthy=get("IMAGE_UNHEALTHY"),
            image_crash=get("IMAGE_CRASH"),
            image_task=get("IMAGE_TASK"),
            raw=raw,
        )

    # Variables a deploy job would have, per transport -------------------------------

    def ssh_environ(self) -> dict[str, str]:
        """CI variables for ``ssh_host``: key and known_hosts as text, as GitLab gives them."""
        return {
            "DOCKER_HOST": self.ssh_host,
            "SSH_PRIVATE_KEY": self.ssh_key.read_text(),
            "SSH_KNOWN_HOSTS": self.ssh_known_hosts.read_text(),
        }

    def tls_environ(self, *, as_text: bool = False) -> dict[str, str]:
        """CI variables for ``tls_host``: DOCKER_CERT_PATH, or the PEM text variables."""
        env = {"DOCKER_HOST": self.tls_host}
        if as_text:
            env["DOCKER_TLS_CA_CERT"] = (self.tls_cert_path / "ca.pem").read_text()
            env["DOCKER_TLS_CERT"] = (self.tls_cert_path / "cert.pem").read_text()
            env["DOCKER_TLS_KEY"] = (self.tls_cert_path / "key.pem").read_text()
        else:
            env["DOCKER_CERT_PATH"] = str(self.tls_cert_path)
            env["DOCKER_TLS_VERIFY"] = "1"
        return env

    def sshd_accepted(self, fingerprint: str | None = None) -> int:
        """How many SSH connections sshd has accepted so far (with that key, if given)."""
        try:
            text = self.sshd_log.read_text(errors="replace")
        except FileNotFoundError:
            return 0
        return sum(
            1
            for line in text.splitlines()
            if "Accepted publickey" in line and (fingerprint is None or fingerprint in line)
        )

    @contextlib.contextmanager
    def ssh_identity(self, name: str, options: str = "") -> Iterator[SSHIdentity]:
        """A fresh client key sshd accepts while the block runs (only this test uses it),
        so ``sshd_accepted(identity.fingerprint)`` counts this test's connections only.
        ``options``: authorized_keys options for it, e.g. ``command="exit 1"``."""
        key = ed25519.Ed25519PrivateKey.generate()
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ).decode()
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ).decode()
        blob = base64.b64decode(public.split()[1])
        digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
        fingerprint = "SHA256:" + digest
        path = self.ssh_key.parent / "keys.d" / f"{name}.pub"
        prefix = f"{options} " if options else ""
        path.write_text(f"{prefix}{public} {name}\n")
        try:
            yield SSHIdentity(private, public, fingerprint)
        finally:
            path.unlink(missing_ok=True)


@dataclass(frozen=True)
class SSHIdentity:
    private_key: str  # OpenSSH PEM text, as in an SSH_PRIVATE_KEY variable
    public_key: str
    fingerprint: str  # "SHA256:...", as sshd logs it


def unique_app() -> str:
    """A name no other test (or engineer) uses: a letter, then random hex."""
    return "t" + secrets.token_hex(5)


def client(base_url: str) -> docker.DockerClient:
    return docker.DockerClient(base_url=base_url, timeout=30, version="auto")


def cleanup(clients: Mapping[str, docker.DockerClient], app: str) -> list[str]:
    """Remove every container, network and volume labelled for ``app`` (ours or compose's).

    Returns what was removed, for debugging. Never raises for things already gone.
    """
    removed: list[str] = []
    filters = [f"{L.APP}={app}", f"{L.COMPOSE_PROJECT}={app}"]
    for host, dc in clients.items():
        for flt in filters:
            for c in dc.containers.list(all=True, filters={"label": flt}):
                try:
                    c.remove(force=True, v=True)
                    removed.append(f"{host}: container {c.name}")
                except docker.errors.NotFound:
                    pass
            for n in dc.networks.list(filters={"label": flt}):
                if _remove_network(n):
                    removed.append(f"{host}: network {n.name}")
            for v in dc.volumes.list(filters={"label": flt}):
                try:
                    v.remove(force=True)
                    removed.append(f"{host}: volume {v.name}")
                except docker.errors.NotFound:
                    pass
    return removed


def _remove_network(net: Any, wait: float = 30.0, stale: float = 5.0) -> bool:
    """Remove ``net``; False when it is gone already, or left behind as stale (below).
    The engine refuses while a removed container's endpoint is still leaving it ("has
    active endpoints"): retried while a container is still attached, up to ``wait``.

    With no container attached, the engine (20.10) can still refuse for good: its count
    of the network's endpoints went wrong while containers were created and removed on it
    at once on a loaded machine, and only a restart of the engine sets it right. Seen
    after tests of many services in one wave; the test itself had passed. Such a network
    (named after the test's own app, and holding no address a container uses) is left
    behind with a warning after ``stale`` seconds, instead of failing the test."""
    give_up = time.monotonic() + wait
    empty_since: float | None = None
    while True:
        try:
            net.remove()
            return True
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as e:
            if "active endpoints" not in str(e) or time.monotonic() > give_up:
                raise
        try:
            net.reload()
        except docker.errors.NotFound:
            return False
        if net.attrs.get("Containers"):
            empty_since = None
        else:
            now = time.monotonic()
            empty_since = now if empty_since is None else empty_since
            if now - empty_since >= stale:
                warnings.warn(
                    f"network {net.name} left behind: the engine says it has active "
                    "endpoints, but no container is attached (a stale endpoint count)",
                    stacklevel=2,
                )
                return False
        time.sleep(0.25)


def repo_digest(dc: docker.DockerClient, image: str) -> str:
    """``repo@sha256:...`` of a pushed image, as the registry knows it (no pull)."""
    data = dc.images.get_registry_data(image)
    repo = image.rsplit(":", 1)[0] if "@" not in image else image.split("@", maxsplit=1)[0]
    return f"{repo}@{data.id}"


def ensure_image(dc: docker.DockerClient, ref: str) -> None:
    """Pull ``ref`` (tag or digest) unless the engine has it already."""
    try:
        dc.images.get(ref)
    except docker.errors.ImageNotFound:
        repo, sep, tag = ref.partition("@")
        if sep:
            dc.api.pull(repo, tag=tag)
        else:
            dc.images.pull(ref)


def deployed_labels(
    app: str,
    environment: str,
    service: str,
    replica: int,
    digest: str,
    config_hash: str | None,
    config_parts: Mapping[str, str] | None = None,
    release: str = "r1",
) -> dict[str, str]:
    """The labels the deployer puts on a service container (see deployer/labels.py)."""
    out = {
        L.MANAGED: "true",
        L.APP: app,
        L.ENVIRONMENT: environment,
        L.SERVICE: service,
        L.REPLICA: str(replica),
        L.RELEASE: release,
        L.DIGEST: digest,
        L.ROLE: L.ROLE_CURRENT,
    }
    if config_hash is not None:
        out[L.CONFIG_HASH] = config_hash
    if config_parts is not None:
        out[L.CONFIG_PARTS] = json.dumps(dict(config_parts), sort_keys=True)
    return out


def run_deployed(
    dc: docker.DockerClient,
    *,
    app: str,
    environment: str,
    service: str,
    replica: int,
    digest: str,
    config_hash: str | None,
    config_parts: Mapping[str, str] | None = None,
    release: str = "r1",
    name: str | None = None,
    running: bool = True,
) -> Any:
    """Start a container as if the deployer had deployed it: canonical name and labels.

    ``digest`` is ``repo@sha256:...``; it is pulled when missing. ``name`` overrides the
    canonical ``<app>-<env>-<service>-<replica>`` (e.g. for a kept previous release).
    """
    ensure_image(dc, digest)
    cname = name or f"{app}-{environment}-{service}-{replica}"
    lab = deployed_labels(
        app, environment, service, replica, digest, config_hash, config_parts, release
    )
    c = dc.containers.create(digest, name=cname, labels=lab, init=True)
    if running:
        c.start()
    return c


def run_compose_like(
    dc: docker.DockerClient, *, project: str, service: str, number: int, image: str
) -> Any:
    """Start a container labelled as docker compose v2 would have (to test adoption)."""
    ensure_image(dc, image)
    c = dc.containers.create(
        image,
        name=f"{project}-{service}-{number}",
        labels={
            L.COMPOSE_PROJECT: project,
            L.COMPOSE_SERVICE: service,
            L.COMPOSE_NUMBER: str(number),
            L.COMPOSE_ONEOFF: "False",
        },
        init=True,
    )
    c.start()
    return c


def iter_env_lines(env: TestEnv) -> Iterator[str]:
    for k, v in sorted(env.raw.items()):
        yield f"{k}={v}"


def push_as(dc: docker.DockerClient, source: str, target: str) -> str:
    """Tag the local image ``source`` as ``target`` (repo:tag on a test registry), push it,
    drop the local tag again; returns ``repo@sha256:...`` of what the registry now serves.

    Use a tag named after the test's app, so tests never move each other's tags.
    """
    ensure_image(dc, source)
    repo, _, tag = target.rpartition(":")
    dc.images.get(source).tag(repo, tag)
    try:
        for line in dc.api.push(repo, tag=tag, stream=True, decode=True):
            if "error" in line:
                raise RuntimeError(f"push {target}: {line['error']}")
    finally:
        dc.images.remove(target, noprune=True)
    return repo_digest(dc, target)
