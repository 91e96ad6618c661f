"""The day-2 commands on an ``engine: swarm`` environment (the single-node swarm):
logs, exec, stats, unlock (GitLab faked at the HTTP layer) and down."""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path

import docker
import pytest
import responses

from deployer import labels as L
from deployer.swarm.target import SwarmTarget
from tests.gitlab.helpers import ENGINES, HOLDER, HOLDER_JOB, JOB_TOKEN, SERVER, fixture
from tests.swarm.helpers import cli, remove_from_swarm
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

MANIFEST = """\
app: {app}
environments:
  production:
    engine: swarm
volumes:
  data: {{}}
services:
  api:
    image: {image}
    init: true
    stop_grace_period: 2s
    command:
      - sh
      - -c
      - >-
        i=0; while [ $$i -lt 5 ]; do echo "api line $$i token=$$API_TOKEN";
        i=$$((i+1)); sleep 0.2; done; exec sleep 86400
    environment:
      API_TOKEN: swarm-s3cr3t-{app}
    volumes: ["data:/data"]
    deploy:
      replicas: 2
rollout:
  health_timeout: 30s
  healthy_after: 1s
"""
LINE = re.compile(r"^(?P<host>\S+) api\.(?P<n>\d) \| (?P<stamp>\S+) api line \d token=(?P<t>\S+)$")


@responses.activate
def test_day2_commands_on_a_swarm(
    swarm: docker.DockerClient, swarm_app: str, testenv: TestEnv, tmp_path: Path
) -> None:
    responses.add_passthru(ENGINES)
    env = {"DOCKER_HOST": testenv.engine_host}
    path = tmp_path / "deploy.yml"
    path.write_text(MANIFEST.format(app=swarm_app, image=testenv.image_base))
    f = ["-f", str(path)]
    code, out = cli("deploy", *f, "--report-dir", str(tmp_path), env=env)
    assert code == 0, out

    deadline = time.monotonic() + 60
    while True:
        code, out = cli("logs", *f, env=env)
        assert code == 0, out
        if len(out.splitlines()) >= 10 or time.monotonic() > deadline:
            break
        time.sleep(1)
    lines = [LINE.match(line) for line in out.splitlines()]
    assert len(lines) == 10 and all(lines), out
    assert {m["n"] for m in lines if m} == {"1", "2"}
    assert {m["t"] for m in lines if m} == {"[MASKED]"}
    stamps = [m["stamp"] for m in lines if m]
    assert stamps == sorted(stamps)

    code, out = cli("exec", *f, "--replica", "2", "api", "--", "sh", "-c", "exit 3", env=env)
    assert code == 3, out

    code, out = cli("stats", *f, "--format", "json", env=env)
    assert code == 0, out
    assert sorted(r["replica"] for r in json.loads(out)) == [1, 2]

    # restart: new tasks of the same spec through Swarm's rollout, no release recorded.
    def task_containers() -> set[str]:
        found = swarm.api.containers(
            filters={"label": f"com.docker.swarm.service.name={swarm_app}_api"}
        )
        return {c["Id"] for c in found}

    def recorded() -> int:
        return len(
            swarm.api.configs(filters={"label": [f"{L.APP}={swarm_app}", f"{L.ROLE}=release"]})
        )

    before, releases = task_containers(), recorded()
    code, out = cli("restart", *f, "api", "--report-dir", str(tmp_path), env=env)
    assert code == 0, out
    assert "no release recorded" in out
    after = task_containers()
    assert len(after) == 2 and not after & before, (before, after)
    assert recorded() == releases
    # it still runs the release it restarted (the one `rollback --to` takes)
    (release,) = [
        c["Spec"]["Labels"][L.RELEASE]
        for c in swarm.api.configs(filters={"label": [f"{L.APP}={swarm_app}", f"{L.ROLE}=release"]})
    ]
    spec = swarm.api.inspect_service(f"{swarm_app}_api")["Spec"]
    assert spec["Labels"][L.RELEASE] == release, (spec["Labels"], release)

    # A one-off container of the deployed release, its exit code the command's.
    code, out = cli("run", *f, "--service", "api", "--", "sh", "-c", "echo ran; exit 4", env=env)
    assert code == 4 and "ran" in out, out

    code, out = cli("events", *f, "--since", "10m", env=env)
    assert code == 0, out
    # the manager's task history, whatever the engine's last 256 events hold: the tasks
    # the restart replaced, shut down, and those running now
    rows = out.splitlines()
    for n in ("1", "2"):
        assert any(f" api.{n} " in r and " task shutdown " in r for r in rows), out
        assert any(f" api.{n} " in r and " task running " in r for r in rows), out

    # A lock left by a job GitLab reports as failed: unlock breaks it.
    with _target(path, env) as target:
        target.acquire_lock(HOLDER, 1800)
    job = responses.get(HOLDER_JOB, json=fixture("job_failed.json"))
    ci = {**env, "CI_SERVER_URL": SERVER, "CI_JOB_TOKEN": JOB_TOKEN}
    code, out = cli("down", *f, env=env)
    assert code == 4, out  # the stale lock blocks down until it is broken
    code, out = cli("unlock", *f, env=ci)
    assert code == 0, out
    assert job.call_count == 1 and "is failed" in out

    code, out = cli("down", *f, env=env)
    assert code == 0, out
    api = swarm.api
    assert not [s for s in api.services() if s["Spec"]["Name"].startswith(swarm_app + "_")]
    assert not [n for n in api.networks() if n["Name"].startswith(swarm_app + "_")]
    configs = api.configs(filters={"label": f"{L.APP}={swarm_app}"})
    assert configs == [], configs
    vols = api.volumes(filters={"label": f"com.docker.stack.namespace={swarm_app}"})["Volumes"]
    assert [v["Name"] for v in vols or []] == [f"{swarm_app}_data"]

    code, out = cli("down", *f, "--volumes", "--yes", env=env)
    assert code == 0, out
    vols = api.volumes(filters={"label": f"com.docker.stack.namespace={swarm_app}"})["Volumes"]
    assert not vols


