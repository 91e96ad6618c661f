"""Golden values of the config hash: they change only when a manifest's meaning changes.

The labels on running containers hold these values; any change here makes the next deploy
replace every container of every app that uses the deployer. A key at its default is in
neither the parts nor the hash, so a release that adds a key changes nothing here.
"""

from __future__ import annotations

from pathlib import Path

from deployer.manifest import load_manifest

MANIFEST = Path(__file__).parent.parent / "upgrade" / "deploy.yml"

WEB_PARTS = {
    "command": "c5efec3106c1",
    "cpus": "d2cbad71ff33",
    "environment": "4453413f40c2",
    "expose": "2871cce21dff",
    "extra_hosts": "a728c8618ed9",
    "healthcheck": "57cb561dcc47",
    "init": "b5bea41b6c62",
    "labels": "6ceb843218f2",
    "memory": "2b3c03c5ccad",
    "ports": "f65ad7c4e1da",
    "stop_grace_period": "a19a1584344c",
    "volumes": "afdd75640ff9",
}


def test_the_parts_and_hash_of_a_fixed_manifest_are_pinned() -> None:
    m = load_manifest(MANIFEST, "production", {})
    web, worker = m.service("web"), m.service("worker")
    assert web.config_parts() == WEB_PARTS
    assert web.config_hash() == "5916df7743bafe69"
    assert worker.config_parts() == {}
    assert worker.config_hash() == "44136fa355b3678a"


def test_every_part_of_a_set_key_equals_the_full_part() -> None:
    web = load_manifest(MANIFEST, "production", {}).service("web")
    full = web.full_config_parts()
    assert all(full[k] == v for k, v in web.config_parts().items())


NETWORKS = """\
app: shop
environments:
  production: {}
services:
  web:
    image: registry.example/shop/web:1
    networks:
      front: {aliases: [www], priority: 5}
      back: {ipv4_address: 10.5.0.9}
networks:
  front: {}
  back: {ipam: {config: [{subnet: 10.5.0.0/24}]}}
"""


def test_network_attachments_keep_their_hash_without_the_newer_keys(tmp_path: Path) -> None:
    """Pinned before per-network mac_address and gw_priority (and external_links) were
    read: a service that uses none of them keeps its hash."""
    (tmp_path / "deploy.yml").write_text(NETWORKS)
    web = load_manifest(tmp_path / "deploy.yml", "production", {}).service("web")
    assert web.config_parts() == {"networks": "0e66b36fa2a3"}
    assert web.config_hash() == "b4540fad8bff8f21"
    (tmp_path / "deploy.yml").write_text(
        NETWORKS.replace("priority: 5}", "priority: 5, gw_priority: 1}")
    )
    web = load_manifest(tmp_path / "deploy.yml", "production", {}).service("web")
    assert web.config_parts()["networks"] != "0e66b36fa2a3"
