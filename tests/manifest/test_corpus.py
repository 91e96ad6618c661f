"""The corpus: every invalid manifest reports its expected key path on its expected line;
every valid one loads into the model with no problems."""

from __future__ import annotations

import pytest

from deployer.manifest import ManifestError, check_manifest, load_manifest
from tests.manifest.helpers import ENVIRON, SECRET_DB, SECRET_REGISTRY, Case, cases

INVALID = cases("invalid")
VALID = cases("valid")


def test_corpus_is_big_enough() -> None:
    assert len(INVALID) >= 40
    assert len(VALID) >= 10
    assert all(c.expected for c in INVALID), [c.path.name for c in INVALID if not c.expected]


@pytest.mark.parametrize("c", INVALID, ids=lambda c: c.path.stem)
def test_invalid_manifest_reports_path_and_line(c: Case) -> None:
    report = check_manifest(c.path, c.env, ENVIRON)
    assert not report.ok
    found = {(p.line, p.path) for p in report.problems}
    for line, path in c.expected:
        assert (line, path) in found, (
            f"expected a problem at line {line} for {path!r}; got:\n"
            + "\n".join(p.render() for p in report.problems)
        )
    for text in c.messages:
        assert any(text in p.message for p in report.problems), (
            f"expected a problem saying {text!r}; got:\n"
            + "\n".join(p.render() for p in report.problems)
        )
    for p in report.problems:
        assert p.file.endswith(c.path.name) or p.file.endswith(".env")
        assert p.line >= 1 and p.column >= 1
        assert p.message
        text = p.render()
        assert SECRET_DB not in text and SECRET_REGISTRY not in text
    with pytest.raises(ManifestError) as exc:
        load_manifest(c.path, c.env, ENVIRON)
    assert exc.value.exit_code == 2
    assert len(exc.value.problems) >= 1


@pytest.mark.parametrize("c", VALID, ids=lambda c: c.path.stem)
def test_valid_manifest_loads(c: Case) -> None:
    report = check_manifest(c.path, c.env, ENVIRON)
    assert report.ok, "\n".join(p.render() for p in report.problems)
    if c.warnings is not None:
        assert len(report.warnings) == c.warnings
    else:
        assert not report.warnings, [w.render() for w in report.warnings]
    manifest = load_manifest(c.path, c.env, ENVIRON)
    assert manifest.services
    assert manifest.path == str(c.path)
