"""Labels under the deployer's own prefix (``io.deployer.``) are refused wherever a
manifest or compose file can write labels, not only on services.

The deployer finds what it owns by those labels: a named volume written with
``io.deployer.role: release`` was taken for a release record (``deployer down`` without
``--volumes`` deleted it with its data, retention pruned it), and a Swarm network or
service could name another app or environment as its owner (``io.deployer.app``), whose
``down`` then removed it."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.manifest import check_manifest

MANIFEST = """\
app: shop
environments:
  production: {{engine: {engine}}}
services:
  db:
    image: registry.example.com/db:1
    volumes: ["data:/var/lib/db"]
    networks: [back]
{service}
volumes:
  data:
{volume}
networks:
  back:
{network}
"""

CASES = {
    "top-level volume": ("container", "", "    labels: {io.deployer.role: release}", ""),
    "top-level volume, list form": (
        "container",
        "",
        '    labels: ["io.deployer.app=other"]',
        "",
    ),
    "top-level network": ("swarm", "", "", "    labels: {io.deployer.app: other}"),
    "deploy.labels of a Swarm service": (
        "swarm",
        "    deploy: {labels: {io.deployer.environment: staging}}",
        "",
        "",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_label_with_the_deployers_prefix_is_refused(tmp_path: Path, case: str) -> None:
    engine, service, volume, network = CASES[case]
    m = tmp_path / "deploy.yml"
    m.write_text(
        MANIFEST.format(
            engine=engine,
            service=service,
            volume=volume or "    driver: local",
            network=network or "    driver: overlay" if engine == "swarm" else "    {}",
        )
    )
    report = check_manifest(m, "production", {})
    found = [p.render() for p in report.problems if "reserves" in p.message]
    assert len(found) == 1, [p.render() for p in report.problems]
    assert "io.deployer." in found[0] and "labels" in found[0], found[0]


def test_labels_of_other_prefixes_pass(tmp_path: Path) -> None:
    m = tmp_path / "deploy.yml"
    m.write_text(
        MANIFEST.format(
            engine="swarm",
            service="    deploy: {labels: {com.example.team: shop}}",
            volume="    labels: {com.example.backup: daily}",
            network="    labels: {com.example.zone: back}",
        )
    )
    report = check_manifest(m, "production", {})
    assert report.ok, [p.render() for p in report.problems]
