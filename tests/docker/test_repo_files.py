"""Files from the repository, configs and secrets, deployed over SSH with the real CLI.

A compose app whose services mount a relative file, a relative directory, a config and
two secrets (one from a GitLab File-type variable, one from a variable) is deployed to
the ssh host of the test environment. Checked on the engine behind it: the files arrive
read-only with their content, mode and owner; a change to one file replaces only the
service that mounts it and the plan names the file; a rollback mounts the previous copy;
retention removes the copies no kept release uses; the secret values appear in no
output, report, label or container environment.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.docker import files as repo_files
from tests.cli import DEPLOYER, Job, current, job_environ, sh
from tests.testenv import TestEnv

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DB_PASSWORD = "db-secret-8c1f27d4e9"
API_KEY = "api-secret-5b0e93a6f2"

COMPOSE = """\
services:
  web:
    image: {registry}/testapp/web:v1
    build: .
    volumes:
      - ./conf/app.conf:/etc/app/app.conf:ro
      - type: bind
        source: ./static
        target: /srv/static
        read_only: true
    configs:
      - source: extra
        target: /etc/app/extra.yml
    secrets:
      - db_password
      - source: api_key
        target: api
        uid: "1000"
        gid: "1001"
        mode: 0400
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/version"]
      interval: 1s
      timeout: 5s
      retries: 30
  worker:
    image: {registry}/testapp/web:v1
    volumes:
      - ./conf/worker.conf:/etc/worker.conf
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/version"]
      interval: 1s
      timeout: 5s
      retries: 30
configs:
  extra:
    content: "greeting: hello"
secrets:
  db_password:
    file: ${{DB_PASSWORD_FILE}}
  api_key:
    environment: API_KEY
"""

MANIFEST = """\
app: {app}
compose: docker-compose.yml
environments:
  prod: {{}}
rollout:
  health_timeout: 120s
  healthy_after: 1s
  drain: 0s
  keep_releases: 2
