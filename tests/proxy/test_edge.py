"""The edge proxy against the real engine: zero failed requests through a public port
during updates, a bad route rolled back, two apps behind one proxy, host names refused.

Each test runs its own proxy container (its own name and port) and removes it, with its
volumes, afterwards. The probe (bench/proxy_probe.py) sends a GET every 10 ms through the
proxy on one keep-alive connection: a request the proxy closes or refuses, or an answer
other than 200, counts as failed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors
import pytest

from bench.proxy_probe import ProxyProbe, get
from deployer import labels as L
from deployer.docker.host import connect_host
from deployer.errors import EXIT_INVALID, EXIT_OK, EXIT_ROLLED_BACK
from deployer.proxy import routes as R
from tests.conftest import Cleanup
from tests.proxy.conftest import Edge, free_port, make_edge, remove_edge
from tests.testenv import TestEnv, unique_app
from tests.testenv import cleanup as remove_app

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

MANIFEST = """\
app: {app}
environments:
  test:
    hosts: ["{host}"]
    proxy: {edge}
services:
  web:
    image: ${{WEB_IMAGE}}
    init: true
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/version"]
      interval: 500ms
      timeout: 5s
      retries: 3
    proxy: {{host: {public}, port: "${{WEB_PORT:-8080}}", healthcheck: /version}}
    deploy: {{replicas: {replicas}}}
rollout:
  health_timeout: 30s
  healthy_after: 1s
