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