"""


def _environ(testenv: TestEnv, tmp: Path) -> dict[str, str]:
    secret_file = tmp / "gitlab-file-variable"  # GitLab writes File-type variables so
    secret_file.write_text(DB_PASSWORD)
    return job_environ(
        testenv,
        DB_PASSWORD_FILE=str(secret_file),
        API_KEY=API_KEY,
        CI_COMMIT_SHA="7b5c3cc8be40ee161ae89a06bba6229da1032a0c",
    )


def _file_volumes(engine: docker.DockerClient, app: str) -> dict[str, str]:
    vols = engine.volumes.list(filters={"label": [f"{L.APP}={app}", f"{L.ROLE}=files"]})
    return {
        v.attrs["Labels"][repo_files.DIGEST]: v.attrs["Labels"][L.PREFIX + "files-name"]
        for v in vols
    }


def test_files_configs_and_secrets_over_ssh(
    tmp_path: Path, app: str, testenv: TestEnv, engine: docker.DockerClient
) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "conf").mkdir(parents=True)
    (checkout / "static").mkdir()
    (checkout / "conf" / "app.conf").write_text("version=1\n")
    (checkout / "conf" / "worker.conf").write_text("worker=1\n")
    (checkout / "static" / "index.html").write_text("<h1>static</h1>\n")
    (checkout / "static" / "sub").mkdir()
    (checkout / "static" / "sub" / "a.txt").write_text("a\n")
    (checkout / "docker-compose.yml").write_text(COMPOSE.format(registry=testenv.registry))
    (checkout / "deploy.yml").write_text(MANIFEST.format(app=app))
    deployer = Job(checkout, _environ(testenv, tmp_path), stderr=False)
    written = deployer.written

    deployer("validate")
    plan = deployer("plan")
    assert "build" in plan  # the plan says `build:` is not used at deploy time
    deployer("deploy", "--report-dir", str(tmp_path / "r1"))

    web = current(engine, app, "web")
    assert sh(web, "cat /etc/app/app.conf") == "version=1\n"
    assert sh(web, "cat /srv/static/index.html /srv/static/sub/a.txt") == "<h1>static</h1>\na\n"
    assert sh(web, "cat /etc/app/extra.yml") == "greeting: hello"
    assert sh(web, "cat /run/secrets/db_password") == DB_PASSWORD
    assert sh(web, "cat /run/secrets/api") == API_KEY
    listing = sh(web, "ls -ln /run/secrets/api /run/secrets/db_password /etc/app/extra.yml")
    lines = {line.split()[-1]: line.split() for line in listing.splitlines()}
    assert lines["/run/secrets/api"][0] == "-r--------"
    assert lines["/run/secrets/api"][2:4] == ["1000", "1001"]
    assert lines["/run/secrets/db_password"][0] == "-r--r--r--"
    assert lines["/etc/app/extra.yml"][2:4] == ["0", "0"]
    # read-only where the compose file mounts them
    code, _ = web.exec_run(["sh", "-c", "echo x > /etc/app/app.conf"])
    assert code != 0
    code, _ = web.exec_run(["sh", "-c", "echo x > /run/secrets/api"])
    assert code != 0
    worker = current(engine, app, "worker")
    assert sh(worker, "cat /etc/worker.conf") == "worker=1\n"
    v1 = set(_file_volumes(engine, app))

    # A changed file replaces exactly the service that mounts it; the plan names it.
    (checkout / "conf" / "app.conf").write_text("version=2\n")
    plan = deployer("plan")
    assert "file ./conf/app.conf" in plan
    assert "worker" in plan
    deployer("deploy", "--report-dir", str(tmp_path / "r2"))
    assert current(engine, app, "worker").id == worker.id
    web2 = current(engine, app, "web")
    assert web2.id != web.id
    assert sh(web2, "cat /etc/app/app.conf") == "version=2\n"
    v2 = set(_file_volumes(engine, app)) - v1
    assert len(v2) == 1

    # Rollback mounts the previous copy (the checkout has only the new one).
    deployer("rollback", "--report-dir", str(tmp_path / "r3"))
    web3 = current(engine, app, "web")
    assert sh(web3, "cat /etc/app/app.conf") == "version=1\n"
    assert current(engine, app, "worker").id == worker.id

    # Retention (keep 2): a third version; the second is used by no kept release.
    (checkout / "conf" / "app.conf").write_text("version=3\n")
    deployer("deploy", "--report-dir", str(tmp_path / "r4"))
    assert sh(current(engine, app, "web"), "cat /etc/app/app.conf") == "version=3\n"
    left = _file_volumes(engine, app)
    assert not (v2 & set(left)), left
    assert v1 <= set(left)  # the rollback release still mounts the first copies

    # No secret value in any output, report, label or container environment.
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file() and "r" in path.parent.name and path.parent.parent == tmp_path:
            written.append((str(path), path.read_bytes()))
    for c in engine.containers.list(all=True, filters={"label": f"{L.APP}={app}"}):
        written.append((f"labels of {c.name}", json.dumps(c.labels).encode()))
        written.append((f"env of {c.name}", json.dumps(c.attrs["Config"]["Env"]).encode()))
    for v in engine.volumes.list(filters={"label": f"{L.APP}={app}"}):
        written.append((f"labels of volume {v.name}", json.dumps(v.attrs["Labels"]).encode()))
    assert any("report" in name or "json" in name for name, _ in written)
    for name, data in written:
        for secret in (DB_PASSWORD, API_KEY):
            at = data.find(secret.encode())
            assert at < 0, f"{secret!r} in {name}: ...{data[max(0, at - 200) : at + 60]!r}"

    # `down` removes the copies with the containers (configuration, not data).
    deployer("down")
    assert _file_volumes(engine, app) == {}


def test_a_writable_relative_directory_is_shipped_read_only_with_a_warning(
    tmp_path: Path,
) -> None:
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads" / "seed.txt").write_text("x")
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  web:\n    image: registry.example.com/web:1\n"
        "    volumes:\n      - ./uploads:/srv/uploads\n"
    )
    (tmp_path / "deploy.yml").write_text(
        "app: shop\ncompose: docker-compose.yml\nenvironments: {prod: {}}\n"
    )
    proc = subprocess.run(
        [str(DEPLOYER), "validate"], cwd=tmp_path, capture_output=True, timeout=60, check=False
    )
    out = proc.stdout.decode() + proc.stderr.decode()
    assert proc.returncode == 0, out
    assert "docker-compose.yml:5:" in out and "mounted read-only on the hosts" in out
    assert "files: {data: [./uploads]}" in out
    assert "Traceback" not in out
    (tmp_path / "deploy.yml").write_text(
        "app: shop\ncompose: docker-compose.yml\nfiles: {data: [./uploads]}\n"
        "environments: {prod: {}}\n"
    )
    proc = subprocess.run(
        [str(DEPLOYER), "validate"], cwd=tmp_path, capture_output=True, timeout=60, check=False
    )
    out = proc.stdout.decode() + proc.stderr.decode()
    assert proc.returncode == 0, out
    assert "read-only" not in out


def test_shipping_over_tls_is_idempotent_and_rewrites_a_partial_copy(
    app: str, testenv: TestEnv, engine2: docker.DockerClient
) -> None:
    from deployer.docker.host import connect_host
    from deployer.manifest import pack
    from deployer.manifest.model import Environment, FileMount, Manifest, Service

    engine2.images.pull(testenv.image_v1)  # the helper container needs an image there
    content = "listen 8080\n"
    fm = FileMount(
        kind="config",
        name="extra",
        target="/etc/app/extra.conf",
        digest=pack.digest(pack.pack_bytes(content.encode(), 0o444)),
        mode=0o444,
        content=content,
    )
    manifest = Manifest(
        path="deploy.yml",
        app=app,
        environment=Environment("prod", hosts=(testenv.tls_host,)),
        services=(Service(name="web", image=testenv.image_v1, files=(fm,)),),
    )
    host = connect_host(testenv.tls_host, testenv.tls_environ(as_text=True))
    try:
        host.ensure_infrastructure(manifest)
        assert host.shipped == ["config extra"]
        host.ensure_infrastructure(manifest)
        assert host.shipped == []  # already there, complete: nothing written
        # A copy cut off before its last entry (no `done`) is written again.
        name = repo_files.volume_name(app, "prod", fm.digest)
        cut = engine2.containers.create(
            testenv.image_v1,
            ["busybox", "rm", "/v/done"],
            volumes={name: {"bind": "/v", "mode": "rw"}},
        )
        try:
            cut.start()
            assert cut.wait(timeout=60)["StatusCode"] == 0
        finally:
            cut.remove(force=True)
        host.ensure_infrastructure(manifest)
        assert host.shipped == ["config extra"]
        (mount,) = repo_files.mounts(host.api, manifest, (fm,))
        assert mount["ReadOnly"] is True and mount["Target"] == "/etc/app/extra.conf"
    finally:
        host.close()
