"""Merge metadata through the real python-gitlab client against a GitLab API faked at
the HTTP layer with payloads shaped as GitLab's API documentation shows."""

from __future__ import annotations

import pytest
import requests
import responses

from deployer import labels
from deployer.errors import EXIT_UNREACHABLE, Unreachable
from deployer.gitlab.context import build_context, context_labels, from_variables
from deployer.manifest.model import GitlabPolicy
from tests.gitlab.helpers import API, COMMIT_MRS, JOB_TOKEN, MERGE_SHA, SERVER, WRITE_TOKEN, fixture


@responses.activate
def test_merge_request_of_the_commit_is_found(ci_env: dict[str, str]) -> None:
    responses.get(COMMIT_MRS, json=fixture("commit_merge_requests.json"))
    ctx = build_context(ci_env, timeout=7)

    mr = ctx.merge_request
    assert mr is not None
    # The merged MR into the default branch, not the open draft on the same commit.
    assert (mr.iid, mr.title, mr.author) == (12, "Faster checkout page", "walter")
    assert mr.labels == ("backend", "release::next")
    assert mr.url == f"{SERVER}/shop/checkout/-/merge_requests/12"
    assert ctx.notes == ()
    assert ctx.commit_sha == MERGE_SHA
    assert ctx.pipeline_url.endswith("/pipelines/9001")
    assert ctx.user == "thedude"
    assert ctx.in_ci

    call = responses.calls[0]
    assert call.request.headers["JOB-TOKEN"] == JOB_TOKEN
    assert "PRIVATE-TOKEN" not in call.request.headers
    assert call.request.req_kwargs["timeout"] == 7

    lab = context_labels(ctx)
    assert lab[labels.MR].startswith("!12 Faster checkout page")
    assert lab[labels.COMMIT] == MERGE_SHA
    assert lab[labels.JOB] == ci_env["CI_JOB_URL"]


@responses.activate
def test_write_token_is_used_for_reads_when_given(ci_env: dict[str, str]) -> None:
    responses.get(COMMIT_MRS, json=fixture("commit_merge_requests.json"))
    build_context({**ci_env, "DEPLOYER_GITLAB_TOKEN": WRITE_TOKEN})
    assert responses.calls[0].request.headers["PRIVATE-TOKEN"] == WRITE_TOKEN


@responses.activate
def test_direct_push_has_no_merge_request(ci_env: dict[str, str]) -> None:
    responses.get(COMMIT_MRS, json=[])
    ctx = build_context(ci_env)
    assert ctx.merge_request is None
    assert ctx.notes == (f"no merge request for commit {MERGE_SHA[:8]} (direct push)",)
    assert labels.MR not in context_labels(ctx)


@responses.activate
def test_merge_request_pipeline_reads_variables_and_current_labels(
    mr_env: dict[str, str],
) -> None:
    responses.get(f"{API}/projects/35/merge_requests/13", json=fixture("merge_request.json"))
    ctx = build_context(mr_env)
    mr = ctx.merge_request
    assert mr is not None
    assert (mr.iid, mr.author, mr.source_branch, mr.target_branch) == (
        13,
        "maude",
        "bump-web",
        "main",
    )
    # The API's labels are current; the variable had them as at pipeline creation.
    assert mr.labels == ("frontend", "deploy::hold")


def test_merge_request_pipeline_without_api_uses_variables(mr_env: dict[str, str]) -> None:
    ctx = from_variables(mr_env)
    mr = ctx.merge_request
    assert mr is not None
    assert mr.iid == 13
    assert mr.labels == ("frontend",)
    assert mr.url == f"{SERVER}/shop/checkout/-/merge_requests/13"
    assert ctx.before_sha == "0" * 40


@responses.activate
def test_gitlab_down_warns_and_goes_on(ci_env: dict[str, str]) -> None:
    responses.get(COMMIT_MRS, body=requests.ConnectionError("connection refused"))
    ctx = build_context(ci_env)
    assert ctx.merge_request is None
    assert len(ctx.notes) == 1
    assert "cannot connect to GitLab" in ctx.notes[0]
    assert "going on without merge metadata" in ctx.notes[0]
    assert JOB_TOKEN not in ctx.notes[0]


@responses.activate
def test_gitlab_down_fails_when_the_manifest_requires_the_api(ci_env: dict[str, str]) -> None:
    responses.get(COMMIT_MRS, body=requests.ConnectionError("connection refused"))
    with pytest.raises(Unreachable) as e:
        build_context(ci_env, GitlabPolicy(require_api=True))
    assert e.value.exit_code == EXIT_UNREACHABLE
    assert "cannot connect to GitLab" in e.value.message
    assert "require_api" in (e.value.hint or "")


@responses.activate
def test_rejected_token_is_a_note(ci_env: dict[str, str]) -> None:
    responses.get(COMMIT_MRS, json=fixture("unauthorized.json"), status=401)
    ctx = build_context(ci_env)
    assert ctx.merge_request is None
    assert "GitLab refused the token (HTTP 401)" in ctx.notes[0]


@responses.activate
def test_timeout_is_a_note(ci_env: dict[str, str]) -> None:
    responses.get(COMMIT_MRS, body=requests.ReadTimeout("read timed out"))
    ctx = build_context(ci_env, timeout=0.5)
    assert "did not answer in time" in ctx.notes[0]


def test_no_token_means_no_lookup(ci_env: dict[str, str]) -> None:
    del ci_env["CI_JOB_TOKEN"]
    with responses.RequestsMock():  # any request would fail the test
        ctx = build_context(ci_env)
    assert ctx.merge_request is None
    assert "no CI_JOB_TOKEN or DEPLOYER_GITLAB_TOKEN" in ctx.notes[0]


def test_outside_ci_nothing_is_asked() -> None:
    with responses.RequestsMock():
        ctx = build_context({"CI_DEPLOY_FREEZE": ""}, GitlabPolicy(require_api=True))
    assert not ctx.in_ci
    assert not ctx.deploy_freeze
    assert ctx.user  # user@host
    assert ctx.merge_request is None
