"""CI variables of the pipelines the GitLab tests fake (payloads: fixtures/*.json, shaped
as GitLab's API documentation shows; shared constants: helpers.py)."""

from __future__ import annotations

import pytest

from tests.gitlab.helpers import JOB_TOKEN, MERGE_SHA, SERVER


@pytest.fixture
def ci_env() -> dict[str, str]:
    """Predefined variables of a pipeline on the default branch after a merge."""
    return {
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_SERVER_URL": SERVER,
        "CI_PROJECT_ID": "35",
        "CI_PROJECT_PATH": "shop/checkout",
        "CI_PROJECT_URL": f"{SERVER}/shop/checkout",
        "CI_COMMIT_SHA": MERGE_SHA,
        "CI_COMMIT_SHORT_SHA": MERGE_SHA[:8],
        "CI_COMMIT_REF_NAME": "main",
        "CI_COMMIT_BEFORE_SHA": "c380d3acebd181f13629a25d2e2acca46ffe1e00",
        "CI_DEFAULT_BRANCH": "main",
        "CI_PIPELINE_ID": "9001",
        "CI_PIPELINE_URL": f"{SERVER}/shop/checkout/-/pipelines/9001",
        "CI_PIPELINE_SOURCE": "push",
        "CI_JOB_ID": "77001",
        "CI_JOB_URL": f"{SERVER}/shop/checkout/-/jobs/77001",
        "CI_JOB_TOKEN": JOB_TOKEN,
        "GITLAB_USER_LOGIN": "thedude",
        "CI_ENVIRONMENT_NAME": "production",
    }


@pytest.fixture
def mr_env(ci_env: dict[str, str]) -> dict[str, str]:
    """Predefined variables of a merge request pipeline for !13."""
    env = dict(ci_env)
    env.update(
        {
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_COMMIT_SHA": "b83d6e391c22777fca1ed3012fce84f633d7fed0",
            "CI_COMMIT_SHORT_SHA": "b83d6e39",
            "CI_COMMIT_REF_NAME": "bump-web",
            "CI_COMMIT_BEFORE_SHA": "0" * 40,
            "CI_MERGE_REQUEST_IID": "13",
            "CI_MERGE_REQUEST_TITLE": "Bump the web image",
            "CI_MERGE_REQUEST_LABELS": "frontend",
            "CI_MERGE_REQUEST_PROJECT_URL": f"{SERVER}/shop/checkout",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "bump-web",
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        }
    )
    return env