"""


def write_manifest(
    path: Path, app: str, testenv: TestEnv, edge: Edge, public: str, replicas: int = 2
) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    f = path / "deploy.yml"
    f.write_text(
        MANIFEST.format(
            app=app,
            host=testenv.engine_host,
            edge=edge.yaml(),
            public=public,
            replicas=replicas,
        )
    )
    return f


def deploy(manifest: Path, image: str, **env: str) -> tuple[int, str]:
    """`deployer deploy` as its own process (deploys of two apps run at once)."""
    full = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GITLAB_CI", "CI", "CI_ENVIRONMENT_NAME", "DOCKER_HOST")
    }
    full.update({"WEB_IMAGE": image, **env})
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deployer",
            "deploy",
            "-f",
            str(manifest),
            "--env",
            "test",
            "--report-dir",
            str(manifest.parent / "reports"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=full,
        cwd=ROOT,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def plan_routes(manifest: Path, image: str) -> list[dict[str, str]]:
    """`deployer plan --format json`: its route changes (the edge proxy's own excluded)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deployer",
            "plan",
            "-f",
            str(manifest),
            "--env",
            "test",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
        env={**{k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}, "WEB_IMAGE": image},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    routes: list[dict[str, str]] = json.loads(proc.stdout)["routes"]
    return [r for r in routes if not r["route"].startswith("edge proxy ")]


def wait_body(edge: Edge, host: str, want: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    got: tuple[int, str] = (0, "")
    while time.monotonic() < deadline:
        got = get(edge.address, host)
        if got == (200, want):
            return
        time.sleep(0.2)
    raise AssertionError(f"{host} through {edge.address}: wanted {want!r}, got {got!r}")


def route_of(engine: docker.DockerClient, edge: Edge, rid: str) -> object:
    code, out = engine.containers.get(edge.name).exec_run(
        ["wget", "-q", "-O", "-", f"http://127.0.0.1:2019/id/{rid}"]
    )
    assert code == 0, out
    return json.loads(out)


def until_it_waits_for_the_proxy_lock(
    testenv: TestEnv,
    edge: Edge,
    manifest: Path,
    command: list[str],
    meanwhile: Callable[[], object],
) -> str:
    """`deployer <command>` as its own process while another deploy holds the proxy lock:
    read until it says it waits for the lock, naming the holder and `deployer unlock`
    (``meanwhile`` runs then, the lock still held), then the lock is released. It exits 0;
    everything it printed."""
    host = connect_host(testenv.engine_host, {})
    try:
        lease = host.acquire_lock(f"edge/{edge.name}", "another deploy", ttl=60)
        drop = ("GITLAB_CI", "CI", "CI_ENVIRONMENT_NAME", "DOCKER_HOST")
        env = {k: v for k, v in os.environ.items() if k not in drop}
        proc = subprocess.Popen(
            [sys.executable, "-m", "deployer", *command, "-f", str(manifest), "--env", "test"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**env, "WEB_IMAGE": testenv.image_v1, "PYTHONUNBUFFERED": "1"},
            cwd=ROOT,
        )
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # until it says it waits (it ends only once released)
            seen.append(line)
            if "edge proxy: waiting for its lock" in line:
                break
        text = "".join(seen)
        assert (
            f"waiting for its lock (another deploy of edge/{edge.name} holds the lock: "
            "another deploy"
        ) in text, text
        assert "`deployer unlock`" in text, text
        assert proc.poll() is None, text  # still waiting
        meanwhile()
        host.release_lock(lease)
        rest, _ = proc.communicate(timeout=120)
        out = text + rest
        assert proc.returncode == EXIT_OK, out
        return out
    finally:
        host.close()


def test_updates_through_the_proxy_fail_no_request(
    app: str, edge: Edge, testenv: TestEnv, tmp_path: Path, engine: docker.DockerClient
) -> None:
    public = f"{app}.example.test"
    manifest = write_manifest(tmp_path, app, testenv, edge, public)
    code, out = deploy(manifest, testenv.image_v1)
    assert code == EXIT_OK, out
    url = f"http://{public}:{edge.address.rpartition(':')[2]}"
    assert url in out  # the environment URL
    # the reports carry it: the JSON report and the dotenv GitLab reads the environment URL from
    reports = manifest.parent / "reports"
    assert json.loads((reports / "deploy-report.json").read_text())["url"] == url
    assert f"DEPLOY_URL={url}" in (reports / "deploy.env").read_text().splitlines()
    wait_body(edge, public, "v1")
    # plan shows the route as it is, and a changed route as a change
    assert [(r["change"], r["route"]) for r in plan_routes(manifest, testenv.image_v1)] == [
        ("keep", f"{url} → web:8080")
    ]
    moved = manifest.parent / "moved" / "deploy.yml"
    moved.parent.mkdir()
    moved.write_text(manifest.read_text().replace("/version}", "/version, path_prefix: /shop}"))
    assert [r["change"] for r in plan_routes(moved, testenv.image_v1)] == ["change"]
    images = [testenv.image_v2, testenv.image_v1] * 3
    for n, image in enumerate(images[:5]):
        probe = ProxyProbe(edge.address, public).start()
        try:
            code, out = deploy(manifest, image)
        finally:
            probe.stop()
        want = "v2" if image == testenv.image_v2 else "v1"
        assert code == EXIT_OK, out
        assert "drained" in out, out
        assert probe.failed == 0, f"round {n + 1}: {probe.summary()}"
        assert probe.requests > 20, probe.summary()
        assert probe.bodies.get(want, 0) > 0, probe.bodies
        assert get(edge.address, public) == (200, want)


def test_a_route_to_a_port_nothing_listens_on_rolls_back(
    app: str, edge: Edge, testenv: TestEnv, tmp_path: Path
) -> None:
    public = f"{app}.example.test"
    manifest = write_manifest(tmp_path, app, testenv, edge, public, replicas=1)
    code, out = deploy(manifest, testenv.image_v1)
    assert code == EXIT_OK, out
    wait_body(edge, public, "v1")
    # the switch tries the route for the health timeout (at least 5 s) before it gives up:
    # 15 s, not 30 s, of a check that cannot pass (the new container itself is healthy in
    # about a second)
    text = manifest.read_text()
    assert "health_timeout: 30s" in text
    manifest.write_text(text.replace("health_timeout: 30s", "health_timeout: 15s"))
    probe = ProxyProbe(edge.address, public).start()
    try:
        code, out = deploy(manifest, testenv.image_v2, WEB_PORT="8081")
    finally:
        probe.stop()
    assert code == EXIT_ROLLED_BACK, out
    assert "does not answer GET /version" in out and "8081" in out, out
    assert probe.failed == 0, probe.summary()
    assert get(edge.address, public) == (200, "v1")


def test_two_apps_behind_one_proxy_deploy_at_once(
    app: str,
    testenv: TestEnv,
    tmp_path: Path,
    engine: docker.DockerClient,
    engine2: docker.DockerClient,
    cleanup: Cleanup,
    proxy_image: str,
) -> None:
    other = unique_app()
    cleanup.later(lambda: remove_app({"engine": engine, "engine2": engine2}, other))
    edge = make_edge(engine, cleanup, app, free_port(), proxy_image)
    apps = {app: f"{app}.example.test", other: f"{other}.example.test"}
    manifests = {a: write_manifest(tmp_path / a, a, testenv, edge, h) for a, h in apps.items()}
    for a, m in manifests.items():
        code, out = deploy(m, testenv.image_v1)
        assert code == EXIT_OK, out
        wait_body(edge, apps[a], "v1")
    rids = {a: R.route_id(a, "test", "web") for a in apps}
    before = {a: route_of(engine, edge, rid) for a, rid in rids.items()}
    probes = {a: ProxyProbe(edge.address, h).start() for a, h in apps.items()}
    try:
        procs = {
            a: subprocess.Popen(
                [sys.executable, "-m", "deployer", "deploy", "-f", str(m), "--env", "test"],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=ROOT,
                env={
                    **{k: v for k, v in os.environ.items() if k != "DOCKER_HOST"},
                    "WEB_IMAGE": testenv.image_v2,
                },
            )
            for a, m in manifests.items()
        }
        outs = {a: p.communicate(timeout=300) for a, p in procs.items()}
    finally:
        for p in probes.values():
            p.stop()
    for a, p in procs.items():
        assert p.returncode == EXIT_OK, outs[a][0]
    for a, probe in probes.items():
        assert probe.failed == 0, f"{a}: {probe.summary()}"
        assert probe.bodies.get("v2", 0) > 0, probe.bodies
        assert get(edge.address, apps[a]) == (200, "v2")
    # neither deploy touched the other's route object (only upstream files change)
    assert {a: route_of(engine, edge, rid) for a, rid in rids.items()} == before


def test_a_host_name_of_another_app_is_refused_naming_both(
    app: str,
    edge: Edge,
    testenv: TestEnv,
    tmp_path: Path,
    engine: docker.DockerClient,
    engine2: docker.DockerClient,
    cleanup: Cleanup,
) -> None:
    public = f"{app}.example.test"
    first = write_manifest(tmp_path / "a", app, testenv, edge, public)
    code, out = deploy(first, testenv.image_v1)
    assert code == EXIT_OK, out
    status = subprocess.run(
        [
            sys.executable,
            "-m",
            "deployer",
            "status",
            "-f",
            str(first),
            "--env",
            "test",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
        env={**os.environ, "WEB_IMAGE": testenv.image_v1},
    )
    assert status.returncode == 0, status.stdout + status.stderr
    (host_status,) = json.loads(status.stdout)["hosts"]
    (route,) = host_status["routes"]
    assert route["url"] == f"http://{public}:{edge.address.rpartition(':')[2]}"
    assert [u["health"] for u in route["upstreams"]] == ["healthy", "healthy"], route
    assert {u["container"] for u in route["upstreams"]} == {
        f"{app}-test-web-1",
        f"{app}-test-web-2",
    }
    other = unique_app()

    def remove_other() -> None:  # the proxy first: it is attached to the other app's network
        remove_edge(engine, edge.name)
        remove_app({"engine": engine, "engine2": engine2}, other)

    cleanup.later(remove_other)
    second = write_manifest(tmp_path / "b", other, testenv, edge, public)
    plan = subprocess.run(
        [
            sys.executable,
            "-m",
            "deployer",
            "plan",
            "-f",
            str(second),
            "--env",
            "test",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
        env={**os.environ, "WEB_IMAGE": testenv.image_v2},
    )
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert [r["change"] for r in json.loads(plan.stdout)["routes"]] == ["refused", "add"]
    code, out = deploy(
        write_manifest(tmp_path / "b", other, testenv, edge, public), testenv.image_v2
    )
    assert code == EXIT_INVALID, out
    assert f"{app}/test" in out and f"{other}/test" in out and public in out, out
    assert not engine.containers.list(all=True, filters={"label": f"io.deployer.app={other}"})
    assert get(edge.address, public) == (200, "v1")
    # `down` takes the first app's route and network away; the host name is free again
    down = subprocess.run(
        [sys.executable, "-m", "deployer", "down", "-f", str(first), "--env", "test"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
        env={**os.environ, "WEB_IMAGE": testenv.image_v1},
    )
    assert down.returncode == 0, down.stdout + down.stderr
    assert "route of web" in down.stdout and f"network {app}-test" in down.stdout
    code, out = deploy(second, testenv.image_v2)
    assert code == EXIT_OK, out
    assert get(edge.address, public) == (200, "v2")


def test_a_proxy_that_does_not_run_is_named_with_its_lines_and_replaced_once_fixed(
    app: str, edge: Edge, testenv: TestEnv, tmp_path: Path, engine: docker.DockerClient
) -> None:
    """The proxy's image crashes at start: the deploy fails at once (not after the admin
    API's 60 s) saying so, with the proxy's own lines, and touches no app container. The
    image is fixed under the same name: the next deploy replaces the proxy and succeeds."""
    broken = f"{app}-proxy:broken"
    dockerfile = (
        f"FROM {edge.image}\n"
        "RUN printf '#!/bin/sh\\necho \"caddy: broken on purpose\" >&2\\nexit 1\\n' "
        "> /usr/bin/caddy\n"
    )
    engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=broken, rm=True)
    try:
        bad = Edge(edge.name, edge.address, broken)
        public = f"{app}.example.test"
        manifest = write_manifest(tmp_path, app, testenv, bad, public, replicas=1)
        t0 = time.monotonic()
        code, out = deploy(manifest, testenv.image_v1)
        assert code == EXIT_ROLLED_BACK, out
        assert time.monotonic() - t0 < 45, out
        assert f"the edge proxy {edge.name} is" in out and "not running" in out, out
        assert "caddy: broken on purpose" in out, out
        assert not engine.containers.list(all=True, filters={"label": f"{L.APP}={app}"})

        engine.images.get(edge.image).tag(broken)  # the same name, a working image now
        code, out = deploy(manifest, testenv.image_v1)
        assert code == EXIT_OK, out
        assert "upgrading to" in out, out
        wait_body(bad, public, "v1")
        # a running proxy is never replaced behind the manifest's back: the name moves to
        # another (working) image, the next deploy leaves the proxy as it runs
        running = engine.containers.get(edge.name).id
        other = f"FROM {edge.image}\nLABEL rebuilt=yes\n"
        engine.images.build(fileobj=io.BytesIO(other.encode()), tag=broken, rm=True)
        code, out = deploy(manifest, testenv.image_v2)
        assert code == EXIT_OK, out
        assert "upgrading to" not in out, out
        assert engine.containers.get(edge.name).id == running
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            engine.images.remove(broken, force=True)


def test_a_wildcard_route_of_one_app_never_takes_another_apps_host_name(
    app: str,
    testenv: TestEnv,
    tmp_path: Path,
    engine: docker.DockerClient,
    engine2: docker.DockerClient,
    cleanup: Cleanup,
    proxy_image: str,
) -> None:
    """App W routes *.<base>, app S routes shop.<base> on the same proxy; the proxy takes
    the first route that matches, and W's route id sorts first: shop.<base> still reaches
    S, any other name W."""
    other = unique_app()
    cleanup.later(lambda: remove_app({"engine": engine, "engine2": engine2}, other))
    edge = make_edge(engine, cleanup, app, free_port(), proxy_image)
    # the wildcard app is the one whose route id sorts first
    wild, shop = sorted([app, other], key=lambda a: R.route_id(a, "test", "web"))
    base = f"{app}.test"
    m_wild = write_manifest(tmp_path / "w", wild, testenv, edge, f"'*.{base}'", replicas=1)
    m_shop = write_manifest(tmp_path / "s", shop, testenv, edge, f"shop.{base}", replicas=1)
    code, out = deploy(m_shop, testenv.image_v1)
    assert code == EXIT_OK, out
    code, out = deploy(m_wild, testenv.image_v2)
    assert code == EXIT_OK, out
    wait_body(edge, f"anything.{base}", "v2")
    assert get(edge.address, f"shop.{base}") == (200, "v1")
    assert get(edge.address, f"www.{base}") == (200, "v2")


def test_a_service_no_longer_public_loses_its_route(
    app: str, edge: Edge, testenv: TestEnv, tmp_path: Path, engine: docker.DockerClient
) -> None:
    """web and api are public; then api is not (its `proxy:` removed): plan says its route
    goes, the deploy removes it, and its host name no longer reaches it. Its removal
    waits for the proxy lock another deploy holds, saying so."""
    manifest = write_manifest(tmp_path, app, testenv, edge, f"web.{app}.test", replicas=1)
    text = manifest.read_text()
    web = text[text.index("  web:\n") : text.index("rollout:")]
    api = web.replace("  web:\n", "  api:\n").replace(f"web.{app}.test", f"api.{app}.test")
    manifest.write_text(text.replace("rollout:", api + "rollout:"))
    code, out = deploy(manifest, testenv.image_v1)
    assert code == EXIT_OK, out
    wait_body(edge, f"api.{app}.test", "v1")
    route_line = api[api.index("    proxy:") : api.index("\n", api.index("    proxy:")) + 1]
    manifest.write_text(manifest.read_text().replace(route_line, "", 1))
    assert "remove" in [r["change"] for r in plan_routes(manifest, testenv.image_v1)]
    # a deploy that fails leaves the route as it was
    code, out = deploy(manifest, testenv.image_crash)
    assert code == EXIT_ROLLED_BACK, out
    assert get(edge.address, f"api.{app}.test") == (200, "v1")
    code, out = deploy(manifest, testenv.image_v1)
    assert code == EXIT_OK, out
    assert "route of api removed (not public any more)" in out, out
    assert get(edge.address, f"api.{app}.test") != (200, "v1")
    assert get(edge.address, f"web.{app}.test") == (200, "v1")
    # the last public service too: no service is public, its route goes all the same
    route_line = web[web.index("    proxy:") : web.index("\n", web.index("    proxy:")) + 1]
    manifest.write_text(manifest.read_text().replace(route_line, "", 1))
    assert [r["change"] for r in plan_routes(manifest, testenv.image_v1)] == ["remove"]
    # the clean-up waits for the proxy lock, saying so (it waited without a word)
    rid = R.route_id(app, "test", "web")
    deploy_ = ["deploy", "--report-dir", str(tmp_path / "reports")]
    out = until_it_waits_for_the_proxy_lock(
        testenv, edge, manifest, deploy_, lambda: route_of(engine, edge, rid)
    )
    assert "route of web removed (not public any more)" in out, out
    assert get(edge.address, f"web.{app}.test") != (200, "v1")


def test_down_waits_for_the_proxy_lock_before_it_edits_the_proxy(
    app: str, edge: Edge, testenv: TestEnv, tmp_path: Path, engine: docker.DockerClient
) -> None:
    """Another deploy holds the proxy lock (it edits the proxy's config): `deployer down`
    removes the app's containers but waits to remove its route until the lock is free, so
    neither edit is lost (each writes the routes it read). It says what it waits for and
    who holds the lock (it waited without a word, up to 300 s)."""
    public = f"{app}.example.test"
    manifest = write_manifest(tmp_path, app, testenv, edge, public, replicas=1)
    code, out = deploy(manifest, testenv.image_v1)
    assert code == EXIT_OK, out
    rid = R.route_id(app, "test", "web")
    out = until_it_waits_for_the_proxy_lock(
        testenv, edge, manifest, ["down"], lambda: route_of(engine, edge, rid)
    )
    assert f"route of web on {edge.name}" in out, out


def test_a_proxy_holding_another_apps_routes_is_not_replaced_by_this_apps_manifest(
    app: str,
    edge: Edge,
    testenv: TestEnv,
    tmp_path: Path,
    engine: docker.DockerClient,
    engine2: docker.DockerClient,
    cleanup: Cleanup,
) -> None:
    """The shared proxy holds every app's routes and certificates, private keys
    included, in its volumes. Another app's manifest naming another image for it (or
    other listen addresses) is refused (exit 2, the apps whose routes it holds named)
    and the proxy runs on: before, the deploy replaced it with that image, which got
    the volumes. The app whose routes alone it holds still changes its image."""
    other = unique_app()
    cleanup.later(lambda: remove_app({"engine": engine, "engine2": engine2}, other))
    cleanup.later(lambda: remove_edge(engine, edge.name))  # first: it is on both networks
    rogue = f"{other}-proxy:rogue"
    engine.images.build(
        fileobj=io.BytesIO(f"FROM {edge.image}\nLABEL rogue=yes\n".encode()), tag=rogue, rm=True
    )

    def remove_rogue() -> None:
        with contextlib.suppress(docker.errors.APIError):
            engine.images.remove(rogue, force=True)

    cleanup.later(remove_rogue)
    first = write_manifest(tmp_path / "a", app, testenv, edge, f"{app}.example.test", 1)
    code, out = deploy(first, testenv.image_v1)
    assert code == EXIT_OK, out
    running = engine.containers.get(edge.name).id

    theirs = Edge(edge.name, edge.address, rogue)
    second = write_manifest(tmp_path / "b", other, testenv, theirs, f"{other}.example.test", 1)
    code, out = deploy(second, testenv.image_v1)
    assert code == EXIT_INVALID, out
    assert f"{app}/test" in out and rogue in out, out
    assert engine.containers.get(edge.name).id == running
    assert not engine.containers.list(all=True, filters={"label": f"{L.APP}={other}"})
    assert '"edge-proxy"' in out, out  # the allow that upgrades a shared proxy
    wait_body(edge, f"{app}.example.test", "v1")
    # a proxy that does not run (crashed, stopped) is not replaced by it either: whose
    # routes it holds is read from the app networks it joined
    engine.containers.get(edge.name).stop(timeout=1)
    code, out = deploy(second, testenv.image_v1)
    assert code == EXIT_INVALID, out
    assert f"{app}/test" in out and rogue in out, out
    assert engine.containers.get(edge.name).id == running
    engine.containers.get(edge.name).start()
    wait_body(edge, f"{app}.example.test", "v1")

    mine = write_manifest(tmp_path / "c", app, testenv, theirs, f"{app}.example.test", 1)
    code, out = deploy(mine, testenv.image_v1)
    assert code == EXIT_OK, out
    assert "upgrading to" in out, out
    wait_body(edge, f"{app}.example.test", "v1")

    # the app that says it manages the shared proxy upgrades it, the other's route kept
    manager = write_manifest(tmp_path / "d", other, testenv, edge, f"{other}.example.test", 1)
    manager.write_text(manager.read_text() + "policy: {allow: [edge-proxy]}\n")
    code, out = deploy(manager, testenv.image_v1)
    assert code == EXIT_OK, out
    assert f"upgrading to {edge.image}" in out, out
    wait_body(edge, f"{app}.example.test", "v1")
    wait_body(edge, f"{other}.example.test", "v1")
