"""An app's environment belongs to the GitLab project that deployed it (deployer/ownership.py):
a CI job of another project whose manifest names the same ``app:`` (a copied manifest) is
refused before anything changes, on a real engine; ``--take-over-from`` moves it on
purpose; runs outside CI and hosts without a recorded project go on and say so."""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.context import Context
from deployer.docker.releases import RECORD
from deployer.engine import Release
from deployer.errors import InvalidInput
from deployer.ownership import Owner, guard, keep, owner_of
from deployer.plan import ObservedContainer
from tests.cli import cli
from tests.testenv import TestEnv, repo_digest

A = ("shop/checkout", "35")
B = ("shop/checkout-copy", "36")
CI_VARS = ("CI", "GITLAB_CI", "CI_JOB_ID", "CI_PROJECT_PATH", "CI_PROJECT_ID", "DOCKER_HOST")
CI_VARS += ("DEPLOYER_TAKE_OVER_FROM",)


def as_job(monkeypatch: pytest.MonkeyPatch, project: tuple[str, str] | None) -> None:
    """The variables of a CI job of ``project`` (None: a run outside CI)."""
    for var in CI_VARS:
        monkeypatch.delenv(var, raising=False)
    if project is not None:
        monkeypatch.setenv("GITLAB_CI", "true")
        monkeypatch.setenv("CI_JOB_ID", "4242")
        monkeypatch.setenv("CI_PROJECT_PATH", project[0])
        monkeypatch.setenv("CI_PROJECT_ID", project[1])


def manifest(tmp_path: Path, app: str, testenv: TestEnv, image: str) -> str:
    path = tmp_path / "deploy.yml"
    path.write_text(
        f"app: {app}\n"
        "environments:\n"
        f'  production: {{hosts: ["{testenv.engine_host}"]}}\n'
        "services:\n"
        "  web:\n"
        f"    image: {image}\n"
        "    init: true\n"
        "    deploy: {update_config: {monitor: 0s}}\n"
        "rollout: {health_timeout: 60s, healthy_after: 1s, drain: 0s}\n"
    )
    return str(path)


