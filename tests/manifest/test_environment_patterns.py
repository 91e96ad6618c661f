"""Environment patterns (`review/*`) and the deployer's own variables
`${DEPLOYER_ENVIRONMENT}` and `${DEPLOYER_ENVIRONMENT_SLUG}`."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.manifest import check_manifest, load_manifest
from deployer.manifest.loader import environment_slug
from deployer.manifest.problems import ManifestError

MANIFEST = """\
app: shop
environments:
  production:
    url: https://shop.example.com/
    variables: {GREETING: hello}
  review/main:
    url: https://main-preview.example.com/
    variables: {GREETING: pinned}
  review/*:
    url: https://${DEPLOYER_ENVIRONMENT_SLUG}.review.example.com/
    variables: {GREETING: "hello ${DEPLOYER_ENVIRONMENT}"}
services:
  web:
    image: registry.example.com/shop/web:1
    environment:
      GREETING: ${GREETING}
      SLUG: ${DEPLOYER_ENVIRONMENT_SLUG}
"""


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    f = tmp_path / "deploy.yml"
    f.write_text(MANIFEST)
    return f


def test_a_pattern_gives_every_matching_name_its_settings(manifest: Path) -> None:
    m = load_manifest(manifest, "review/feat-x", {})
    assert m.environment.name == "review/feat-x"
    assert m.environment.url == "https://review-feat-x.review.example.com/"
    assert dict(m.service("web").environment) == {
        "GREETING": "hello review/feat-x",
        "SLUG": "review-feat-x",
    }


def test_an_exact_name_wins_over_a_pattern(manifest: Path) -> None:
    m = load_manifest(manifest, "review/main", {})
    assert m.environment.url == "https://main-preview.example.com/"
    assert dict(m.service("web").environment)["GREETING"] == "pinned"


def test_ci_environment_name_chooses_a_pattern_too(manifest: Path) -> None:
    m = load_manifest(manifest, None, {"CI_ENVIRONMENT_NAME": "review/fix-1"})
    assert m.environment.name == "review/fix-1"
    assert dict(m.service("web").environment)["SLUG"] == "review-fix-1"


def test_the_deployers_variables_win_over_the_jobs(manifest: Path) -> None:
    m = load_manifest(manifest, "production", {"DEPLOYER_ENVIRONMENT_SLUG": "spoofed"})
    assert dict(m.service("web").environment)["SLUG"] == "production"


def test_a_name_no_pattern_matches_is_refused(manifest: Path) -> None:
    with pytest.raises(ManifestError) as e:
        load_manifest(manifest, "staging", {})
    assert 'names the environment "staging", which the manifest does not define' in str(
        e.value.problems[0].message
    )


def test_validating_every_environment_checks_the_pattern(manifest: Path) -> None:
    report = check_manifest(manifest, None, {})
    assert report.ok, [p.render() for p in report.problems]
    assert report.environments == ("production", "review/main", "review/example")


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("review/feat-x", "review-feat-x"),
        ("review/Feat_X.2", "review-feat-x-2"),
        ("production", "production"),
        ("review/" + "a" * 80, "review-" + "a" * 56),
    ],
)
def test_slug_is_a_dns_label(name: str, slug: str) -> None:
    assert environment_slug(name) == slug
