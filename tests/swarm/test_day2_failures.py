"""The day-2 commands on a swarm where things go wrong: `run` after the tag moved on (the
deployed digest runs), `logs --follow` across a restart
that replaces every task, a restart whose new tasks never become healthy (rolled back,
exit 1), an OOM kill in `events`, and `unlock` refusing the lock of a job GitLab (faked
at the HTTP layer) reports as running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest
import responses
from docker.types import Resources, RestartPolicy

from deployer.swarm.target import SwarmTarget
from tests.gitlab.helpers import ENGINES, HOLDER, HOLDER_JOB, JOB_TOKEN, SERVER, fixture
from tests.ops.live_events import HOG, events_during
from tests.swarm.helpers import STACK, cli
from tests.testenv import TestEnv, push_as

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
    stop_grace_period: 1s
    command:
      - sh
      - -c
      - >-
        [ -e /data/broken ] || touch /tmp/ok; i=0; while [ $$i -lt 3 ]; do
        echo "api $$HOSTNAME line $$i"; i=$$((i+1)); sleep 0.1; done; exec sleep 86400
    volumes: ["data:/data"]
    deploy:
      replicas: 2
      update_config: {{order: start-first}}  # the old tasks serve until the new are healthy
    healthcheck:  # a task started while /data/broken exists never becomes healthy
      test: ["CMD-SHELL", "test -e /tmp/ok"]
      interval: 500ms
      retries: 3
rollout:
  health_timeout: 60s
  healthy_after: 1s
"""


def tasks(swarm: docker.DockerClient, app: str, service: str = "api") -> set[str]:
    """The short ids (the containers' hostnames) of the service's running task containers."""
    found = swarm.api.containers(
        filters={"label": f"com.docker.swarm.service.name={app}_{service}"}
    )
    return {c["Id"][:12] for c in found}


def wait_until(condition: object, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.5)


@responses.activate
def test_swarm_follow_restart_rollback_oom_and_running_lock(
    swarm: docker.DockerClient, swarm_app: str, testenv: TestEnv, tmp_path: Path
) -> None:
    responses.add_passthru(ENGINES)
    env = {"DOCKER_HOST": testenv.engine_host}
    path = tmp_path / "deploy.yml"
    image = f"{testenv.registry}/testapp/base:{swarm_app}"  # a tag of this test's own
    push_as(swarm, testenv.image_base, image)
    path.write_text(MANIFEST.format(app=swarm_app, image=image))
    f = ["-f", str(path)]
    code, out = cli("deploy", *f, "--report-dir", str(tmp_path), env=env)
    assert code == 0, out
    old = tasks(swarm, swarm_app)
    assert len(old) == 2

    # `run` starts the deployed release's digest, not what the tag points at since.
    push_as(swarm, testenv.image_v1, image)  # web:v1 has /web.sh, the base image has not
    script = "test -e /web.sh; echo web=$?; exit 4"
    code, out = cli("run", *f, "--service", "api", "--", "sh", "-c", script, env=env)
    assert code == 4 and "web=1" in out, out

    # --follow goes on across a restart that replaces every task: the new tasks' lines
    # come out, each once; SIGTERM ends it with exit 0.
    log = tmp_path / "follow.log"
    child_env = {k: v for k, v in os.environ.items() if k not in ("CI", "GITLAB_CI")}
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deployer", "logs", *f, "--follow", "--since", "1s"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**child_env, **env},
        )
        try:
            code, out = cli("restart", *f, "api", "--report-dir", str(tmp_path), env=env)
            assert code == 0, out
            # start-first: the old tasks stop just after the new ones run
            wait_until(lambda: len(tasks(swarm, swarm_app) - old) == 2, "two new tasks running")
            wait_until(lambda: not tasks(swarm, swarm_app) & old, "the old tasks gone")
            new = tasks(swarm, swarm_app)
            wait_until(
                lambda: all(f"api {h} line 2" in log.read_text() for h in new),
                "the new tasks' lines in the followed log",
            )
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    text = log.read_text()
    assert code == 0, text
    for h in new:
        for i in range(3):
            assert text.count(f"api {h} line {i}") == 1, text

    # A restart whose new tasks never become healthy: Swarm rolls back, exit 1, the
    # tasks that served still serve.
    code, out = cli("exec", *f, "api", "--", "sh", "-c", "touch /data/broken", env=env)
    assert code == 0, out
    code, out = cli("restart", *f, "api", "--report-dir", str(tmp_path), env=env)
    assert code == 1, out
    wait_until(lambda: tasks(swarm, swarm_app) == new, "the old tasks serving again")

    # A task container killed for its memory: `events` names it (read as it happens:
    # afterwards it may be out of the engine's last 256 events, see ``events_during``).
    def oom_kill() -> None:
        hog = swarm.services.create(
            testenv.image_base,
            ["sh", "-c", HOG],
            name=f"{swarm_app}_hog",
            labels={STACK: swarm_app},
            container_labels={STACK: swarm_app},
            resources=Resources(mem_limit=16 * 1024 * 1024),
            restart_policy=RestartPolicy(condition="none"),
        )
        wait_until(
            lambda: any(t["Status"]["State"] in ("failed", "complete") for t in hog.tasks()),
            "the hog task's end",
        )

    code, out = events_during(
        lambda since, until: cli("events", *f, "--since", since, "--until", until, env=env),
        oom_kill,
        30.0,
    )
    assert code == 0, out
    rows = [line.split() for line in out.splitlines()[2:]]
    # Named as the app names it (the Swarm task is <app>_hog.1.<task id>).
    assert [r for r in rows if r[3:5] == ["hog.1", "oom"]], out
    died = [r for r in rows if r[3:5] == ["hog.1", "die"]]
    assert died and "137)" in " ".join(died[0]), out

    # The lock of a job GitLab reports as running: unlock refuses, --force breaks it.
    manifest_env = {**env, "CI_SERVER_URL": SERVER, "CI_JOB_TOKEN": JOB_TOKEN}
    from deployer.manifest import load_manifest

    target = SwarmTarget.connect(load_manifest(str(path), None, env), env)
    try:
        target.acquire_lock(HOLDER, 1800)
    finally:
        target.close()
    job = responses.get(HOLDER_JOB, json=fixture("job_running.json"))
    code, out = cli("unlock", *f, env=manifest_env)
    assert code == 4, out
    assert job.call_count == 1
    code, out = cli("unlock", *f, "--force", env=env)
    assert code == 0 and HOLDER in out, out
    code, out = cli("unlock", *f, env=env)
    assert code == 0 and "no deploy lock is held" in out, out
