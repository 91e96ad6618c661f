from __future__ import annotations

import json

import requests
import responses

from deployer.gitlab.context import from_variables
from deployer.gitlab.notes import post_note, share_plan
from deployer.plan import Action, HostPlan, Plan, Step
from tests.gitlab.helpers import API, WRITE_TOKEN, fixture

NOTES = f"{API}/projects/35/merge_requests/13/notes"


@responses.activate
def test_note_posted_with_the_write_token(mr_env: dict[str, str]) -> None:
    responses.post(NOTES, json=fixture("note_created.json"), status=201)
    env = {**mr_env, "DEPLOYER_GITLAB_TOKEN": WRITE_TOKEN}
    line = post_note(from_variables(env), "### Plan\n\nweb: replace", env, what="plan")
    assert line == "plan posted on !13"
    (call,) = responses.calls
    assert call.request.headers["PRIVATE-TOKEN"] == WRITE_TOKEN
    assert "JOB-TOKEN" not in call.request.headers
    assert json.loads(call.request.body or b"{}") == {"body": "### Plan\n\nweb: replace"}


def test_note_skipped_without_a_write_token(mr_env: dict[str, str]) -> None:
    with responses.RequestsMock():  # the job token must never be used to write
        line = post_note(from_variables(mr_env), "body", mr_env, what="plan")
    assert line.startswith("plan not posted on !13: set a masked DEPLOYER_GITLAB_TOKEN")
    assert "job token cannot write notes" in line


def test_note_skipped_without_a_merge_request(ci_env: dict[str, str]) -> None:
    env = {**ci_env, "DEPLOYER_GITLAB_TOKEN": WRITE_TOKEN}
    with responses.RequestsMock():
        line = post_note(from_variables(env), "body", env, what="result")
    assert line == "result not posted: no merge request for this pipeline"


@responses.activate
def test_note_failure_does_not_raise(mr_env: dict[str, str]) -> None:
    responses.post(NOTES, json={"message": "403 Forbidden"}, status=403)
    env = {**mr_env, "DEPLOYER_GITLAB_TOKEN": WRITE_TOKEN}
    line = post_note(from_variables(env), "body", env)
    assert line == "note not posted on !13: GitLab answered HTTP 403: 403 Forbidden"
    assert WRITE_TOKEN not in line


@responses.activate
def test_note_with_gitlab_down(mr_env: dict[str, str]) -> None:
    responses.post(NOTES, body=requests.ConnectionError("refused"))
    env = {**mr_env, "DEPLOYER_GITLAB_TOKEN": WRITE_TOKEN}
    assert post_note(from_variables(env), "b", env).endswith("cannot connect to GitLab")


def _plan(app: str = "shop") -> Plan:
    digest = "127.0.0.1:5000/shop/web@sha256:" + "c" * 64
    return Plan(
        app=app,
        environment="production",
        hosts=(
            HostPlan(
                "ssh://deploy@10.0.0.5",
                (Step("web", Action.REPLACE, ("new image digest",), "old", digest),),
            ),
        ),
        waves=(("web",),),
        digests={"web": digest},
    )


@responses.activate
def test_plan_note_replaces_the_earlier_plan_note(mr_env: dict[str, str]) -> None:
    responses.get(NOTES, json=fixture("merge_request_notes.json"))
    updated = fixture("note_created.json") | {"id": 298}
    responses.put(f"{NOTES}/298", json=updated)
    env = {**mr_env, "DEPLOYER_GITLAB_TOKEN": WRITE_TOKEN}
    assert share_plan(_plan(), env) == "plan updated on !13"
    put = responses.calls[-1]
    body = json.loads(put.request.body or b"{}")["body"]
    assert body.startswith("<!-- deployer:plan shop production -->\n")
    assert "### Deploy plan: `shop` → `production`" in body
    assert "| ssh://deploy@10.0.0.5 | web | replace |" in body
    assert put.request.headers["PRIVATE-TOKEN"] == WRITE_TOKEN


@responses.activate
def test_plan_note_for_another_app_is_a_new_note(mr_env: dict[str, str]) -> None:
    responses.get(NOTES, json=fixture("merge_request_notes.json"))
    responses.post(NOTES, json=fixture("note_created.json"), status=201)
    env = {**mr_env, "DEPLOYER_GITLAB_TOKEN": WRITE_TOKEN}
    assert share_plan(_plan("billing"), env) == "plan posted on !13"
    assert [c.request.method for c in responses.calls] == ["GET", "POST"]


def test_plan_note_outside_merge_request_pipelines(ci_env: dict[str, str]) -> None:
    env = {**ci_env, "DEPLOYER_GITLAB_TOKEN": WRITE_TOKEN}
    with responses.RequestsMock():
        assert share_plan(_plan(), env) is None


def test_plan_note_without_write_token(mr_env: dict[str, str]) -> None:
    with responses.RequestsMock():
        line = share_plan(_plan(), mr_env)
    assert line is not None
    assert line.startswith("plan not posted on !13: set a masked DEPLOYER_GITLAB_TOKEN")
