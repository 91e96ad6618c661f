"""Names of what the deployer creates on a host (deployer/engine.py)."""

from __future__ import annotations

from dataclasses import replace

from deployer.engine import (
    canonical_name,
    kept_name,
    network_name,
    next_name,
    service_networks,
    volume_name,
)
from deployer.manifest.model import (
    Environment,
    Manifest,
    NetworkAttachment,
    Service,
    TopNetwork,
    TopVolume,
)

WEB = Service("web", "r/web:1", networks=(NetworkAttachment("front", ("www",)),))
WORKER = Service("worker", "r/worker:1")
M = Manifest(
    "deploy.yml",
    "shop",
    Environment("prod"),
    (WEB, WORKER),
    networks=(TopNetwork("front"), TopNetwork("edge", external=True)),
    volumes=(TopVolume("data"), TopVolume("shared", external=True)),
)


def test_container_names() -> None:
    c = canonical_name("shop", "prod", "web", 2)
    assert c == "shop-prod-web-2"
    assert kept_name(c, "20260101T000000000Z-abc", "f" * 64) == c + "--20260101T000000000Z-abc"
    assert kept_name(c, None, "0123456789abcdef") == c + "--r0123456789ab"
    assert next_name(c, "R1") == c + "--next-R1"


def test_networks_and_volumes_are_scoped_to_app_and_environment() -> None:
    assert network_name(M, "front") == "shop-prod-front"
    assert network_name(M, "edge") == "edge"
    assert volume_name(M, "data") == "shop-prod-data"
    assert volume_name(M, "shared") == "shared"
    assert service_networks(M, WEB) == [("shop-prod-front", ["web", "www"])]
    assert service_networks(M, WORKER) == [("shop-prod", ["worker"])]
    assert service_networks(M, replace(WORKER, network_mode="host")) == []


def test_an_app_adopted_from_compose_keeps_compose_names() -> None:
    m = replace(M, compose_project="shop")
    assert service_networks(m, WORKER) == [("shop_default", ["worker"])]
    assert network_name(m, "front") == "shop_front"
    assert volume_name(m, "data") == "shop_data"
    assert network_name(m, "edge") == "edge"