def host_state(engine: docker.DockerClient, app: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The app's containers (name, id) and release records on the engine."""
    containers = sorted(
        (c.name, c.id or "")
        for c in engine.containers.list(all=True, filters={"label": f"{L.APP}={app}"})
    )
    records = sorted(
        v.name or ""
        for v in engine.volumes.list(filters={"label": [f"{L.APP}={app}", f"{L.ROLE}=release"]})
    )
    return containers, records


def refused(capsys: pytest.CaptureFixture[str], code: int, mine: str, theirs: str) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"deployed by the GitLab project {theirs}" in err, err
    assert f"this job is of {mine}" in err, err
    assert f"--take-over-from {theirs}" in err and "`app:`" in err, err
    assert f"DEPLOYER_TAKE_OVER_FROM={theirs}" in err, err
    return err


@pytest.mark.integration
def test_another_projects_job_is_refused_and_takes_over_only_when_told(
    app: str,
    testenv: TestEnv,
    tmp_path: Path,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    path = manifest(tmp_path, app, testenv, testenv.image_v1)
    as_job(monkeypatch, A)
    code, out = cli("deploy", "-f", path)
    assert code == 0, out + capsys.readouterr().err
    assert f"no GitLab project recorded on its hosts; recording {A[0]}" in out
    (record,) = engine.volumes.list(filters={"label": [f"{L.APP}={app}", f"{L.ROLE}=release"]})
    assert record.attrs["Labels"][L.PROJECT] == A[0]
    assert record.attrs["Labels"][L.PROJECT_ID] == A[1]
    # older deployers read the JSON as Release(**data): no key they do not know
    assert "project" not in json.loads(record.attrs["Labels"][RECORD])
    code, out = cli("status", "-f", path)
    assert code == 0 and f"· GitLab project {A[0]}" in out, out
    before = host_state(engine, app)

    # project B's job, with the manifest copied from A: every command that changes the app
    as_job(monkeypatch, B)
    path2 = manifest(tmp_path, app, testenv, testenv.image_v2)
    for argv in (
        ("plan", "-f", path2),
        ("deploy", "-f", path2),
        ("rollback", "-f", path2),
        ("restart", "-f", path2, "web"),
        ("run", "-f", path2, "--service", "web", "--", "sh", "-c", "exit 0"),
        ("down", "-f", path2),
    ):
        code, out = cli(*argv)
        refused(capsys, code, B[0], A[0])
        assert host_state(engine, app) == before, argv  # nothing changed on the host

    # naming another project than the recorded one does not take it over
    code, _ = cli("deploy", "-f", path2, "--take-over-from", "shop/other")
    refused(capsys, code, B[0], A[0])
    assert host_state(engine, app) == before

    code, out = cli("plan", "-f", path2, "--take-over-from", A[0])
    assert code == 0, capsys.readouterr().err
    assert f"moves from the GitLab project {A[0]} to {B[0]}" in out
    monkeypatch.setenv("DEPLOYER_TAKE_OVER_FROM", A[0])  # as set in GitLab's "Run job" form
    code, out = cli("deploy", "-f", path2)
    assert code == 0, out + capsys.readouterr().err
    assert f"moves from the GitLab project {A[0]} to {B[0]} (--take-over-from)" in out
    monkeypatch.delenv("DEPLOYER_TAKE_OVER_FROM")
    web = engine.containers.get(f"{app}-production-web-1")
    assert web.labels[L.PROJECT] == B[0]
    code, out = cli("status", "-f", path2, "--format", "json")
    assert code == 0 and json.loads(out)["hosts"][0]["project"] == B[0], out
    assert web.labels[L.DIGEST] == repo_digest(engine, testenv.image_v2)

    # the app is B's now: A's own manifest is refused, B goes on without the flag
    as_job(monkeypatch, A)
    after = host_state(engine, app)
    code, _ = cli("deploy", "-f", path)
    refused(capsys, code, A[0], B[0])
    assert host_state(engine, app) == after
    as_job(monkeypatch, B)
    code, out = cli("deploy", "-f", path2)
    assert code == 0, out + capsys.readouterr().err


@pytest.mark.integration
def test_a_run_outside_ci_goes_on_and_keeps_the_project(
    app: str,
    testenv: TestEnv,
    tmp_path: Path,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    path = manifest(tmp_path, app, testenv, testenv.image_v1)
    as_job(monkeypatch, A)
    code, out = cli("deploy", "-f", path)
    assert code == 0, out + capsys.readouterr().err
    as_job(monkeypatch, None)  # an operator's shell: no CI_PROJECT_PATH
    path2 = manifest(tmp_path, app, testenv, testenv.image_v2)
    code, out = cli("deploy", "-f", path2)
    assert code == 0, out + capsys.readouterr().err
    assert f"not a GitLab CI job (no CI_PROJECT_PATH): {app}/production belongs to {A[0]}" in out
    records = engine.volumes.list(filters={"label": [f"{L.APP}={app}", f"{L.ROLE}=release"]})
    assert len(records) == 2
    assert {r.attrs["Labels"].get(L.PROJECT) for r in records} == {A[0]}  # kept
    as_job(monkeypatch, B)
    before = host_state(engine, app)
    code, _ = cli("deploy", "-f", path)
    refused(capsys, code, B[0], A[0])
    assert host_state(engine, app) == before


@pytest.mark.integration
def test_hosts_of_older_deployers_go_on_and_are_judged_by_the_containers_label(
    app: str,
    testenv: TestEnv,
    tmp_path: Path,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    path = manifest(tmp_path, app, testenv, testenv.image_v1)
    as_job(monkeypatch, None)  # records no project; its container's label is empty
    code, out = cli("deploy", "-f", path)
    assert code == 0, out + capsys.readouterr().err
    as_job(monkeypatch, B)
    path2 = manifest(tmp_path, app, testenv, testenv.image_v2)
    code, out = cli("deploy", "-f", path2)
    assert code == 0, out + capsys.readouterr().err
    assert f"no GitLab project recorded on its hosts; recording {B[0]}" in out
    # the records as an older deployer wrote them: no project (its containers had the label)
    for vol in engine.volumes.list(filters={"label": [f"{L.APP}={app}", f"{L.ROLE}=release"]}):
        labels = vol.attrs["Labels"]
        name = vol.name
        vol.remove()
        kept = {k: v for k, v in labels.items() if k not in (L.PROJECT, L.PROJECT_ID)}
        engine.volumes.create(name=name, driver="local", labels=kept)
    as_job(monkeypatch, A)
    before = host_state(engine, app)
    code, _ = cli("deploy", "-f", path)
    err = refused(capsys, code, A[0], B[0])
    assert f"recorded in the labels of its container {app}-production-web-1" in err
    assert host_state(engine, app) == before


# -- the rules, as data ----------------------------------------------------------------


def ctx(project: tuple[str, str] | None) -> Context:
    return Context(project_path=project[0], project_id=project[1]) if project else Context()


def release(rid: str, project: tuple[str, str] | None = None) -> Release:
    path, pid = project or ("", "")
    return Release(rid, "shop", "production", {}, project=path, project_id=pid)


def container(project: str, created: str = "") -> ObservedContainer:
    return ObservedContainer(
        "c1", "shop-production-web-1", "web", 1, True, created=created, project=project
    )


def test_older_releases_fall_back_to_the_containers_label() -> None:
    old = [release("1"), release("2")]  # written by a deployer that recorded no project
    assert owner_of("h1", old, [container(A[0])]) == Owner(
        "h1", A[0], "", "the labels of its container shop-production-web-1"
    )
    assert owner_of("h1", old, [container("")]).path == ""
    assert owner_of("h1", [release("1", A), release("2")], [container(B[0])]).path == A[0]
    both = [container(A[0], "1764500000"), container(B[0], "1764500100")]
    assert owner_of("h1", old, both).path == B[0]  # the newest container's
    with pytest.raises(InvalidInput, match="recorded in the labels of its container"):
        guard([owner_of("h1", old, [container(A[0])])], "shop", "production", ctx(B))


def test_a_renamed_project_keeps_its_app_by_id() -> None:
    owners = [Owner("h1", "shop/old-name", A[1], "release 1")]
    lines = guard(owners, "shop", "production", ctx(A))
    assert lines == [
        "shop/production: the GitLab project shop/old-name is now shop/checkout (same id)"
    ]
    with pytest.raises(InvalidInput):  # same path, another id: another project
        guard([Owner("h1", A[0], "99", "release 1")], "shop", "production", ctx(A))


def test_one_host_of_another_project_refuses_the_whole_run() -> None:
    owners = [Owner("h1", A[0], A[1], "release 1"), Owner("h2", B[0], B[1], "release 7")]
    with pytest.raises(InvalidInput, match=r"^h2: shop/production was deployed by the GitLab "):
        guard(owners, "shop", "production", ctx(A))


def test_a_take_over_with_nothing_to_take_does_nothing() -> None:
    owners = [Owner("h1", A[0], A[1], "release 1")]
    assert guard(owners, "shop", "production", ctx(A), take_over=B[0]) == [
        f"--take-over-from {B[0]}: shop/production is not that project's; the flag does nothing"
    ]


def test_outside_ci_the_release_keeps_the_previous_project() -> None:
    assert keep(release("2"), release("1", A)).project == A[0]
    assert keep(release("2", B), release("1", A)).project == B[0]
    assert keep(release("2"), None).project == ""
