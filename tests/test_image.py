"""The deployer image: builds from the Dockerfile on a locally made base, runs as a
non-root user, and works from inside a container against the host's engine.

The base image is a debootstrap minbase with python3 (no registry is reachable here),
made once per machine and kept under a tag derived from its recipe. The deployer and
its dependencies go in as wheels built on the host (containers cannot reach the
package index), installed in the image with ``--no-index``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from deployer import labels as L
from tests.testenv import TestEnv, repo_digest

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".testenv"
BASE_REPO = "deployer-test-base"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _run(cmd: list[str], timeout: float, **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kw,
    )
    if proc.returncode != 0:
        raise AssertionError(f"{cmd[:3]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _codename() -> str:
    text = Path("/etc/os-release").read_text()
    m = re.search(r"^VERSION_CODENAME=(\S+)", text, re.M)
    return m.group(1).strip('"') if m else "bookworm"


def apt_mirror(codename: str) -> str:
    """The Debian mirror apt is configured with (deb822 .sources or sources.list)."""
    candidates: list[tuple[str, str]] = []
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = dict(
                (k.strip().lower(), v.strip())
                for k, _, v in (line.partition(":") for line in stanza.splitlines())
                if not k.startswith("#") and v
            )
            for uri in fields.get("uris", "").split():
                candidates.append((uri, fields.get("suites", "")))
    sources = Path("/etc/apt/sources.list")
    if sources.is_file():
        for line in sources.read_text().splitlines():
            parts = re.sub(r"\[[^]]*\]", "", line).split()
            if len(parts) >= 3 and parts[0] == "deb":
                candidates.append((parts[1], parts[2]))
    for uri, suites in candidates:
        if codename in suites.split() and "security" not in uri:
            return uri
    raise AssertionError("no Debian mirror for the base image found in apt's sources")


def base_image(dc: docker.DockerClient) -> str:
    """The base image (debootstrap minbase + python3), built once per machine."""
    codename = _codename()
    recipe = json.dumps({"suite": codename, "packages": BASE_PACKAGES, "v": 1})
    tag = f"{BASE_REPO}:{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"
    STATE.mkdir(exist_ok=True)
    with open(STATE / "image-base.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once build it once
        try:
            dc.images.get(tag)
            return tag
        except docker.errors.ImageNotFound:
            pass
        if shutil.which("debootstrap") is None:
            _run(["apt-get", "update", "-qq"], 600)
            _run(["apt-get", "install", "-y", "-qq", "debootstrap"], 600)
        with tempfile.TemporaryDirectory(prefix="deployer-base-") as tmp:
            root = Path(tmp) / "root"
            _run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(BASE_PACKAGES)}",
                    codename,
                    str(root),
                    apt_mirror(codename),
                ],
                600,
            )
            for junk in ("usr/share/doc", "usr/share/man", "usr/share/info", "var/cache/apt"):
                shutil.rmtree(root / junk, ignore_errors=True)
            shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
            tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
            try:
                _run(["docker", "import", "-", tag], 300, stdin=tar.stdout)
            finally:
                assert tar.stdout is not None
                tar.stdout.close()
                tar.wait(60)
        return tag


def build_wheels(dest: Path) -> None:
    """The deployer and its dependencies as wheels, built on the host."""
    wheels = dest / "dist" / "wheels"
    wheels.mkdir(parents=True)
    cache = STATE / "wheels"
    cache.mkdir(parents=True, exist_ok=True)
    _run(
        [
            str(ROOT / ".venv" / "bin" / "python"),
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--wheel-dir",
            str(cache),
            "--find-links",
            str(cache),
            str(ROOT),
        ],
        600,
    )
    # Only the newest wheel of the deployer itself (the cache keeps older builds).
    for whl in cache.glob("*.whl"):
        if not whl.name.startswith("gitlab_docker_deployer-"):
            shutil.copy2(whl, wheels)
    own = max(cache.glob("gitlab_docker_deployer-*.whl"), key=lambda p: p.stat().st_mtime)
    shutil.copy2(own, wheels)


@pytest.fixture(scope="session")
def image(engine: docker.DockerClient) -> Iterator[str]:
    base = base_image(engine)
    with tempfile.TemporaryDirectory(prefix="deployer-image-") as tmp:
        context = Path(tmp)
        build_wheels(context)
        shutil.copy2(ROOT / "Dockerfile", context / "Dockerfile")
        tag = f"deployer-test:t{os.urandom(5).hex()}"
        _run(
            ["docker", "build", "--quiet", "--build-arg", f"BASE_IMAGE={base}", "-t", tag, "."],
            600,
            cwd=context,
        )
    try:
        yield tag
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            engine.images.remove(tag, force=True)


def docker_run(
    image: str, *args: str, extra: tuple[str, ...] = (), timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "run", "--rm", *extra, image, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_image_runs_as_non_root_with_deployer_entrypoint(
    image: str, engine: docker.DockerClient
) -> None:
    config = engine.images.get(image).attrs["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["/opt/deployer/bin/deployer"]

    proc = docker_run(image, "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("deployer ")

    uid = docker_run(
        image,
        "-c",
        "import os; print(os.getuid(), os.getgid())",
        extra=("--entrypoint", "/opt/deployer/bin/python"),
    )
    assert uid.stdout.split() == ["10001", "10001"], uid.stderr


MANIFEST = """\
app: {app}
environments:
  production:
    url: http://{app}.localhost/
services:
  web:
    image: {image}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/version"]
      interval: 1s
      timeout: 10s  # a check under load can take seconds: not what these tests are about
      retries: 3
rollout:
  health_timeout: 30s
  healthy_after: 1s
  drain: 0s
"""


def test_image_deploys_to_the_host_engine_over_its_socket(
    image: str, app: str, testenv: TestEnv, engine: docker.DockerClient, tmp_path: Path
) -> None:
    work = tmp_path / "app"
    work.mkdir()
    (work / "deploy.yml").write_text(MANIFEST.format(app=app, image=testenv.image_v1))
    work.chmod(0o777)  # the image's user (10001) writes the reports here
    sock = testenv.engine_host.removeprefix("unix://")
    extra = (
        "--group-add",
        str(os.stat(sock).st_gid),
        "-v",
        f"{sock}:/var/run/docker.sock",
        "-v",
        f"{work}:/app",
        "-w",
        "/app",
        "-e",
        "DOCKER_HOST=unix:///var/run/docker.sock",
    )
    proc = docker_run(image, "validate", extra=extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "valid for production" in proc.stdout

    proc = docker_run(image, "plan", extra=extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "create" in proc.stdout

    proc = docker_run(image, "deploy", "--report-dir", "reports", extra=extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    running = engine.containers.list(filters={"label": [f"{L.APP}={app}", f"{L.SERVICE}=web"]})
    assert len(running) == 1
    assert running[0].labels[L.DIGEST] == repo_digest(engine, testenv.image_v1)
    report = json.loads((work / "reports" / "deploy-report.json").read_text())
    assert report["outcome"] == "deployed"
    assert (work / "reports" / "deploy-report.json").stat().st_uid == 10001
