from __future__ import annotations

import pytest
import responses

from deployer.context import Context, MergeRequest
from deployer.errors import EXIT_BLOCKED, Blocked
from deployer.gitlab.context import build_context
from deployer.gitlab.gates import check
from deployer.manifest.model import GitlabPolicy
from tests.gitlab.helpers import API, MERGE_SHA, fixture


@responses.activate
def test_hold_label_on_the_merged_request_blocks(ci_env: dict[str, str]) -> None:
    payload = fixture("commit_merge_requests.json")
    payload[0]["labels"] = ["backend", "deploy::hold"]
    responses.get(f"{API}/projects/35/repository/commits/{MERGE_SHA}/merge_requests", json=payload)
    ctx = build_context(ci_env)
    with pytest.raises(Blocked) as e:
        check(ctx, GitlabPolicy())
    assert e.value.exit_code == EXIT_BLOCKED
    assert "!12 (Faster checkout page)" in e.value.message
    assert "deploy::hold" in e.value.message
    assert "/-/merge_requests/12" in e.value.message
    assert check(ctx, GitlabPolicy(), force=True) == [
        "merge request !12 has the label 'deploy::hold': deploying anyway (--force)"
    ]


@responses.activate
def test_hold_label_is_configurable(mr_env: dict[str, str]) -> None:
    responses.get(f"{API}/projects/35/merge_requests/13", json=fixture("merge_request.json"))
    ctx = build_context(mr_env)
    assert check(ctx, GitlabPolicy(hold_label="release::blocked")) == []
    with pytest.raises(Blocked, match="!13"):
        check(ctx, GitlabPolicy(hold_label="frontend"))


@responses.activate
def test_labels_without_the_hold_label_pass(ci_env: dict[str, str]) -> None:
    responses.get(
        f"{API}/projects/35/repository/commits/{MERGE_SHA}/merge_requests",
        json=fixture("commit_merge_requests.json"),
    )
    assert check(build_context(ci_env), GitlabPolicy()) == []


def test_freeze_blocks_unless_forced(ci_env: dict[str, str]) -> None:
    ci_env["CI_DEPLOY_FREEZE"] = "true"
    del ci_env["CI_JOB_TOKEN"]
    ctx = build_context(ci_env)
    assert ctx.deploy_freeze
    with pytest.raises(Blocked, match="deploy freeze") as e:
        check(ctx, GitlabPolicy())
    assert e.value.exit_code == EXIT_BLOCKED
    assert "--force" in (e.value.hint or "")
    assert check(ctx, GitlabPolicy(), force=True) == [
        "deploy freeze is active: deploying anyway (--force)"
    ]


def test_no_merge_request_no_freeze_passes() -> None:
    assert check(Context(), GitlabPolicy()) == []


def test_both_gates_forced() -> None:
    ctx = Context(
        deploy_freeze=True,
        merge_request=MergeRequest(1, "t", "a", "", labels=("deploy::hold",)),
    )
    assert len(check(ctx, GitlabPolicy(), force=True)) == 2
