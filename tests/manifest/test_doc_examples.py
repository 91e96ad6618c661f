"""Every manifest example of the README and docs/*.md is accepted by `deployer validate`,
and the problems docs/manifest.md prints are the ones it prints.

A block that shows a fragment (no `app:`) is completed with the least that makes it a
manifest (an app name, an environment, a service); a block with `app:` is a whole
manifest, taken as written. A block that names compose files gets them; a
compose fragment (`x-...` keys only) goes into a compose file. CI snippets (`include:`)
are the template tests' business (tests/ci)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import yaml

from deployer.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)

# The variables the examples interpolate, as a pipeline would set them.
VARIABLES = {
    "CI_COMMIT_SHORT_SHA": "0123abcd",
    "CI_COMMIT_SHA": "0123abcd" * 5,
    "CI_REGISTRY_IMAGE": "registry.example.com/shop",
    "DATABASE_URL": "postgres://app:secret-password@db/app",
    "REGISTRY_PASSWORD": "registry-password",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.example.com/services/T0/B0/x",
    "DEPLOY_EVENTS_URL": "https://events.example.com/deploys",
}


def _blocks(lang: str) -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for m in FENCE.finditer(text):
            if m.group(1) == lang:
                line = text[: m.start()].count("\n") + 1
                found.append((f"{doc.relative_to(ROOT)}:{line}", m.group(2)))
    return found


def _manifest_examples() -> list[tuple[str, str]]:
    examples = []
    for where, body in _blocks("yaml"):
        data = yaml.safe_load(body)
        if isinstance(data, dict) and "include" not in data:
            examples.append((where, body))
    return examples


EXAMPLES = _manifest_examples()


def test_the_docs_have_manifest_examples() -> None:
    # the README's manifest, the shape, the proxy, patterns, files, compose, notify
    assert len(EXAMPLES) >= 9, [w for w, _ in EXAMPLES]


def _complete(body: str, tmp_path: Path) -> Path:
    data = yaml.safe_load(body)
    compose_services = "services:\n  web:\n    image: registry.example.com/shop/web:1\n"
    if all(str(k).startswith("x-") for k in data):
        # a compose file's own keys: the compose file is the example
        (tmp_path / "docker-compose.yml").write_text(compose_services + body)
        body = "compose: docker-compose.yml\n"
        data = yaml.safe_load(body)
    if "app" not in data:
        # a fragment; a block that starts with `app:` is a whole manifest, taken as written
        body = "app: docs\n" + body
        if "environments" not in data:
            body += "environments: {production: {}}\n"
        if "services" not in data and "compose" not in data:
            body += "services: {web: {image: 'registry.example.com/shop/web:1'}}\n"
    if "compose" in data:
        files = [data["compose"]] if isinstance(data["compose"], str) else data["compose"]
        for name in files:
            path = tmp_path / name
            if path.exists():
                continue
            names = {"web", *(data.get("services") or {})}
            services = "".join(
                f"  {s}:\n    image: registry.example.com/shop/{s}:1\n" for s in sorted(names)
            )
            path.write_text(f"services:\n{services}")
    (tmp_path / "deploy.yml").write_text(body)
    return tmp_path / "deploy.yml"


@pytest.mark.parametrize(("where", "body"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_a_documented_manifest_example_is_valid(
    where: str,
    body: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, value in VARIABLES.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CI_ENVIRONMENT_NAME", raising=False)
    monkeypatch.chdir(tmp_path)
    path = _complete(body, tmp_path)
    out = io.StringIO()
    code = main(["validate", "-f", str(path)], out=out)
    printed = out.getvalue() + capsys.readouterr().err
    assert code == 0, f"{where}:\n{path.read_text()}\n{printed}"
    assert ": valid for " in printed


def test_the_documented_problems_are_printed_as_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/manifest.md, "Check it": the two lines it shows for a file with a bad port
    mapping and a fixed host port published by two replicas."""
    (shown,) = [
        body
        for where, body in _blocks("")
        if where.startswith("docs/manifest.md") and ": services." in body
    ]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deploy.yml").write_text(
        "app: shop\n"
        "environments:\n"
        "  production:\n"
        "    hosts: [ssh://deploy@prod-1.example.com]\n"
        "services:\n"
        "  web:\n"
        "    image: registry.example.com/shop/web:1\n"
        "    init: true\n"
        "    stop_grace_period: 5s\n"
        "    restart: always\n"
        "    ports:\n"
        '    - "80:80:80"\n'  # line 12, column 7
        "  api:\n"
        '    ports: ["80:8080"]\n'
        "    deploy: {replicas: 2}\n"  # line 15, column 24
        "    image: registry.example.com/shop/api:1\n"
    )
    out = io.StringIO()
    assert main(["validate"], out=out) == 2
    assert out.getvalue().splitlines()[:2] == shown.splitlines()
