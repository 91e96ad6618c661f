"""The lines `deployer plan` adds under the table: data directories and the restarts that
`depends_on ... restart: true` causes."""

from __future__ import annotations

from deployer import labels as L
from deployer.commands.plan import data_notes, restart_notes
from deployer.manifest.model import Environment, Manifest, Mount, Service, TopVolume
from deployer.plan import make_plan
from tests.fakehost import FakeHost

OLD = "reg/shop/db@sha256:" + "1" * 64
NEW = "reg/shop/db@sha256:" + "2" * 64


def manifest(*services: Service, volumes: tuple[TopVolume, ...] = ()) -> Manifest:
    return Manifest(
        path="deploy.yml",
        app="shop",
        environment=Environment("prod"),
        services=services,
        volumes=volumes,
    )


def test_a_replaced_dependency_restarts_the_services_that_ask_for_it() -> None:
    m = manifest(
        Service("db", "reg/shop/db:2"),
        Service("web", "reg/shop/web:1", depends_restart=("db",)),
        Service("worker", "reg/shop/web:1"),
    )
    h = FakeHost("h1")
    for name in ("db", "web", "worker"):
        h.seed("shop", "prod", name, OLD)
    for c in h.containers.values():  # each runs its manifest's configuration
        c.labels[L.CONFIG_HASH] = m.service(c.service).config_hash()
    observed = [h.observe("shop", "prod")]
    plan = make_plan(m, observed, {"db": NEW, "web": OLD, "worker": OLD})
    assert restart_notes(m, plan) == [
        "h1: web restarts when db is replaced (depends_on restart: true)"
    ]
    plan = make_plan(m, observed, {"db": OLD, "web": OLD, "worker": OLD})
    assert restart_notes(m, plan) == []


def test_each_data_directory_is_named_with_its_volume() -> None:
    m = manifest(
        Service("db", "reg/shop/db:2", volumes=(Mount("volume", "/var/lib/db", "data"),)),
        volumes=(TopVolume("data", data_dir="./data"),),
    )
    (line,) = data_notes(m)
    assert line.startswith("./data is data (db at /var/lib/db): the volume shop-prod-data,")
    assert "kept across deploys and rollbacks" in line
    assert data_notes(m, ["other"]) == []