def _target(path: Path, env: dict[str, str]) -> SwarmTarget:
    from deployer.manifest import load_manifest

    return SwarmTarget.connect(load_manifest(str(path), None, env), env)


def test_logs_of_a_swarm_over_ssh(
    swarm: docker.DockerClient, testenv: TestEnv, tmp_path: Path
) -> None:
    """`logs` through the manager's sshd: every replica's lines over one SSH connection
    per run, in time order and masked; `--tail` bounds each replica's read."""
    app = "qual" + secrets.token_hex(4)
    path = tmp_path / "deploy.yml"
    path.write_text(MANIFEST.format(app=app, image=testenv.image_base))
    f = ["-f", str(path)]
    try:
        code, out = cli(
            "deploy", *f, "--report-dir", str(tmp_path), env={"DOCKER_HOST": testenv.engine_host}
        )
        assert code == 0, out
        with testenv.ssh_identity(f"logs-{app}") as ident:
            env = {
                "DOCKER_HOST": testenv.ssh_host,
                "SSH_PRIVATE_KEY": ident.private_key,
                "SSH_KNOWN_HOSTS": testenv.ssh_known_hosts.read_text(),
            }
            before = testenv.sshd_accepted(ident.fingerprint)
            runs, deadline = 0, time.monotonic() + 60
            while True:
                code, out = cli("logs", *f, env=env)
                runs += 1
                assert code == 0, out
                if len(out.splitlines()) >= 10 or time.monotonic() > deadline:
                    break
                time.sleep(1)
            time.sleep(0.3)  # sshd writes its log line asynchronously
            assert testenv.sshd_accepted(ident.fingerprint) - before == runs
            code, tail = cli("logs", *f, "--tail", "2", env=env)
            assert code == 0, tail
    finally:
        remove_from_swarm(swarm, app)
    lines = [LINE.match(line) for line in out.splitlines()]
    assert len(lines) == 10 and all(lines), out
    assert {m["host"] for m in lines if m} == {testenv.ssh_host}
    assert sorted(m["n"] for m in lines if m) == ["1"] * 5 + ["2"] * 5
    assert {m["t"] for m in lines if m} == {"[MASKED]"}
    stamps = [m["stamp"] for m in lines if m]
    assert stamps == sorted(stamps)
    last = [LINE.match(line) for line in tail.splitlines()]
    assert len(last) == 4 and all(last), tail
    assert sorted(m["n"] for m in last if m) == ["1", "1", "2", "2"]
