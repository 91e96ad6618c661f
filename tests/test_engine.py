"""Names of what the deployer creates on a host (deployer/engine.py)."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import replace

import pytest

from deployer.engine import (
    canonical_name,
    default_network,
    keep_renewing,
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


@pytest.mark.parametrize("ttl", [1e300, float("inf"), float("nan"), 0.0, 1e-9])
def test_the_lock_renewal_thread_survives_any_ttl_and_failing_renewals(ttl: float) -> None:
    """A huge ttl once overflowed the wait and ended the thread (the deploy went on with no
    renewal); a zero one renewed in a busy loop; one failing renewal ended the thread."""
    calls: list[float] = []

    def renew() -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("engine hiccup")

    stop = keep_renewing(renew, ttl)
    try:
        if ttl <= 3:  # renewed every second (not in a busy loop), and on after a failure
            deadline = time.monotonic() + 60
            while len(calls) < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(calls) >= 3, calls
            assert all(b - a >= 0.9 for a, b in itertools.pairwise(calls)), calls
        else:  # the first renewal is due in 10 minutes at most; the thread waits for it
            time.sleep(2)
            assert calls == []
        assert any(t.is_alive() for t in threading.enumerate() if t.name == "lock-renewal")
    finally:
        stop()


def test_a_review_environment_is_written_with_a_dash_in_names_on_hosts() -> None:
    assert canonical_name("shop", "review/feat-x", "web", 1) == "shop-review-feat-x-web-1"
    assert default_network("shop", "review/feat-x") == "shop-review-feat-x"
