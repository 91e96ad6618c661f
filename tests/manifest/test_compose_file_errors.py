"""A mistake in one compose file of several (``compose: [compose.yml, override.yml]``),
compared with the real ``docker compose -f compose.yml -f override.yml config``: compose
validates each file against its schema before it merges them, so the deployer refuses what
compose refuses, naming the file, line and key where the mistake is written, even when a
later file replaces or ``!reset``s the wrong value; what compose accepts (a value still to
interpolate, a service of an inactive profile) stays accepted. An entry an override appends
to a list is named by its index in that file, not in the merged list."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from deployer.manifest import check_manifest
from tests import composev2

BASE = """\
services:
  web:
    image: registry.example.com/shop/web:1
"""


def compose_config(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(composev2.binary()), "-f", "compose.yml", "-f", "override.yml", "config", "-q"],
        cwd=project,
        env={"PATH": "/usr/bin:/bin", "HOME": str(project)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def project(tmp_path: Path, base: str, override: str) -> Path:
    (tmp_path / "compose.yml").write_text(BASE + base)
    (tmp_path / "override.yml").write_text(textwrap.dedent(override))
    (tmp_path / "deploy.yml").write_text(
        "app: shop\ncompose: [compose.yml, override.yml]\n"
        "environments:\n  prod:\n    hosts: [ssh://deploy@host.example.com]\n"
    )
    return tmp_path


# (case, added to compose.yml's web, override.yml, (file, line, key) the deployer names,
#  words of its message, the file compose's own message names or None)
REFUSED = [
    (
        "wrong type in the override",
        "",
        "services:\n  web:\n    restart: 5\n",
        ("override.yml", 3, "services.web.restart"),
        "expected a string",
        "override.yml",
    ),
    (
        "unknown key in the override",
        "",
        "services:\n  web:\n    imagee: foo\n",
        ("override.yml", 3, "services.web.imagee"),
        "did you mean `image`?",
        "override.yml",
    ),
    (
        "bad port syntax in the override",
        "    ports: ['8080:8080']\n",
        "services:\n  web:\n    ports: ['80:80:80:80']\n",
        ("override.yml", 3, "services.web.ports[0]"),  # its index in override.yml
        "is not a port mapping (too many colons)",
        None,  # compose: "invalid IP address: 80:80", no file
    ),
    (
        "wrong type the override replaces",
        "    mem_limit: [1]\n",
        "services:\n  web:\n    mem_limit: 512m\n",
        ("compose.yml", 4, "services.web.mem_limit"),
        "expected a string or an integer",
        "compose.yml",
    ),
    (
        "wrong type the override replaces with !override",
        "    ports: 8080\n",
        "services:\n  web:\n    ports: !override ['8080']\n",
        ("compose.yml", 4, "services.web.ports"),
        "expected a list",
        "compose.yml",
    ),
    (
        "unknown key the override resets",
        "    imagee: foo\n",
        "services:\n  web:\n    imagee: !reset null\n",
        ("compose.yml", 4, "services.web.imagee"),
        "did you mean `image`?",
        "compose.yml",
    ),
    (
        "wrong type in a list the override replaces",
        "    environment: [1]\n",
        "services:\n  web:\n    environment: {A: b}\n",
        ("compose.yml", 4, "services.web.environment[0]"),
        "expected a string, got an integer",
        None,  # compose: "services.web.environment.[0]: unexpected type int"
    ),
    (
        "not a number where the override resets the mapping",
        "    healthcheck: {retries: x}\n",
        "services:\n  web:\n    healthcheck: !reset {}\n",
        ("compose.yml", 4, "services.web.healthcheck.retries"),
        "expected an integer, got a string",
        None,  # compose: "failed to cast to expected type" while interpolating
    ),
]


@pytest.mark.parametrize(
    ("base", "override", "where", "words", "compose_names"),
    [pytest.param(*c[1:], id=c[0]) for c in REFUSED],
)
def test_refused_as_compose_refuses_it_where_it_is_written(
    tmp_path: Path,
    base: str,
    override: str,
    where: tuple[str, int, str],
    words: str,
    compose_names: str | None,
) -> None:
    root = project(tmp_path, base, override)
    theirs = compose_config(root)
    assert theirs.returncode != 0, "compose accepts it"
    if compose_names is not None:
        assert f"validating {root / compose_names}:" in theirs.stderr, theirs.stderr

    report = check_manifest(root / "deploy.yml", "prod", {})
    assert len(report.problems) == 1, report.problems  # once, not again after the merge
    (p,) = report.problems
    file, line, key = where
    assert (p.file, p.line) == (str(root / file), line), p
    assert p.path == key, p
    assert words in f"{p.message} (fix: {p.fix})", p


@pytest.mark.parametrize(
    ("base", "override"),
    [
        pytest.param(
            "    mem_limit: 1g\n",
            """\
            services:
              web:
                mem_limit: !reset null
                restart: ${RESTART:-always}
                healthcheck: {test: [CMD, "true"], retries: "${RETRIES:-3}"}
            """,
            id="values still to interpolate, a reset",
        ),
        pytest.param(
            "",
            """\
            services:
              tools:
                image: registry.example.com/shop/tools:1
                profiles: [debug]
            """,
            id="a service of an inactive profile",
        ),
    ],
)
def test_accepted_as_compose_accepts_it(tmp_path: Path, base: str, override: str) -> None:
    root = project(tmp_path, base, override)
    theirs = compose_config(root)
    assert theirs.returncode == 0, theirs.stderr
    report = check_manifest(root / "deploy.yml", "prod", {})
    assert not report.problems, report.problems
